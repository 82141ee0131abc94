// lockstep/ipc/segment.hpp: the layout every lockstep shared-memory segment shares (header,
// kind area, slot array), its creation and publication, and its validation by an opener.
//
// The channel and the message queue are both segments of this shape; each adds only its kind's
// control block and its layout function. A segment is untrusted input: another process, of
// another program or of none, may have written any bytes into it.
//
// Layout (fixed-width fields only, so 32- and 64-bit processes agree; offsets static_asserted):
//
//   | offset        | size | field          | meaning                                              |
//   |---------------|------|----------------|------------------------------------------------------|
//   | 0             | 8    | magic          | segment_magic, the bytes "lockstep"                  |
//   | 8             | 4    | kind           | segment_kind: channel 1, message_queue 2             |
//   | 12            | 4    | version        | the kind's layout version                            |
//   | 16            | 4    | ready          | futex word: 0 while the creator initializes, then 1  |
//   | 20            | 4    | capacity       | number of slots (max_num_msg)                        |
//   | 24            | 4    | max_msg_size   | bytes a slot's payload holds                         |
//   | 28            | 4    | slot_stride    | bytes from one slot to the next                      |
//   | 32            | 8    | header_size    | offset of slot 0 (this header + the kind's area)     |
//   | 40            | 8    | total_size     | the segment's size in bytes (= the file's size)      |
//   | 48            | 16   | reserved       | zero                                                 |
//   | 64            | ...  | kind's area    | e.g. the channel's control block (detail/ring.hpp)   |
//   | header_size   | ...  | slot 0         | slot_header {u32 size, u32 tag}, then the payload    |
//   | + k * stride  |      | slot k         | k < capacity                                         |
//
// Invariants:
//   S1 (publication)  The creator writes every field and the kind's area, then stores ready = 1
//                     with release; nothing else ever changes a header field. An opener reads
//                     ready with acquire and reads no other field before it saw 1.
//   S2 (one layout)   The header's sizes are a function of (kind, version, capacity,
//                     max_msg_size): the kind's layout function. An opener recomputes them with
//                     overflow-checked arithmetic and accepts the segment only if every stored
//                     size equals its own result and total_size equals the file's real size
//                     (fstat at mapping time): a truncated, extended or inconsistent segment is
//                     refused before any slot is touched.
//   S3 (read once)    Each header field is read once (read_once: one load the compiler may not
//                     repeat) into a process-local copy, checked, and only the copy is used from
//                     then on. A peer rewriting the header later changes nothing in this process.
//
// Memory ordering: ready's release store (creator) and acquire load (opener) order all the
// creator's initialization before the opener's first read (S1). Other fields are plain data.
#pragma once

