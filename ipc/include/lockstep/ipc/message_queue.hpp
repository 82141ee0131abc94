// lockstep/ipc/message_queue.hpp: lockstep::ipc::message_queue, a named message queue with
// priorities in shared memory: POSIX mq's rules, Boost.Interprocess's interface, lockstep's
// primitives.
//
//   lockstep::ipc::message_queue q(lockstep::ipc::create_only, "jobs", 1000, 256);
//   q.send("hello", 5, 7);                       // priority 7
//   char buf[256]; std::size_t n; unsigned p;
//   q.receive(buf, sizeof buf, n, p);            // highest priority first, FIFO within one
//
// A Boost user switches by changing the namespace: the tags, constructors, send / try_send /
// timed_send, receive / try_receive / timed_receive, get_max_msg / get_max_msg_size /
// get_num_msg and remove() are Boost's (deadlines are std::chrono time points instead of
// boost::posix_time). Added: std::span overloads, *_for with a duration, deadlines on any
// std::chrono clock (steady_clock exact; others re-checked after a timeout, as a clock may be
// stepped), and priority_counts() for inspection.
//
// Rules (POSIX mq_send / mq_receive, as Linux implements them):
//   - Delivery: highest priority first, FIFO within a priority. Priorities are
//     0 .. mq_prio_max - 1 (32768, Linux's MQ_PRIO_MAX); any other is errc::invalid_argument.
//   - A message longer than get_max_msg_size(): errc::message_size (EMSGSIZE), nothing queued.
//     A receive buffer shorter than get_max_msg_size(): errc::message_size, the message stays.
//     Messages of 0 bytes are messages.
//   - Full (send) or empty (receive): the blocking call waits, try_* returns false,
//     timed_* / *_for return false once the deadline has passed. A try_* call never sleeps: it
//     waits for a lock only while its holder copies one message (nobody sleeps holding one).
//   - Capacity is exact: get_max_msg() messages fit, no more; no cap but memory
//     (max_num_msg <= 2^30, max_msg_size <= 2^30 bytes).
//   - A send or receive that neither blocks nor wakes a sleeper makes no system call.
// Errors are std::system_error: the std::errc codes above; errc::invalid_argument (EINVAL) for
// bad attributes (max_num_msg or max_msg_size 0 or too large, mode outside 0777), a bad name or
// priority, a null buffer (with a nonzero size, for a send); errc::file_exists,
// errc::no_such_file_or_directory, errc::permission_denied from create/open (an open also
// refuses a queue another user owns, unless the caller passes any_owner: shared_memory.hpp);
// lockstep::ipc::errc::foreign_segment (not a message queue: a channel, or not
// lockstep's), version_mismatch, corrupt_segment (a header field, index, count, size or
// priority in the segment out of range: nothing was read or written outside the mapping, nothing
// was consumed; or a journal a dead lock holder left beyond repair: that end's lock is then not
// recoverable and every later call of it reports corrupt_segment), not_ready (the creator never finished). Nothing is lost on any error path.
// A hostile segment (any bytes, rewritten at any time) yields only these errors: never a crash,
// an access outside the mapping, or a wait past a deadline (fuzzed: ipc/fuzz/segment_fuzz.cpp,
// docs/fault-tolerance.md).
//
// Thread and process safety: any number of threads in any number of processes may send and
// receive on one queue at once, through one object or several. The object itself is a
// move-only handle (a moved-from queue may only be destroyed or assigned to). A process
// killed at any instruction strands nobody: the next holder of its lock repairs the queue
// from a journal (detail/mq_protocol.hpp Q6) and sleepers re-check every 150 ms; at most the
// one message it had in flight is lost, exactly as docs/fault-tolerance.md says.
//
// Algorithm: detail/mq_protocol.hpp (layout, invariants Q1-Q6, proof sketch) on ring.hpp's
// cursor protocol and priority_heap.hpp; docs/message-queue.md has the whole story.
#pragma once

#include <lockstep/detail/deadline.hpp>
#include <lockstep/ipc/detail/mq_protocol.hpp>
#include <lockstep/ipc/detail/ring_error.hpp>
#include <lockstep/ipc/errc.hpp>
#include <lockstep/ipc/segment.hpp>
#include <lockstep/ipc/shared_memory.hpp>
#include <lockstep/seam.hpp>

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>

