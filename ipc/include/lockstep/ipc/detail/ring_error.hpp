// lockstep/ipc/detail/ring_error.hpp: a ring's outcome as the std::error_code that the public
// classes (channel, message_queue) throw. One mapping for both, so an outcome means the same
// POSIX error whichever class reports it.
#pragma once

#include <lockstep/ipc/detail/ring.hpp>
#include <lockstep/ipc/errc.hpp>

#include <system_error>

namespace lockstep::ipc::detail {

inline std::error_code to_error_code(ring_status s) noexcept {
  switch (s) {
    case ring_status::ok: return {};
    case ring_status::would_block: return std::make_error_code(std::errc::resource_unavailable_try_again);
    case ring_status::timed_out: return std::make_error_code(std::errc::timed_out);
    case ring_status::message_size: return std::make_error_code(std::errc::message_size);
    case ring_status::corrupt: return make_error_code(errc::corrupt_segment);
    case ring_status::would_deadlock: return std::make_error_code(std::errc::resource_deadlock_would_occur);
    case ring_status::not_owner: return std::make_error_code(std::errc::operation_not_permitted);
  }
  return make_error_code(errc::corrupt_segment);  // not a ring_status: never produced
}

}  // namespace lockstep::ipc::detail