#include <lockstep/detail/deadline.hpp>
#include <lockstep/ipc/errc.hpp>
#include <lockstep/ipc/shared_memory.hpp>
#include <lockstep/seam.hpp>

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace lockstep::ipc {

// What a segment holds. Opening a segment as another kind is refused (errc::foreign_segment).
enum class segment_kind : std::uint32_t { channel = 1, message_queue = 2 };

// "lockstep" as a little-endian 64-bit word: a hexdump of /dev/shm/<name> starts with the name.
inline constexpr std::uint64_t segment_magic = 0x7065'7473'6b63'6f6cull;

// How long an opener waits, by default, for the creator to publish the segment (S1) before it
// reports errc::not_ready. Initialization takes microseconds; 2 s covers a loaded machine.
inline constexpr std::chrono::milliseconds default_ready_timeout{2000};

struct segment_header {
  std::uint64_t magic;
  std::uint32_t kind;
  std::uint32_t version;
  seam::futex_word ready;  // never constructed: the zero-filled file already holds 0
  std::uint32_t capacity;
  std::uint32_t max_msg_size;
  std::uint32_t slot_stride;
  std::uint64_t header_size;
  std::uint64_t total_size;
  std::uint64_t reserved[2];
};

// At the start of every slot. `tag` is the kind's: the message queue keeps a priority there,
// the channel writes 0.
struct slot_header {
  std::uint32_t size;
  std::uint32_t tag;
};

static_assert(std::is_standard_layout_v<segment_header> && std::is_standard_layout_v<slot_header>);
static_assert(offsetof(segment_header, magic) == 0 && offsetof(segment_header, kind) == 8 &&
              offsetof(segment_header, version) == 12 && offsetof(segment_header, ready) == 16 &&
              offsetof(segment_header, capacity) == 20 && offsetof(segment_header, max_msg_size) == 24 &&
              offsetof(segment_header, slot_stride) == 28 && offsetof(segment_header, header_size) == 32 &&
              offsetof(segment_header, total_size) == 40 && offsetof(segment_header, reserved) == 48 &&
              sizeof(segment_header) == 64,
              "the segment header layout is fixed: every process, 32- or 64-bit, must agree");
static_assert(sizeof(seam::futex_word) == 4 && alignof(seam::futex_word) == 4);
static_assert(offsetof(slot_header, size) == 0 && offsetof(slot_header, tag) == 4 && sizeof(slot_header) == 8);

// The sizes of one segment, validated (S2); process-local.
struct segment_layout {
  std::uint32_t capacity = 0;
  std::uint32_t max_msg_size = 0;
  std::uint32_t slot_stride = 0;
  std::uint64_t header_size = 0;  // offset of slot 0
  std::uint64_t total_size = 0;
};

// A kind's layout function: the layout for (capacity, max_msg_size), or false if either is out
// of the kind's range or a size would overflow. Creator and openers both call it (S2).
using layout_function = bool (*)(std::uint64_t capacity, std::uint64_t max_msg_size, segment_layout& out) noexcept;

// What an opener expects to find.
struct segment_type {
  segment_kind kind;
  std::uint32_t version;
  layout_function layout;
  const char* what;  // for error messages: "lockstep::ipc::channel"
};

// Bytes from one slot to the next: header + payload, rounded up to a cache line so that a
// producer filling slot k+1 never shares a line with a consumer reading slot k.
inline constexpr std::uint64_t slot_alignment = 64;

// The common case of a layout function: `header_size` bytes (this header and the kind's area,
// a multiple of 64), then capacity slots of max_msg_size payload bytes. Checks
// 1 <= capacity <= max_capacity, max_msg_size <= max_msg_limit, and that every size fits the
// header's fields, a size_t and an off_t.
[[nodiscard]] constexpr bool slot_array_layout(std::uint64_t capacity, std::uint64_t max_capacity,
                                               std::uint64_t max_msg_size, std::uint64_t max_msg_limit,
                                               std::uint64_t header_size, segment_layout& out) noexcept {
  if (capacity == 0 || capacity > max_capacity || capacity > UINT32_MAX) return false;
  if (max_msg_size > max_msg_limit || max_msg_size > UINT32_MAX - sizeof(slot_header) - slot_alignment) return false;
  if (header_size < sizeof(segment_header) || header_size % slot_alignment != 0) return false;
  const std::uint64_t stride = (sizeof(slot_header) + max_msg_size + slot_alignment - 1) / slot_alignment * slot_alignment;
  std::uint64_t slots = 0;
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(capacity, stride, &slots) || __builtin_add_overflow(header_size, slots, &total))
    return false;
  if (total > std::uint64_t(std::numeric_limits<std::ptrdiff_t>::max()) ||
      total > std::uint64_t(std::numeric_limits<off_t>::max()))
    return false;
  out = {std::uint32_t(capacity), std::uint32_t(max_msg_size), std::uint32_t(stride), header_size, total};
  return true;
}

