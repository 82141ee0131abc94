// lockstep/ipc/channel.hpp: lockstep::ipc::channel, a named, bounded FIFO of variable-size byte
// messages between any threads of any processes, in shared memory, synchronized only by
// lockstep's own mutex and futex cursors.
//
//   lockstep::ipc::channel ch(lockstep::ipc::create_only, "jobs", 64, 256);   // process A
//   ch.send("hello", 5);
//   lockstep::ipc::channel rx(lockstep::ipc::open_only, "jobs");             // process B
//   char buf[256]; std::size_t n; rx.receive(buf, sizeof buf, n);
//
// The interface has the shape of Boost.Interprocess message_queue, without priorities (the
// open-mode tags, send/try_send/timed_send, receive/try_receive/timed_receive, get_max_msg,
// get_max_msg_size, get_num_msg, remove), plus std::span overloads, *_for with durations,
// deadlines on any clock, and a zero-copy path (reserve/commit, receive_in_place).
//
// Rules (POSIX mq's where it has one):
//   - FIFO; the channel holds exactly max_num_msg messages of 0 to max_msg_size bytes.
//   - try_* report full (empty) only when the channel is full (empty), never because another
//     thread or process is mid-operation: they wait for the end's lock, which nobody holds
//     while asleep (detail/ring.hpp I6), and a message counts from its send's commit to its
//     receive's commit (I8).
//   - Deadlines are std::chrono::time_points of any clock; steady_clock is exact (the kernel
//     waits on CLOCK_MONOTONIC), other clocks are re-checked after a timeout. A deadline
//     already past, or a timeout <= 0, still sends (receives) if it can without sleeping.
//   - No system call on a send or receive that neither blocks nor wakes a sleeper; a waiter
//     spins a bounded time, then sleeps (futex) and burns no CPU.
//
// Errors: std::system_error. POSIX codes (std::errc):
//   message_size                   send: longer than max_msg_size (nothing queued); receive:
//                                  buffer shorter than max_msg_size (the message stays queued)
//   invalid_argument               max_num_msg outside [1, 2^30], max_msg_size above 2^30,
//                                  a bad name or mode, a null buffer with a nonzero size
//   file_exists / no_such_file_or_directory / permission_denied   from the name; an open
//                                  also refuses with permission_denied a channel that another
//                                  user owns, unless the caller passes any_owner (shared_memory.hpp)
//   resource_deadlock_would_occur  the calling thread holds a reservation (send side) or an
//                                  in-place message (receive side) of this channel and calls
//                                  that side again, or would sleep on the other side
//   operation_not_permitted        a reservation or in-place message ended on another thread
// and lockstep::ipc::errc (errc.hpp): foreign_segment, version_mismatch, corrupt_segment (at
// open, or at run time a cursor, count or size out of range: nothing is consumed; or an end
// whose dead lock holder left state beyond repair: its lock is then not recoverable and every
// later call of that end reports it), not_ready.
//
// Thread and process safety: every operation may be called by any number of threads at once,
// in any number of processes, each through its own channel object (or one shared object).
// A peer can make calls fail with corrupt_segment (or resource_deadlock_would_occur, a lock
// word rewritten to name the caller); it can never make this process read or write outside the
// mapping, and a try/timed call never waits past its deadline on a rewritten cursor (fuzzed:
// ipc/fuzz/segment_fuzz.cpp, docs/fault-tolerance.md). A peer killed at any instruction strands nobody: the next holder
// of its lock repairs that end (detail/ring.hpp I9) and sleepers re-check every 150 ms; at
// most the one message it had in flight is lost, exactly as docs/fault-tolerance.md says (a
// consumer killed holding an in-place message: delivered again to the next consumer).
#pragma once

