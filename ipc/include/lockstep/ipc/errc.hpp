// lockstep/ipc/errc.hpp: the errors a shared-memory segment itself can cause.
//
// Everything the operating system reports (a missing or existing name, a permission, a bad
// argument, a message too long) is a std::system_error with the POSIX code (std::errc). What no
// POSIX call can report, because the memory was mapped fine but what it holds is wrong, has this
// category, "lockstep.ipc": a peer that is not lockstep, a lockstep of another layout, a segment
// whose header or cursors are out of range, or a creator that never finished. Users compare
// against the enum: `catch (const std::system_error& e) { if (e.code() == lockstep::ipc::errc::corrupt_segment) ... }`.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace lockstep::ipc {

enum class errc {
  // The segment's magic number or kind is not the one asked for: not a lockstep segment, or a
  // lockstep segment of another kind (a message queue opened as a channel, say).
  foreign_segment = 1,
  // A lockstep segment of the right kind whose layout version this build does not know.
  version_mismatch,
  // A field out of range or inconsistent with another or with the file's real size (truncated
  // or extended), a size whose arithmetic overflows, or, at run time, a cursor, count or
  // message size read from the segment out of range. Nothing was read or written outside the
  // mapping, and the operation changed nothing it could have lost.
  corrupt_segment,
  // The creator did not publish the segment as ready within the opener's bound (2 s by
  // default): it died while initializing, or the file was made by something else.
  not_ready,
};

namespace detail {
class ipc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lockstep.ipc"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::foreign_segment: return "not a lockstep segment of the expected kind (wrong magic number or kind)";
      case errc::version_mismatch: return "lockstep segment of an unsupported layout version";
      case errc::corrupt_segment: return "corrupt lockstep segment (a size, cursor or field out of range)";
      case errc::not_ready: return "lockstep segment not initialized by its creator in time";
    }
    return "unknown lockstep.ipc error";
  }
};
}  // namespace detail

// The one "lockstep.ipc" category object (an inline function's static: one per program).
inline const std::error_category& ipc_category() noexcept {
  static const detail::ipc_category category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), ipc_category()}; }

}  // namespace lockstep::ipc

template <>
struct std::is_error_code_enum<lockstep::ipc::errc> : std::true_type {};