namespace detail {

// One load of a field of shared memory that the compiler may neither repeat nor tear (S3).
template <class T>
[[nodiscard]] inline T read_once(const T& field) noexcept {
  static_assert(std::is_integral_v<T>);
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

inline segment_header& header_of(std::byte* base) noexcept { return *reinterpret_cast<segment_header*>(base); }

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_segment(std::error_code ec, const segment_type& type,
                                                                   const char* name) {
  throw std::system_error(ec, std::string(type.what) + ": \"" + (name ? name : "(null)") + "\"");
}

}  // namespace detail

// Whether the mapped bytes [base, base + mapped_size) are a segment of `type`, and its layout.
// Precondition: the caller has seen ready == 1 with acquire (S1). Reads each field once (S3).
// Returns {} and fills `out`, or errc::foreign_segment (magic or kind), errc::version_mismatch,
// errc::corrupt_segment (a size out of range, inconsistent, or not the mapping's size, S2).
[[nodiscard]] inline std::error_code validate_segment(const std::byte* base, std::size_t mapped_size,
                                                      const segment_type& type, segment_layout& out) noexcept {
  using detail::read_once;
  if (base == nullptr || mapped_size < sizeof(segment_header)) return errc::corrupt_segment;
  const auto& h = *reinterpret_cast<const segment_header*>(base);
  if (read_once(h.magic) != segment_magic || read_once(h.kind) != std::uint32_t(type.kind))
    return errc::foreign_segment;
  if (read_once(h.version) != type.version) return errc::version_mismatch;
  const std::uint32_t capacity = read_once(h.capacity);
  const std::uint32_t max_msg_size = read_once(h.max_msg_size);
  const std::uint32_t stride = read_once(h.slot_stride);
  const std::uint64_t header_size = read_once(h.header_size);
  const std::uint64_t total_size = read_once(h.total_size);
  segment_layout expected{};
  if (!type.layout(capacity, max_msg_size, expected)) return errc::corrupt_segment;
  if (stride != expected.slot_stride || header_size != expected.header_size || total_size != expected.total_size ||
      total_size != mapped_size)
    return errc::corrupt_segment;
  out = expected;
  return {};
}

// A mapped, validated segment: the mapping, its layout (process-local copies, S3), and whether
// this process created it.
struct segment {
  shared_memory memory;
  segment_layout layout;
  bool created = false;