namespace lockstep::ipc {

// Priorities are 0 .. mq_prio_max - 1 (Linux's MQ_PRIO_MAX).
inline constexpr unsigned mq_prio_max = detail::mq_prio_max;

// The largest max_num_msg and max_msg_size a queue may have.
inline constexpr std::size_t mq_max_num_msg = detail::max_ring_capacity;
inline constexpr std::size_t mq_max_msg_size = std::size_t{1} << 30;

namespace detail {

inline constexpr std::uint32_t mq_layout_version = 2;  // 2: interprocess_mutex grew to 40 bytes (robust); the Q6 journals (mq_control 320 bytes)

// The message_queue kind's layout function (segment.hpp S2): header (64) + mq_control (320) +
// free ring + full ring + heap, then the slots.
constexpr bool message_queue_layout(std::uint64_t capacity, std::uint64_t max_msg_size, segment_layout& out) noexcept {
  mq_arrays a{};
  if (max_msg_size == 0 || !mq_layout(capacity, a)) return false;
  return slot_array_layout(capacity, max_ring_capacity, max_msg_size, mq_max_msg_size,
                           sizeof(segment_header) + a.end, out);
}

inline constexpr segment_type message_queue_type{segment_kind::message_queue, mq_layout_version,
                                                 message_queue_layout, "lockstep::ipc::message_queue"};

// mq_protocol's Storage in a mapped segment: plain words and memcpy; each read_* is one load
// (read_once, segment.hpp S3). Indices are checked by the protocol before they reach here.
class mapped_queue_storage {
 public:
  mapped_queue_storage(const segment& seg) noexcept
      : slots_(seg.first_slot(), seg.layout.slot_stride) {
    mq_arrays a{};
    (void)mq_layout(seg.layout.capacity, a);  // validated with the segment
    std::byte* const k = seg.kind_area();
    free_ = reinterpret_cast<std::uint32_t*>(k + a.free_ring);
    full_ = reinterpret_cast<std::uint32_t*>(k + a.full_ring);
    heap_ = reinterpret_cast<heap_entry*>(k + a.heap);
  }

  std::uint32_t read_free(std::uint32_t i) const noexcept { return read_once(free_[i]); }
  void write_free(std::uint32_t i, std::uint32_t v) noexcept { free_[i] = v; }
  std::uint32_t read_full(std::uint32_t i) const noexcept { return read_once(full_[i]); }
  void write_full(std::uint32_t i, std::uint32_t v) noexcept { full_[i] = v; }
  heap_entry read_heap(std::uint32_t i) const noexcept {
    return {read_once(heap_[i].priority), read_once(heap_[i].slot), read_once(heap_[i].seq)};
  }
  // One 16-byte store instruction, not one per field: a process killed here leaves the whole old
  // entry or the whole new one, which the heap's repair relies on (priority_heap.hpp H3, H4).
  // A plain `heap_[i] = e` of an entry assembled from three loads compiled to two or three
  // stores (GCC 12), and a kill between them left a new priority and slot with the old seq,
  // which heap_restore (matching by seq) took for an intact entry: a slot twice, a message lost.
  // A vector store in C++ is not enough either (GCC 12 -O2 split it into two 8-byte stores), so
  // the store is spelled out: one SSE store (x86-64) or one Q-register store (AArch64), whose
  // effect a kill cannot split (unaligned forms: a segment's layout is never trusted for alignment).
  void write_heap(std::uint32_t i, const heap_entry& e) noexcept {
    using whole = std::uint64_t __attribute__((vector_size(16), may_alias));
    const whole v = std::bit_cast<whole>(e);
    whole& dst = *reinterpret_cast<whole*>(heap_ + i);
#if defined(__x86_64__)
    asm volatile("movdqu %1, %0" : "=m"(dst) : "x"(v));
#elif defined(__aarch64__)
    asm volatile("str %q1, %0" : "=m"(dst) : "w"(v));
#else
#error "write_heap needs a single 16-byte store instruction on this architecture"
#endif
  }

  void write_size(std::uint32_t slot, std::uint32_t n) noexcept { slots_.write_size(slot, n); }
  std::uint32_t read_size(std::uint32_t slot) const noexcept { return slots_.read_size(slot); }
  void write_priority(std::uint32_t slot, std::uint32_t p) noexcept { slots_.header(slot).tag = p; }
  std::uint32_t read_priority(std::uint32_t slot) const noexcept { return read_once(slots_.header(slot).tag); }
  void copy_in(std::uint32_t slot, const void* src, std::uint32_t n) noexcept { slots_.copy_in(slot, src, n); }
  void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const noexcept { slots_.copy_out(slot, dst, n); }