#include <lockstep/detail/deadline.hpp>
#include <lockstep/ipc/detail/ring.hpp>
#include <lockstep/ipc/detail/ring_error.hpp>
#include <lockstep/ipc/errc.hpp>
#include <lockstep/ipc/segment.hpp>
#include <lockstep/ipc/shared_memory.hpp>
#include <lockstep/seam.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace lockstep::ipc {

namespace detail {

// The channel's segment (segment.hpp): the header, the control block (ring.hpp's table), slots.
inline constexpr std::uint32_t channel_layout_version = 2;  // 2: interprocess_mutex grew to 40 bytes (robust)
inline constexpr std::uint64_t channel_max_msg_size = std::uint64_t{1} << 30;

inline bool channel_layout(std::uint64_t capacity, std::uint64_t max_msg_size, segment_layout& out) noexcept {
  return slot_array_layout(capacity, max_ring_capacity, max_msg_size, channel_max_msg_size,
                           sizeof(segment_header) + sizeof(channel_control), out);
}
inline constexpr segment_type channel_segment{segment_kind::channel, channel_layout_version, channel_layout,
                                              "lockstep::ipc::channel"};
static_assert(sizeof(segment_header) + sizeof(channel_control) == 320, "slot 0 of a channel is at offset 320");

inline void construct_channel_control(std::byte* area, const segment_layout&) { ::new (area) channel_control(); }

}  // namespace detail

class channel {
  using ring_type = detail::message_ring<mapped_slots>;
  using ticket = ring_type::ticket;
  using status = detail::ring_status;

  // What a send_reservation and a received_message share: they hold one end's lock and one
  // slot until they end (Producer: abandon; consumer: release, which consumes the message).
  template <bool Producer>
  class slot_hold {
   public:
    slot_hold() noexcept = default;
    slot_hold(slot_hold&& other) noexcept : ring_(std::exchange(other.ring_, nullptr)), ticket_(other.ticket_) {}
    slot_hold& operator=(slot_hold&& other) noexcept {
      if (this != &other) {
        end_quietly();
        ring_ = std::exchange(other.ring_, nullptr);
        ticket_ = other.ticket_;
      }
      return *this;
    }
    ~slot_hold() { end_quietly(); }

    // Whether it holds a slot (false: default-constructed, moved from, ended, or a try/timed
    // call that found the channel full/empty).
    explicit operator bool() const noexcept { return ring_ != nullptr; }

   protected:
    slot_hold(ring_type* r, const ticket& t) noexcept : ring_(r), ticket_(t) {}
    std::byte* payload() const noexcept { return ring_ != nullptr ? ring_->slots().payload(ticket_.slot) : nullptr; }
    // Ends the hold with the ring's commit/abandon/release `s` (or not_owner if it is empty).
    void finish(status s, const char* op) {
      if (s != status::ok) channel::throw_status(s, op);
      ring_ = nullptr;
    }
    void end_quietly() noexcept {
      // The destructor cannot report; a hold ended on another thread stays locked (contract).
      if (ring_ != nullptr) (void)(Producer ? ring_->abandon(ticket_) : ring_->release(ticket_));
      ring_ = nullptr;
    }

    ring_type* ring_ = nullptr;
    ticket ticket_{};
  };

 public:
  // --- construction ---------------------------------------------------------------------------

  // Creates the channel `name` ("name" or "/name", both /dev/shm/name) for max_num_msg
  // messages of up to max_msg_size bytes each (0 allowed), permission bits exactly `mode`;
  // O_EXCL: never an existing name. Memory: 320 + max_num_msg * round_up(8 + max_msg_size, 64)
  // bytes, allocated now. Errors: invalid_argument (max_num_msg outside [1, 2^30], max_msg_size
  // above 2^30, bad name or mode), file_exists, permission_denied, no_space_on_device.
  channel(create_only_t, const char* name, std::size_t max_num_msg, std::size_t max_msg_size, mode_t mode = 0600)
      : channel(create_segment(name, detail::channel_segment, max_num_msg, max_msg_size, mode,
                               detail::construct_channel_control)) {}