  [[nodiscard]] std::byte* base() const noexcept { return memory.data(); }
  [[nodiscard]] std::byte* kind_area() const noexcept { return memory.data() + sizeof(segment_header); }
  [[nodiscard]] std::byte* first_slot() const noexcept { return memory.data() + layout.header_size; }
};

// Creates the segment `name` for `type` (O_EXCL, `mode`), all zero; runs init(kind_area,
// layout) to construct the kind's area; then publishes it (S1) and wakes waiting openers.
// Errors: errc::invalid_argument (bad name; capacity or max_msg_size outside the kind's
// range), and those of shared_memory's create_only constructor. If init throws, the name is
// removed again and the exception propagates.
template <class Init>
segment create_segment(const char* name, const segment_type& type, std::uint64_t capacity,
                       std::uint64_t max_msg_size, mode_t mode, Init&& init) {
  segment_layout layout{};
  if (!is_valid_name(name)) detail::throw_invalid(detail::bad_name_reason(), name);
  if (!type.layout(capacity, max_msg_size, layout))
    detail::throw_invalid("max_num_msg or max_msg_size out of range", name);
  shared_memory memory(create_only, name, layout.total_size, mode);
  segment_header& h = detail::header_of(memory.data());
  h.magic = segment_magic;
  h.kind = std::uint32_t(type.kind);
  h.version = type.version;
  h.capacity = layout.capacity;
  h.max_msg_size = layout.max_msg_size;
  h.slot_stride = layout.slot_stride;
  h.header_size = layout.header_size;
  h.total_size = layout.total_size;
  try {
    init(memory.data() + sizeof(segment_header), layout);
  } catch (...) {
    shared_memory::remove(name);
    throw;
  }
  h.ready.store(1, seam::order::release);  // S1
  seam::futex_wake(h.ready, INT_MAX, seam::scope::process_shared);
  return {std::move(memory), layout, true};
}

namespace detail {

// Opens `name` and waits until its creator has sized it. The creator sizes the file in one
// call (posix_fallocate), so its size is 0 or final: a size below the header is a truncated
// segment. Size 0 is polled (1 ms) until the deadline: the creator is between shm_open and
// posix_fallocate, a window of microseconds.
inline shared_memory open_sized(const char* name, const segment_type& type, seam::deadline d, bool any_owner) {
  for (;;) {
    shared_memory memory = any_owner ? shared_memory(open_only, name, ipc::any_owner) : shared_memory(open_only, name);
    if (memory.size() >= sizeof(segment_header)) return memory;
    if (memory.size() != 0) throw_segment(errc::corrupt_segment, type, name);
    if (seam::now() >= d) throw_segment(errc::not_ready, type, name);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Waits until the creator published the segment (S1), at most until d.
inline std::error_code wait_ready(segment_header& h, seam::deadline d) noexcept {
  for (;;) {
    const std::uint32_t r = h.ready.load(seam::order::acquire);
    if (r == 1) return {};
    if (r != 0) return errc::corrupt_segment;
    if (seam::now() >= d) return errc::not_ready;
    (void)seam::futex_wait(h.ready, 0, seam::scope::process_shared, d);
  }
}

}  // namespace detail

// Opens the existing segment `name` as `type`: waits at most `ready_timeout` for its creator
// to finish (S1), then validates it against the mapping's real size (S2, S3). Only a segment
// this process's effective uid owns, unless any_owner (shared_memory.hpp's any_owner_t).
// Errors: those of shared_memory's open_only constructor (errc::no_such_file_or_directory,
// errc::permission_denied, ...), then errc::not_ready, errc::foreign_segment,
// errc::version_mismatch, errc::corrupt_segment. It never reads outside the mapping.
inline segment open_segment(const char* name, const segment_type& type,
                            std::chrono::nanoseconds ready_timeout = default_ready_timeout, bool any_owner = false) {
  const seam::deadline d = lockstep::detail::deadline_after(ready_timeout);
  shared_memory memory = detail::open_sized(name, type, d, any_owner);
  segment_layout layout{};
  std::error_code ec = detail::wait_ready(detail::header_of(memory.data()), d);
  if (!ec) ec = validate_segment(memory.data(), memory.size(), type, layout);
  if (ec) detail::throw_segment(ec, type, name);
  return {std::move(memory), layout, false};
}

// Opens `name` if it exists (its own sizes apply; capacity and max_msg_size are then only
// checked for range), else creates it as create_segment does. A race with a concurrent creator
// or remover is settled by retrying: a create that finds the name (EEXIST) opens, an open
// that finds it gone (ENOENT) creates; after 3 rounds the last error is reported. An existing
// segment is opened as open_segment does (another user's only with any_owner).
template <class Init>
segment open_or_create_segment(const char* name, const segment_type& type, std::uint64_t capacity,
                               std::uint64_t max_msg_size, mode_t mode, std::chrono::nanoseconds ready_timeout,
                               Init&& init, bool any_owner = false) {
  for (int round = 1;; ++round) {
    try {
      return create_segment(name, type, capacity, max_msg_size, mode, init);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::file_exists) throw;
    }
    try {
      return open_segment(name, type, ready_timeout, any_owner);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::no_such_file_or_directory || round == 3) throw;
    }
  }
}

// The slot array of a mapped segment, as the ring algorithm's Slots policy
// (detail/ring.hpp): copies bytes in and out of slots with memcpy, and reads a slot's size
// once (S3). Preconditions (the ring guarantees them from its local copies): slot < capacity,
// n <= max_msg_size.
class mapped_slots {
 public:
  mapped_slots(std::byte* first_slot, std::uint32_t stride) noexcept : first_(first_slot), stride_(stride) {}

  void write_size(std::uint32_t slot, std::uint32_t n) noexcept { header(slot).size = n; }
  [[nodiscard]] std::uint32_t read_size(std::uint32_t slot) const noexcept { return detail::read_once(header(slot).size); }
  void copy_in(std::uint32_t slot, const void* src, std::uint32_t n) const noexcept {
    if (n != 0) std::memcpy(payload(slot), src, n);
  }
  void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const noexcept {
    if (n != 0) std::memcpy(dst, payload(slot), n);
  }
  [[nodiscard]] std::byte* payload(std::uint32_t slot) const noexcept {
    return first_ + std::size_t(slot) * stride_ + sizeof(slot_header);
  }
  [[nodiscard]] slot_header& header(std::uint32_t slot) const noexcept {
    return *reinterpret_cast<slot_header*>(first_ + std::size_t(slot) * stride_);
  }

 private:
  std::byte* first_;
  std::uint32_t stride_;
};

}  // namespace lockstep::ipc