 private:
  mapped_slots slots_;
  std::uint32_t* free_;
  std::uint32_t* full_;
  heap_entry* heap_;
};

}  // namespace detail

class message_queue {
 public:
  using size_type = std::size_t;

  // What a span receive returns.
  struct received {
    size_type size;     // bytes written to the buffer
    unsigned priority;  // the message's priority
  };

  // Creates the queue `name` ("name" or "/name": shared_memory.hpp's name rule) for
  // max_num_msg messages of up to max_msg_size bytes each, with permission bits `mode`
  // (O_CREAT | O_EXCL; the umask does not narrow them). Memory: about
  // max_num_msg * (round_up(8 + max_msg_size, 64) + 24) bytes, allocated up front.
  // Errors: errc::invalid_argument (bad name or mode; max_num_msg or max_msg_size 0 or above
  // mq_max_num_msg / mq_max_msg_size), errc::file_exists, errc::permission_denied,
  // errc::no_space_on_device.
  message_queue(create_only_t, const char* name, size_type max_num_msg, size_type max_msg_size, mode_t mode = 0600)
      : seg_(create_segment(name, detail::message_queue_type, max_num_msg, max_msg_size, mode, init)),
        q_(protocol(seg_)) {}

  // Opens `name` if it exists (with its own attributes: max_num_msg and max_msg_size are then
  // only range-checked), else creates it as above. Errors: those of both constructors.
  message_queue(open_or_create_t, const char* name, size_type max_num_msg, size_type max_msg_size,
                mode_t mode = 0600)
      : seg_(open_or_create_segment(name, detail::message_queue_type, max_num_msg, max_msg_size, mode,
                                    default_ready_timeout, init)),
        q_(protocol(seg_)) {}
  // As above, but an existing queue of any owner is accepted (any_owner_t, shared_memory.hpp).
  message_queue(open_or_create_t, const char* name, size_type max_num_msg, size_type max_msg_size, any_owner_t,
                mode_t mode = 0600)
      : seg_(open_or_create_segment(name, detail::message_queue_type, max_num_msg, max_msg_size, mode,
                                    default_ready_timeout, init, true)),
        q_(protocol(seg_)) {}