  // Opens `name` if it exists (its own max_num_msg and max_msg_size apply: see get_max_msg();
  // the arguments must still be in range), else creates it as above. A concurrent creator's
  // initialization is waited for at most ready_timeout.
  channel(open_or_create_t, const char* name, std::size_t max_num_msg, std::size_t max_msg_size,
          mode_t mode = 0600, std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : channel(open_or_create_segment(name, detail::channel_segment, max_num_msg, max_msg_size, mode, ready_timeout,
                                       detail::construct_channel_control)) {}
  // As above, but an existing channel of any owner is accepted (any_owner_t, shared_memory.hpp).
  channel(open_or_create_t, const char* name, std::size_t max_num_msg, std::size_t max_msg_size, any_owner_t,
          mode_t mode = 0600, std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : channel(open_or_create_segment(name, detail::channel_segment, max_num_msg, max_msg_size, mode, ready_timeout,
                                       detail::construct_channel_control, true)) {}

  // Opens the existing channel `name` read-write. Waits at most ready_timeout (2 s by default)
  // for its creator to finish initializing it, then validates it (segment.hpp S2). Only a
  // channel this process's effective uid owns; with any_owner, one of any owner.
  // Errors: no_such_file_or_directory, permission_denied (the mode bits, or another user owns
  // it and any_owner was not passed), invalid_argument (bad name); ipc::errc::not_ready,
  // foreign_segment (not a channel), version_mismatch, corrupt_segment.
  channel(open_only_t, const char* name, std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : channel(open_segment(name, detail::channel_segment, ready_timeout)) {}
  channel(open_only_t, const char* name, any_owner_t, std::chrono::nanoseconds ready_timeout = default_ready_timeout)
      : channel(open_segment(name, detail::channel_segment, ready_timeout, true)) {}

  // Move-only. A moved-from channel may only be destroyed or assigned to. Reservations and
  // in-place messages refer to their channel object: end them before it is moved or destroyed.
  channel(channel&&) noexcept = default;
  channel& operator=(channel&&) noexcept = default;
  // Unmaps; the channel itself (its name and queued messages) stays until remove().
  ~channel() = default;

  // Removes the name (shm_unlink): open channel objects keep working; a later open fails and
  // a create makes a new channel. True if a segment was removed; false on any failure (no such
  // name, bad name, permission), as Boost's remove() does. shared_memory::remove_checked says why.
  static bool remove(const char* name) noexcept { return shared_memory::remove(name); }

  // --- sending --------------------------------------------------------------------------------

  // Copies `size` bytes from `buffer` into the channel as one message; blocks while it is full.
  // Errors: message_size if size > get_max_msg_size() (nothing queued), invalid_argument for a
  // null buffer with size > 0, resource_deadlock_would_occur, corrupt_segment.
  void send(const void* buffer, std::size_t size) { check(ring_.send(data(buffer, size), clamp(size), detail::wait_forever), "send"); }
  // As send, but never waits for room: false if the channel is full (nothing queued).
  [[nodiscard]] bool try_send(const void* buffer, std::size_t size) {
    return done(ring_.send(data(buffer, size), clamp(size), detail::wait_never), "try_send");
  }
  // As send, but waits for room at most until abs_time (any clock): false if it passed first.
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_send(const void* buffer, std::size_t size, const std::chrono::time_point<Clock, Duration>& abs_time) {
    const void* const p = data(buffer, size);
    return until(abs_time, [&](seam::deadline d) { return ring_.send(p, clamp(size), detail::wait_until(d)); }, "timed_send");
  }
  // As send, but waits for room at most `timeout` (<= 0: never sleeps): false if it passed first.
  template <class Rep, class Period>
  [[nodiscard]] bool send_for(const void* buffer, std::size_t size, const std::chrono::duration<Rep, Period>& timeout) {
    const void* const p = data(buffer, size);
    return done(ring_.send(p, clamp(size), detail::wait_until(lockstep::detail::deadline_after(timeout))), "send_for");
  }

  void send(std::span<const std::byte> message) { send(message.data(), message.size()); }
  [[nodiscard]] bool try_send(std::span<const std::byte> message) { return try_send(message.data(), message.size()); }
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_send(std::span<const std::byte> message, const std::chrono::time_point<Clock, Duration>& abs_time) {
    return timed_send(message.data(), message.size(), abs_time);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool send_for(std::span<const std::byte> message, const std::chrono::duration<Rep, Period>& timeout) {
    return send_for(message.data(), message.size(), timeout);
  }

  // --- receiving ------------------------------------------------------------------------------

  // Moves the oldest message into `buffer` and sets recvd_size to its length; blocks while the
  // channel is empty. buffer_size must be >= get_max_msg_size() (POSIX mq_receive's rule, so
  // that no message can be too long for the buffer): else message_size, before anything is
  // read, and the message stays queued. Other errors: invalid_argument for a null buffer with
  // a nonzero size, resource_deadlock_would_occur, corrupt_segment (nothing consumed).
  void receive(void* buffer, std::size_t buffer_size, std::size_t& recvd_size) {
    std::uint32_t n = 0;
    check(ring_.receive(data(buffer, buffer_size), clamp(buffer_size), n, detail::wait_forever), "receive");
    recvd_size = n;
  }
  // As receive, but never waits for a message: false if the channel is empty.
  [[nodiscard]] bool try_receive(void* buffer, std::size_t buffer_size, std::size_t& recvd_size) {
    std::uint32_t n = 0;
    if (!done(ring_.receive(data(buffer, buffer_size), clamp(buffer_size), n, detail::wait_never), "try_receive")) return false;
    recvd_size = n;
    return true;
  }
  // As receive, but waits for a message at most until abs_time (any clock): false if it passed.
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_receive(void* buffer, std::size_t buffer_size, std::size_t& recvd_size,
                                   const std::chrono::time_point<Clock, Duration>& abs_time) {
    void* const p = data(buffer, buffer_size);
    std::uint32_t n = 0;
    if (!until(abs_time, [&](seam::deadline d) { return ring_.receive(p, clamp(buffer_size), n, detail::wait_until(d)); },
               "timed_receive"))
      return false;
    recvd_size = n;
    return true;
  }
  // As receive, but waits at most `timeout` (<= 0: never sleeps): false if it passed first.
  template <class Rep, class Period>
  [[nodiscard]] bool receive_for(void* buffer, std::size_t buffer_size, std::size_t& recvd_size,
                                 const std::chrono::duration<Rep, Period>& timeout) {
    return timed_receive(buffer, buffer_size, recvd_size, lockstep::detail::deadline_after(timeout));
  }

  void receive(std::span<std::byte> buffer, std::size_t& recvd_size) { receive(buffer.data(), buffer.size(), recvd_size); }
  [[nodiscard]] bool try_receive(std::span<std::byte> buffer, std::size_t& recvd_size) {
    return try_receive(buffer.data(), buffer.size(), recvd_size);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool timed_receive(std::span<std::byte> buffer, std::size_t& recvd_size,
                                   const std::chrono::time_point<Clock, Duration>& abs_time) {
    return timed_receive(buffer.data(), buffer.size(), recvd_size, abs_time);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool receive_for(std::span<std::byte> buffer, std::size_t& recvd_size,
                                 const std::chrono::duration<Rep, Period>& timeout) {
    return receive_for(buffer.data(), buffer.size(), recvd_size, timeout);
  }

  // --- zero copy ------------------------------------------------------------------------------
  //
  // A producer reserves a slot, writes the message straight into shared memory and commits
  // it; a consumer reads a message where it lies and then releases its slot. send and receive
  // are these plus one memcpy. A reservation (an in-place message) holds the channel's send
  // (receive) lock from its start to its end, so other senders (receivers) wait meanwhile:
  // keep it short, end it on the thread that started it, and do not block (on this channel or
  // anything else) while holding one.

  // A reserved, free slot. Destroying it without commit() abandons it: nothing is sent.
  class send_reservation : public slot_hold<true> {
   public:
    send_reservation() noexcept = default;
    // The slot's payload: get_max_msg_size() bytes of shared memory, writable until the
    // reservation ends (empty if it holds nothing).
    [[nodiscard]] std::span<std::byte> buffer() const noexcept {
      return {payload(), ring_ != nullptr ? ring_->max_msg_size() : 0};
    }
    // Sends the first `size` bytes of buffer() as one message; the reservation ends. Errors:
    // message_size if size > buffer().size() (nothing sent; it still holds the slot),
    // operation_not_permitted if it holds nothing or this is not the thread that reserved,
    // corrupt_segment.
    void commit(std::size_t size) {
      finish(ring_ != nullptr ? ring_->commit(ticket_, clamp(size)) : status::not_owner, "send_reservation::commit");
    }
    // Ends it without sending anything. Errors: operation_not_permitted (another thread, or
    // it holds nothing), corrupt_segment.
    void abandon() { finish(ring_ != nullptr ? ring_->abandon(ticket_) : status::not_owner, "send_reservation::abandon"); }

   private:
    friend class channel;
    using slot_hold<true>::slot_hold;
  };

  // The oldest message, in place. Destroying it releases it: the message is consumed.
  class received_message : public slot_hold<false> {
   public:
    received_message() noexcept = default;
    // The message's bytes in shared memory, valid until it ends (empty if it holds nothing).
    [[nodiscard]] std::span<const std::byte> data() const noexcept { return {payload(), size()}; }
    [[nodiscard]] std::size_t size() const noexcept { return ring_ != nullptr ? ticket_.size : 0; }
    // Consumes the message: its slot goes back to senders. Errors: operation_not_permitted
    // (another thread, or it holds nothing), corrupt_segment.
    void release() { finish(ring_ != nullptr ? ring_->release(ticket_) : status::not_owner, "received_message::release"); }

   private:
    friend class channel;
    using slot_hold<false>::slot_hold;
  };

  // Reserves a slot; blocks while the channel is full. Errors: resource_deadlock_would_occur,
  // corrupt_segment.
  [[nodiscard]] send_reservation reserve() { return take<send_reservation>(detail::wait_forever, "reserve"); }
  // An empty reservation if the channel is full.
  [[nodiscard]] send_reservation try_reserve() { return take<send_reservation>(detail::wait_never, "try_reserve"); }
  // An empty reservation if abs_time (any clock) passed while the channel stayed full.
  template <class Clock, class Duration>
  [[nodiscard]] send_reservation timed_reserve(const std::chrono::time_point<Clock, Duration>& abs_time) {
    return take_until<send_reservation>(abs_time, "timed_reserve");
  }
  template <class Rep, class Period>
  [[nodiscard]] send_reservation reserve_for(const std::chrono::duration<Rep, Period>& timeout) {
    return timed_reserve(lockstep::detail::deadline_after(timeout));
  }

  // The oldest message in place; blocks while the channel is empty. Errors:
  // resource_deadlock_would_occur, corrupt_segment (its size is out of range; not consumed).
  [[nodiscard]] received_message receive_in_place() { return take<received_message>(detail::wait_forever, "receive_in_place"); }
  // An empty received_message if the channel is empty.
  [[nodiscard]] received_message try_receive_in_place() {
    return take<received_message>(detail::wait_never, "try_receive_in_place");
  }
  template <class Clock, class Duration>
  [[nodiscard]] received_message timed_receive_in_place(const std::chrono::time_point<Clock, Duration>& abs_time) {
    return take_until<received_message>(abs_time, "timed_receive_in_place");
  }
  template <class Rep, class Period>
  [[nodiscard]] received_message receive_in_place_for(const std::chrono::duration<Rep, Period>& timeout) {
    return timed_receive_in_place(lockstep::detail::deadline_after(timeout));
  }

  // --- attributes -----------------------------------------------------------------------------

  // The channel's capacity in messages and its largest message, in bytes: fixed at creation.
  [[nodiscard]] std::size_t get_max_msg() const noexcept { return ring_.capacity(); }
  [[nodiscard]] std::size_t get_max_msg_size() const noexcept { return ring_.max_msg_size(); }
  // Messages in the channel now (detail/ring.hpp I8): exact while nobody is mid-operation,
  // otherwise a recent value in [0, get_max_msg()].
  [[nodiscard]] std::size_t get_num_msg() const noexcept { return ring_.num_msg(); }

 private:
  explicit channel(segment s) : segment_(std::move(s)), ring_(ring_of(segment_)) {}

  static ring_type ring_of(const segment& s) noexcept {
    auto* control = std::launder(reinterpret_cast<detail::channel_control*>(s.kind_area()));
    return {*control, mapped_slots(s.first_slot(), s.layout.slot_stride), s.layout.capacity, s.layout.max_msg_size};
  }

  // Sizes beyond 32 bits saturate: still above any max_msg_size for a send, still enough for
  // a receive buffer.
  static std::uint32_t clamp(std::size_t n) noexcept { return n > UINT32_MAX ? UINT32_MAX : std::uint32_t(n); }

  template <class Buffer>
  static Buffer* data(Buffer* p, std::size_t size) {
    if (p == nullptr && size != 0) [[unlikely]]
      throw_null_buffer();
    return p;
  }

  // ok -> true; full/empty or timed out -> false; every other outcome throws.
  static bool done(status s, const char* op) {
    if (s == status::ok) [[likely]]
      return true;
    if (s == status::would_block || s == status::timed_out) return false;
    throw_status(s, op);
  }
  // For the blocking calls: ok, or an exception.
  static void check(status s, const char* op) {
    if (s != status::ok) [[unlikely]]
      throw_status(s, op);
  }

  // Runs op(deadline) until it succeeds or abs_time has passed on its own clock (detail/deadline.hpp).
  template <class Clock, class Duration, class Op>
  static bool until(const std::chrono::time_point<Clock, Duration>& abs_time, Op op, const char* what) {
    return lockstep::detail::until(abs_time, [&](seam::deadline d) { return done(op(d), what); });
  }

  status hold(send_reservation& r, detail::ring_wait how) {
    ticket t;
    const status s = ring_.reserve(how, t);
    if (s == status::ok) r = send_reservation(&ring_, t);
    return s;
  }
  status hold(received_message& m, detail::ring_wait how) {
    ticket t;
    const status s = ring_.acquire(how, t);
    if (s == status::ok) m = received_message(&ring_, t);
    return s;
  }
  // A send_reservation or received_message: held, or empty if the channel was full (empty).
  template <class Hold>
  Hold take(detail::ring_wait how, const char* op) {
    Hold h;
    if (how.block) check(hold(h, how), op);
    else (void)done(hold(h, how), op);
    return h;
  }
  template <class Hold, class Clock, class Duration>
  Hold take_until(const std::chrono::time_point<Clock, Duration>& abs_time, const char* op) {
    Hold h;
    (void)until(abs_time, [&](seam::deadline d) { return hold(h, detail::wait_until(d)); }, op);
    return h;
  }

  [[noreturn, gnu::cold, gnu::noinline]] static void throw_null_buffer() {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "lockstep::ipc::channel: a null buffer with a nonzero size");
  }
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_status(status s, const char* op) {
    throw std::system_error(detail::to_error_code(s), std::string("lockstep::ipc::channel: ") + op);
  }

  segment segment_;
  ring_type ring_;
};

}  // namespace lockstep::ipc
