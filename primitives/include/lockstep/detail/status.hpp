// lockstep/detail/status.hpp: the outcome of a primitive's operation, and its std::error_code.
//
// Fast paths return this one-byte enum, never a std::error_code: building an error_code calls
// into libstdc++ for its category, which an uncontended lock must not pay for. The checked
// public calls convert at the edge.
#pragma once

#include <system_error>

namespace lockstep::detail {

enum class status : unsigned char {
  ok,
  would_deadlock,  // the caller already owns the mutex (EDEADLK)
  not_owner,       // the caller does not own the mutex it unlocks (EPERM)
  timed_out,       // the deadline passed first (ETIMEDOUT)
  would_block,     // a non-blocking call found nothing to take (EAGAIN)
  overflow,        // a release would exceed the maximum count (EOVERFLOW)
  busy,            // a try-lock found the mutex held (EBUSY, as pthread_mutex_trylock)
  owner_dead,      // the caller holds the mutex; its previous owner died holding it (EOWNERDEAD)
  not_recoverable, // the mutex was left inconsistent for good (ENOTRECOVERABLE)
};

inline std::error_code to_error_code(status s) noexcept {
  switch (s) {
    case status::ok: return {};
    case status::would_deadlock: return std::make_error_code(std::errc::resource_deadlock_would_occur);
    case status::not_owner: return std::make_error_code(std::errc::operation_not_permitted);
    case status::timed_out: return std::make_error_code(std::errc::timed_out);
    case status::would_block: return std::make_error_code(std::errc::resource_unavailable_try_again);
    case status::overflow: return std::make_error_code(std::errc::value_too_large);
    case status::busy: return std::make_error_code(std::errc::device_or_resource_busy);
    case status::owner_dead: return std::make_error_code(std::errc::owner_dead);
    case status::not_recoverable: return std::make_error_code(std::errc::state_not_recoverable);
  }
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace lockstep::detail