  // Opens the existing queue `name`, waiting up to ready_timeout (2 s by default) for its
  // creator to finish. Only a queue this process's effective uid owns; with any_owner, one of
  // any owner. Errors: errc::no_such_file_or_directory, errc::permission_denied (the mode
  // bits, or another user owns it and any_owner was not passed), errc::invalid_argument (bad
  // name), ipc::errc::foreign_segment (not a lockstep message queue), version_mismatch,
  // corrupt_segment, not_ready.
  message_queue(open_only_t, const char* name, std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : seg_(open_segment(name, detail::message_queue_type, ready_timeout)), q_(protocol(seg_)) {}
  message_queue(open_only_t, const char* name, any_owner_t,
                std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : seg_(open_segment(name, detail::message_queue_type, ready_timeout, true)), q_(protocol(seg_)) {}

  message_queue(message_queue&&) noexcept = default;
  message_queue& operator=(message_queue&&) noexcept = default;

  // --- send --------------------------------------------------------------------------------
  // Queues `size` bytes from `buffer` with `priority`, waiting while the queue is full.
  // Errors: errc::invalid_argument (priority >= mq_prio_max), errc::message_size
  // (size > get_max_msg_size(); nothing queued), ipc::errc::corrupt_segment,
  // errc::resource_deadlock_would_occur (called while this thread is inside a send, from a
  // signal handler).
  void send(const void* buffer, size_type size, unsigned priority) {
    (void)send_status(buffer, size, priority, detail::wait_forever, "send");
  }
  // As send, but returns false at once if the queue is full.
  [[nodiscard]] bool try_send(const void* buffer, size_type size, unsigned priority) {
    return send_status(buffer, size, priority, detail::wait_never, "try_send");
  }
  // As send, but returns false if the queue is still full at abs_time (any std::chrono clock).
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_send(const void* buffer, size_type size, unsigned priority,
                                const std::chrono::time_point<Clock, Duration>& abs_time) {
    return lockstep::detail::until(abs_time, [&](seam::deadline d) {
      return send_status(buffer, size, priority, detail::wait_until(d), "timed_send");
    });
  }
  // As send, but returns false if the queue is still full after `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool send_for(const void* buffer, size_type size, unsigned priority,
                              const std::chrono::duration<Rep, Period>& timeout) {
    return send_status(buffer, size, priority, detail::wait_until(lockstep::detail::deadline_after(timeout)),
                       "send_for");
  }
  void send(std::span<const std::byte> message, unsigned priority) { send(message.data(), message.size(), priority); }
  [[nodiscard]] bool try_send(std::span<const std::byte> message, unsigned priority) {
    return try_send(message.data(), message.size(), priority);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_send(std::span<const std::byte> message, unsigned priority,
                                const std::chrono::time_point<Clock, Duration>& abs_time) {
    return timed_send(message.data(), message.size(), priority, abs_time);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool send_for(std::span<const std::byte> message, unsigned priority,
                              const std::chrono::duration<Rep, Period>& timeout) {
    return send_for(message.data(), message.size(), priority, timeout);
  }

  // --- receive -----------------------------------------------------------------------------
  // Takes the first message (highest priority, oldest within it) into `buffer`, waiting while
  // the queue is empty; recvd_size and priority are set on success only.
  // Errors: errc::message_size (buffer_size < get_max_msg_size(); the message stays queued),
  // ipc::errc::corrupt_segment, errc::resource_deadlock_would_occur (as for send).
  void receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned& priority) {
    (void)receive_status(buffer, buffer_size, recvd_size, priority, detail::wait_forever, "receive");
  }
  // As receive, but returns false at once if the queue is empty.
  [[nodiscard]] bool try_receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned& priority) {
    return receive_status(buffer, buffer_size, recvd_size, priority, detail::wait_never, "try_receive");
  }
  // As receive, but returns false if the queue is still empty at abs_time (any clock).
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_receive(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned& priority,
                                   const std::chrono::time_point<Clock, Duration>& abs_time) {
    return lockstep::detail::until(abs_time, [&](seam::deadline d) {
      return receive_status(buffer, buffer_size, recvd_size, priority, detail::wait_until(d), "timed_receive");
    });
  }
  // As receive, but returns false if the queue is still empty after `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] bool receive_for(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned& priority,
                                 const std::chrono::duration<Rep, Period>& timeout) {
    return receive_status(buffer, buffer_size, recvd_size, priority,
                          detail::wait_until(lockstep::detail::deadline_after(timeout)), "receive_for");
  }
  received receive(std::span<std::byte> buffer) {
    received r{};
    receive(buffer.data(), buffer.size(), r.size, r.priority);
    return r;
  }
  [[nodiscard]] std::optional<received> try_receive(std::span<std::byte> buffer) {
    received r{};
    if (!try_receive(buffer.data(), buffer.size(), r.size, r.priority)) return std::nullopt;
    return r;
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<received> timed_receive(std::span<std::byte> buffer,
                                                      const std::chrono::time_point<Clock, Duration>& abs_time) {
    received r{};
    if (!timed_receive(buffer.data(), buffer.size(), r.size, r.priority, abs_time)) return std::nullopt;
    return r;
  }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<received> receive_for(std::span<std::byte> buffer,
                                                    const std::chrono::duration<Rep, Period>& timeout) {
    received r{};
    if (!receive_for(buffer.data(), buffer.size(), r.size, r.priority, timeout)) return std::nullopt;
    return r;
  }

  // --- attributes ----------------------------------------------------------------------------
  // The queue's capacity in messages, and the largest message in bytes (the validated copies
  // made at open: a peer rewriting the header later changes nothing here).
  [[nodiscard]] size_type get_max_msg() const noexcept { return q_.capacity(); }
  [[nodiscard]] size_type get_max_msg_size() const noexcept { return q_.max_msg_size(); }
  // Messages in the queue now: exact when nobody is mid-operation, otherwise a recent value (a
  // message counts from its sender's taking a slot until its receiver's giving it back).
  [[nodiscard]] size_type get_num_msg() const noexcept { return q_.num_msg(); }

  // How many messages of each priority are queued, for inspection (lockstep-mq info). Takes the
  // receive lock (waits for it at most `timeout`: errc::timed_out after that).
  // Errors: errc::timed_out, ipc::errc::corrupt_segment.
  [[nodiscard]] std::map<unsigned, size_type> priority_counts(std::chrono::nanoseconds timeout = std::chrono::seconds(1)) {
    std::map<unsigned, size_type> counts;
    const detail::ring_status st =
        q_.for_each_priority([&](std::uint32_t p) { ++counts[p]; }, lockstep::detail::deadline_after(timeout));
    if (st != detail::ring_status::ok) fail(st, "priority_counts");
    return counts;
  }

  // Removes the name (shm_unlink); processes that have the queue open keep using it. true if
  // a segment was removed; false for no such name, a bad name or no permission (as Boost).
  // It removes whatever segment has that name: check the kind first (lockstep-mq does).
  static bool remove(const char* name) noexcept { return shared_memory::remove(name); }

 private:
  using protocol_type = detail::mq_protocol<detail::mapped_queue_storage>;

  static void init(std::byte* kind_area, const segment_layout& layout) {
    auto* c = ::new (kind_area) detail::mq_control();
    // The storage view needs a segment; build the arrays' addresses the same way.
    detail::mq_arrays a{};
    (void)detail::mq_layout(layout.capacity, a);
    auto* free_ring = reinterpret_cast<std::uint32_t*>(kind_area + a.free_ring);
    struct writer {
      std::uint32_t* f;
      void write_free(std::uint32_t i, std::uint32_t v) noexcept { f[i] = v; }
    } w{free_ring};
    detail::init_free_ring(*c, w, layout.capacity);
  }

  static protocol_type protocol(const segment& seg) noexcept {
    return {*reinterpret_cast<detail::mq_control*>(seg.kind_area()), detail::mapped_queue_storage(seg),
            seg.layout.capacity, seg.layout.max_msg_size};
  }

  // true: done; false: would_block or timed_out; throws for everything else.
  bool send_status(const void* buffer, size_type size, unsigned priority, detail::ring_wait how, const char* op) {
    if (priority >= mq_prio_max) [[unlikely]]
      throw_error(std::make_error_code(std::errc::invalid_argument), op, "priority must be below mq_prio_max (32768)");
    if (size > q_.max_msg_size()) [[unlikely]]
      throw_error(std::make_error_code(std::errc::message_size), op, "message longer than get_max_msg_size()");
    if (buffer == nullptr && size != 0) [[unlikely]]
      throw_error(std::make_error_code(std::errc::invalid_argument), op, "a null buffer with a nonzero size");
    const detail::ring_status st = q_.send(buffer, std::uint32_t(size), priority, how);
    if (st == detail::ring_status::ok) [[likely]]
      return true;
    return result(st, op);
  }
  bool receive_status(void* buffer, size_type buffer_size, size_type& recvd_size, unsigned& priority,
                      detail::ring_wait how, const char* op) {
    if (buffer_size < q_.max_msg_size()) [[unlikely]]
      throw_error(std::make_error_code(std::errc::message_size), op, "buffer shorter than get_max_msg_size()");
    if (buffer == nullptr) [[unlikely]]
      throw_error(std::make_error_code(std::errc::invalid_argument), op, "a null buffer");
    std::uint32_t n = 0, p = 0;
    const detail::ring_status st = q_.receive(buffer, q_.max_msg_size(), n, p, how);
    if (st == detail::ring_status::ok) [[likely]] {
      recvd_size = n;
      priority = p;
      return true;
    }
    return result(st, op);
  }

  static bool result(detail::ring_status st, const char* op) {
    if (st == detail::ring_status::would_block || st == detail::ring_status::timed_out) return false;
    fail(st, op);
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void fail(detail::ring_status st, const char* op) {
    using detail::ring_status;
    const char* why = st == ring_status::corrupt          ? "an index, count, size or priority is out of range"
                      : st == ring_status::would_deadlock ? "this thread is already inside an operation on this queue"
                      : st == ring_status::timed_out      ? "the lock was not free in time"
                                                          : "refused";
    throw_error(detail::to_error_code(st), op, why);
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_error(std::error_code ec, const char* op, const char* why) {
    throw std::system_error(ec, std::string("lockstep::ipc::message_queue::") + op + ": " + why);
  }

  segment seg_;
  protocol_type q_;
};

}  // namespace lockstep::ipc
