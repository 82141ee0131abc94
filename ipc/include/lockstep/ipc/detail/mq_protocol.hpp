// lockstep/ipc/detail/mq_protocol.hpp: THE message queue algorithm: N message slots, two index
// rings (free, full) run by ring.hpp's cursor protocol, and a receiver-side priority heap
// (priority_heap.hpp), under one send lock and one receive lock.
//
// Production (message_queue.hpp) runs it on a mapped segment; the Relacy model
// (models/message_queue_model.cpp) compiles this very file against the model seam, with the
// storage as seam::var cells. It includes only the seam, lockstep's mutex and the two algorithm
// headers it builds on; every protocol decision of the queue is here.
//
// Shared layout: mq_control (the kind area of a message_queue segment, segment.hpp, at segment
// offset 64), one group per 64-byte cache line, then the arrays (mq_layout below), then the
// slots (segment.hpp: slot_header {size, tag = priority} + payload).
//
//   | line | offset | field          | type               | written by                  | meaning                                   |
//   |------|--------|----------------|--------------------|-----------------------------|-------------------------------------------|
//   | S    | 0      | send_lock      | interprocess_mutex | senders                     | serializes senders (40 bytes: mutex.hpp)  |
//   | S    | 40     | free_tail_seen | u32                | the send_lock holder        | free ring: a recent tail (consumer cache) |
//   | S    | 44     | full_head_seen | u32                | the send_lock holder        | full ring: a recent head (producer cache) |
//   | S    | 48     | send_slot      | u32                | the send_lock holder        | Q6 journal: slot + 1 in the holder's hands|
//   | S    | 52     | send_free_pos  | u32                | the send_lock holder        | Q6: free ring position popped, or no_pos  |
//   | S    | 56     | send_full_pos  | u32                | the send_lock holder        | Q6: full ring position to publish to      |
//   | W    | 64     | free_head      | u32 futex word     | senders (pop a free slot)   | free ring head, bit 31 WAITERS            |
//   | W    | 68     | full_tail      | u32 futex word     | senders (push a message)    | full ring tail; receivers sleep on it     |
//   | R    | 128    | receive_lock   | interprocess_mutex | receivers                   | serializes receivers (40 bytes)           |
//   | R    | 168    | free_head_seen | u32                | the receive_lock holder     | free ring: a recent head (producer cache) |
//   | R    | 172    | full_tail_seen | u32                | the receive_lock holder     | full ring: a recent tail (consumer cache) |
//   | R    | 176    | heap_size      | u32                | the receive_lock holder     | entries in the heap, <= capacity          |
//   | R    | 184    | next_seq       | u64                | the receive_lock holder     | seq of the next message drained           |
//   | V    | 192    | free_tail      | u32 futex word     | receivers (push a free slot)| free ring tail; senders sleep on it       |
//   | V    | 196    | full_head      | u32 futex word     | receivers (drain)           | full ring head, bit 31 WAITERS            |
//   | J    | 256    | recv_op        | u32                | the receive_lock holder     | Q6 journal: mq_step none / push / pop     |
//   | J    | 260    | recv_n         | u32                | the receive_lock holder     | Q6: the heap's size before the step       |
//   | J    | 264    | recv_pos       | u32                | the receive_lock holder     | Q6: full (push) / free (pop) ring position|
//   | J    | 268    | recv_priority, | u32, u32, u64      | the receive_lock holder     | Q6: the heap entry pushed or popped       |
//   |      |        | recv_slot (272), recv_seq (280)      |                             |                                           |
//   | arr  | 320    | free[N], full[N] (u32 slot indices), heap[N] (priority_heap.hpp entries)                                         |
//
// A sender's per-message writes go to lines S and W and to its slot; a receiver's to R and V,
// the heap and the free ring: as in the channel, the two ends share no written line but the
// rings' entries, and each reads the other's cursors only when its cache runs out.
//
//   send:    [size > max: message_size] lock send_lock -> free ring: wait for data (the ring's
//            WAITERS/futex sleep, I5/I6 of ring.hpp) -> full ring has space (else corrupt, Q1)
//            -> s = free[head] (once, < N) -> free ring release -> write slot s: bytes, size,
//            priority -> full[tail] = s -> full ring publish (release; wakes receivers) -> unlock.
//   receive: [buffer < max: message_size] lock receive_lock -> drain: every published full
//            entry into the heap with seq = next_seq++ (Q3), then if the heap is empty: try ->
//            would_block, else sleep on the full ring's tail and drain again (Q4) -> check the
//            top (slot < N, size <= max) -> free ring has space (else corrupt, Q1) -> pop the
//            heap -> copy the bytes out -> free[tail] = slot -> free ring publish (release;
//            wakes senders) -> unlock.
//
// Invariants (N = capacity, the validated local copy):
//   Q1 (slots)        Every slot index 0..N-1 is in exactly one place: the free ring, the hands
//                     of the send_lock holder (popped, not yet pushed to full), the full ring,
//                     the heap, or the hands of the receive_lock holder (popped, not yet in free).
//                     So neither ring can overflow and the heap holds at most N entries: a ring
//                     found full when pushed to, or a heap_size above N, is corruption, reported
//                     before anything is changed.
//   Q2 (ownership)    A slot is written only by the sender that popped it from the free ring,
//                     and read only by a receiver after the full ring's publish of it (ring.hpp
//                     I3): slot accesses are ordered by the rings' release/acquire, never by
//                     the locks. The receiver copies the bytes out before it pushes the slot
//                     back to the free ring.
//   Q3 (order)        Senders publish to the full ring in send_lock order, and a receiver drains
//                     it in that order, assigning seq from next_seq: seq order is commit order.
//                     A receive drains every published entry before it takes the heap's top, so
//                     it returns the highest-priority message committed before its drain,
//                     FIFO (lowest seq) within that priority (priority_heap.hpp H2): POSIX's rule.
//   Q4 (no lost       A receiver sleeps only when, under receive_lock, the heap is empty and the
//       wake-up)      full ring was just found empty (its last try_data: ring.hpp I5 then makes
//                     the next publish wake it). After any wake-up it drains and re-checks the
//                     heap, not only the full ring: another receiver may have drained this
//                     receiver's message into the heap meanwhile. A sender sleeps on the free
//                     ring alone, whose every push is a publish.
//   Q5 (untrusted)    Every index, size and priority read from shared memory is read once,
//                     checked against the local N, max_msg_size and mq_prio_max, and only the
//                     checked copy is used; a violation is corrupt, with nothing consumed.
//
//   Q6 (owner death)  Besides the rings' cursors (ring.hpp I9) the queue has state that a holder
//                     changes in several steps: a sender's slot between its free-ring pop and
//                     its full-ring publish (in no ring: Q1's "hands"), and a receiver's heap
//                     during a push (drain) or a pop, and its slot between the pop and the
//                     free-ring publish. Each end keeps a journal written before the step it
//                     describes (seam::program_order keeps the order for a killed process), and
//                     the exchange that ends the step is its commit point:
//                       send:    send_slot = slot + 1 (with the free and full positions) before
//                                the pop, 0 after the publish. The repair after a dead sender:
//                                free_head not past send_free_pos -> the slot is still free
//                                (forget it); full_tail past send_full_pos -> published (forget
//                                it); else the slot is in the holder's hands and stays there
//                                (send_free_pos = no_pos): the next send fills it instead of
//                                popping one, also a send asleep on an empty free ring whose
//                                relock did the repair (the free ring may stay empty for ever
//                                if that slot is the queue's last). A half-written message is
//                                never published.
//                       receive: recv_op = push/pop with the heap's size before, the ring
//                                position and the entry, before the heap changes; none after
//                                the step's exchange. The repair: a push whose full-ring release
//                                did not happen is finished (heap_restore, size + 1, next_seq,
//                                release); a pop whose free-ring publish did not happen is
//                                undone (heap_restore with the popped entry back, size as
//                                before): the message is delivered to the next receiver, with
//                                its seq, in its place (Q3). A pop whose publish happened lost
//                                the message only if the dead receiver had not returned it.
//                                Then heap_order, each sift-down journalled as a sift step
//                                (the entry it carries), which a later repairer finishes with
//                                heap_restore: a repairer may die too (priority_heap.hpp H4).
//                     The heap's repair relies on priority_heap.hpp H3 (one hole at every write). Q1
//                     holds again after each repair; the positions in the journals are checked
//                     against the cursors, which only the lock holder moves (ring.hpp I2), so
//                     each test is exact. (Mutants message_queue.repair_drops_held_slot,
//                     message_queue.repair_skips_heap, message_queue.wait_ignores_held_slot,
//                     message_queue.order_unannounced; models sender_death_2t,
//                     receiver_death_2t, sender_death_waiter_3t, repairer_death_3t.)
//
// Memory ordering: the queue adds no atomic operation of its own: every order is the rings'
// (ring.hpp's Memory ordering block). The free ring's publish (release) orders a receiver's
// copy-out of slot s before the sender's later overwrite of s, which follows its acquire read
// of free_tail (or a cache filled from one); the full ring's publish orders the sender's slot
// writes and full-entry write before the receiver's reads. The heap, heap_size, next_seq and
// the caches are plain data under receive_lock or send_lock.
#pragma once

#include <lockstep/ipc/detail/priority_heap.hpp>
#include <lockstep/ipc/detail/ring.hpp>
#include <lockstep/mutex.hpp>
#include <lockstep/seam.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace lockstep::ipc::detail {

// Priorities are 0 .. mq_prio_max - 1: Linux's MQ_PRIO_MAX (sysconf(_SC_MQ_PRIO_MAX)).
inline constexpr std::uint32_t mq_prio_max = 32768;

// The queue's control block (the table above). Constructed once, in the zero-filled segment,
// before the segment is published; the free ring then holds every slot (init_free_ring).
struct mq_control {
  alignas(64) interprocess_mutex send_lock;  // line S
  seam::var<std::uint32_t> free_tail_seen;
  seam::var<std::uint32_t> full_head_seen;
  seam::var<std::uint32_t> send_slot;      // Q6 send journal: slot + 1 in the holder's hands, or 0
  seam::var<std::uint32_t> send_free_pos;  // the free ring position it pops (no_pos: popped)
  seam::var<std::uint32_t> send_full_pos;  // the full ring position it publishes to
  alignas(64) seam::futex_word free_head{0};  // line W
  seam::futex_word full_tail{0};
  alignas(64) interprocess_mutex receive_lock;  // line R
  seam::var<std::uint32_t> free_head_seen;
  seam::var<std::uint32_t> full_tail_seen;
  seam::var<std::uint32_t> heap_size;
  seam::var<std::uint64_t> next_seq;
  alignas(64) seam::futex_word free_tail{0};  // line V
  seam::futex_word full_head{0};
  alignas(64) seam::var<std::uint32_t> recv_op;  // line J, Q6 receive journal: mq_step
  seam::var<std::uint32_t> recv_n;         // the heap's size before the step
  seam::var<std::uint32_t> recv_pos;       // push: the full ring position drained; pop: the free ring position
  seam::var<std::uint32_t> recv_priority;  // the entry pushed or popped
  seam::var<std::uint32_t> recv_slot;
  seam::var<std::uint64_t> recv_seq;
};

// The receive journal's step (Q6). sift: a repairer's heap_order sift-down (priority_heap.hpp
// H4), recv_n the heap's size, the entry the one it carries.
enum class mq_step : std::uint32_t { none = 0, push = 1, pop = 2, sift = 3 };
// send_free_pos when the slot in the send_lock holder's hands was popped by an earlier holder.
inline constexpr std::uint32_t no_pos = 0xffff'ffffu;

static_assert(seam::is_model || (std::is_standard_layout_v<mq_control> && offsetof(mq_control, send_lock) == 0 &&
                                 offsetof(mq_control, free_tail_seen) == 40 && offsetof(mq_control, full_head_seen) == 44 &&
                                 offsetof(mq_control, free_head) == 64 && offsetof(mq_control, full_tail) == 68 &&
                                 offsetof(mq_control, receive_lock) == 128 && offsetof(mq_control, free_head_seen) == 168 &&
                                 offsetof(mq_control, full_tail_seen) == 172 && offsetof(mq_control, heap_size) == 176 &&
                                 offsetof(mq_control, next_seq) == 184 && offsetof(mq_control, free_tail) == 192 &&
                                 offsetof(mq_control, full_head) == 196 && offsetof(mq_control, send_slot) == 48 &&
                                 offsetof(mq_control, send_free_pos) == 52 && offsetof(mq_control, send_full_pos) == 56 &&
                                 offsetof(mq_control, recv_op) == 256 && offsetof(mq_control, recv_n) == 260 &&
                                 offsetof(mq_control, recv_pos) == 264 && offsetof(mq_control, recv_priority) == 268 &&
                                 offsetof(mq_control, recv_slot) == 272 && offsetof(mq_control, recv_seq) == 280 &&
                                 sizeof(mq_control) == 320 && alignof(mq_control) == 64),
              "the message queue's control block layout is fixed: every process, 32- or 64-bit, must agree");
static_assert(seam::is_model || (sizeof(seam::var<std::uint64_t>) == 8 && alignof(seam::var<std::uint64_t>) == 8),
              "next_seq is a plain 64-bit word at a fixed offset");

// Where the arrays sit in the kind area (offsets from the start of mq_control), for capacity n.
// Each array starts on a cache line. false if n is out of range (1 .. max_ring_capacity).
struct mq_arrays {
  std::uint64_t free_ring, full_ring, heap, end;
};
constexpr bool mq_layout(std::uint64_t n, mq_arrays& out) noexcept {
  if (n == 0 || n > max_ring_capacity) return false;
  auto line = [](std::uint64_t b) { return (b + 63) / 64 * 64; };
  out.free_ring = line(sizeof(mq_control));  // 320 in production
  out.full_ring = out.free_ring + line(4 * n);
  out.heap = out.full_ring + line(4 * n);
  out.end = out.heap + line(sizeof(heap_entry) * n);  // n <= 2^30: no overflow
  return true;
}

// Creator only, before publication: the free ring holds slots 0..n-1, the other ring and the
// heap are empty. `write_free` is the Storage's.
template <class Storage>
void init_free_ring(mq_control& c, Storage& s, std::uint32_t n) {
  for (std::uint32_t i = 0; i < n; ++i) s.write_free(i, i);
  c.free_tail.store(n, seam::order::relaxed);  // published with the segment (segment.hpp S1)
}

// The protocol on one queue. Storage is a small copyable view of the arrays and slots that only
// moves data; every decision is here:
//   std::uint32_t read_free(std::uint32_t i) const;  void write_free(std::uint32_t i, std::uint32_t v);
//   std::uint32_t read_full(std::uint32_t i) const;  void write_full(std::uint32_t i, std::uint32_t v);
//   heap_entry read_heap(std::uint32_t i) const;     void write_heap(std::uint32_t i, const heap_entry&);
//     (write_heap: the whole entry in one store instruction, which a kill cannot split: H3, H4)
//   void write_size(slot, n); std::uint32_t read_size(slot) const;
//   void write_priority(slot, p); std::uint32_t read_priority(slot) const;
//   void copy_in(slot, const void* src, n); void copy_out(slot, void* dst, n) const;
// Each read_* is one read of shared memory (Q5). Production: message_queue.hpp's
// mapped_queue_storage (memcpy and plain words in the mapping); the model: seam::var cells.
template <class Storage>
class mq_protocol {
 public:
  // capacity (<= max_ring_capacity) and max_msg_size are the validated local copies.
  mq_protocol(mq_control& control, Storage storage, std::uint32_t capacity, std::uint32_t max_msg_size) noexcept
      : c_(&control), s_(storage), capacity_(capacity), max_msg_size_(max_msg_size) {}

  std::uint32_t capacity() const noexcept { return capacity_; }
  std::uint32_t max_msg_size() const noexcept { return max_msg_size_; }

  // Messages in the queue: N - free slots. Exact when nobody is mid-operation; otherwise it
  // counts a message from its sender's pop of a free slot until its receiver's push back.
  std::uint32_t num_msg() const { return capacity_ - free_ring().count_snapshot(); }

  // Sends `size` bytes from src with `priority` (< mq_prio_max: the caller checks it).
  // ok; message_size (size > max_msg_size, nothing queued); would_block (full, try);
  // timed_out; corrupt (Q1, Q5: nothing changed); would_deadlock (the caller holds send_lock).
  ring_status send(const void* src, std::uint32_t size, std::uint32_t priority, ring_wait how) {
    if (size > max_msg_size_) return ring_status::message_size;  // before touching anything
    const end_lock l = send_end();
    ring_status st = lock_until(l, how.deadline);
    if (st != ring_status::ok) return st;
    std::uint32_t upos = 0;
    std::uint32_t fpos = 0;
    std::uint32_t slot = c_->send_slot.read();  // Q6: 0, or a slot a dead holder had popped (once)
    while (slot == 0) {
      st = free_ring().try_data(fpos);  // I6: full only from a fresh read
      if (st == ring_status::ok) [[likely]]
        break;
      if (st != ring_status::would_block || !how.block) return unlock_with(l, st);
      st = free_ring().sleep_for_data(l, how.deadline);  // sleeps on free_tail (Q4)
      if (st != ring_status::ok) return st;              // unlocked
      // The relock may have repaired a dead sender's journal and kept its slot for us (Q6):
      // fill that one, even if the free ring stays empty (it may, for ever: the slot is the
      // queue's last). Popping another would overwrite the journal and lose it (Q1).
      if (!seam::mutant("message_queue.wait_ignores_held_slot")) slot = c_->send_slot.read();
    }
    if (slot == 0) [[likely]] {
      if (full_ring().try_space(upos) != ring_status::ok) [[unlikely]]  // Q1: N slots, N entries
        return unlock_with(l, ring_status::corrupt);
      slot = s_.read_free(free_ring().slot(fpos));  // Q5: once
      if (slot >= capacity_) [[unlikely]]
        return unlock_with(l, ring_status::corrupt);
      journal_send(slot, fpos, upos);  // Q6: before the pop
      free_ring().release(fpos);  // the slot is ours (Q2); its old bytes were read before the
                                  // receiver's free publish, which our acquire saw
    } else {
      // A dead sender's slot, kept by the repair (Q6): the journal already names it, popped,
      // and the full ring's tail, which nobody moved since.
      if (--slot >= capacity_ || full_ring().try_space(upos) != ring_status::ok) [[unlikely]]
        return unlock_with(l, ring_status::corrupt);
    }
    s_.copy_in(slot, src, size);
    s_.write_size(slot, size);
    s_.write_priority(slot, priority);
    s_.write_full(full_ring().slot(upos), slot);
    full_ring().publish(upos);  // release: the slot and the entry reach the receiver (Q2)
    seam::program_order();
    c_->send_slot.write(0);  // Q6: the slot is the full ring's now
    return unlock(l);
  }

  // Receives the first message (Q3) into dst (room for dst_size bytes): its size and priority.
  // ok; message_size (dst_size < max_msg_size: POSIX's rule, the message stays queued);
  // would_block (empty, try); timed_out; corrupt (Q1, Q5: nothing consumed); would_deadlock.
  ring_status receive(void* dst, std::uint32_t dst_size, std::uint32_t& size, std::uint32_t& priority,
                      ring_wait how) {
    if (dst_size < max_msg_size_) return ring_status::message_size;  // before touching anything
    const end_lock l = receive_end();
    ring_status st = lock_until(l, how.deadline);
    if (st != ring_status::ok) return st;
    std::uint32_t n = 0;
    bool woken = false;
    for (;;) {
      std::uint32_t drained = 0;
      st = drain(n, drained);
      if (st != ring_status::ok) [[unlikely]]
        return unlock_with(l, st);
      // Q4: after a wake-up the heap decides, not what this drain found.
      const bool waiting_for_full_only = seam::mutant("message_queue.woken_checks_full_only") && woken;
      if (n != 0 && !(waiting_for_full_only && drained == 0)) break;
      if (!how.block) return unlock_with(l, ring_status::would_block);
      // The drain's last try_data found the full ring empty: sleep on that tail (ring.hpp I5).
      st = full_ring().sleep_for_data(l, how.deadline);
      if (st != ring_status::ok) return st;  // unlocked
      woken = true;
    }
    const heap_entry top = s_.read_heap(0);  // Q5: checked before anything changes
    if (top.slot >= capacity_ || top.priority >= mq_prio_max) [[unlikely]]
      return unlock_with(l, ring_status::corrupt);
    const std::uint32_t len = s_.read_size(top.slot);  // once
    if (len > max_msg_size_) [[unlikely]]
      return unlock_with(l, ring_status::corrupt);
    std::uint32_t fpos = 0;
    if (free_ring().try_space(fpos) != ring_status::ok) [[unlikely]]  // Q1
      return unlock_with(l, ring_status::corrupt);
    journal_receive(mq_step::pop, n, fpos, top);  // Q6: before the heap changes
    heap_pop(s_, n);
    c_->heap_size.write(n - 1);
    if (seam::mutant("message_queue.free_before_copy")) {
      s_.write_free(free_ring().slot(fpos), top.slot);
      free_ring().publish(fpos);
      s_.copy_out(top.slot, dst, len);
    } else {
      s_.copy_out(top.slot, dst, len);  // Q2: before the slot goes back
      s_.write_free(free_ring().slot(fpos), top.slot);
      free_ring().publish(fpos);  // release: our reads happen before the next sender's writes
    }
    end_receive_step();  // Q6: the message is consumed
    size = len;
    priority = top.priority;
    return unlock(l);
  }

  // Calls f(priority) for each message queued (in the heap or published to the full ring),
  // under receive_lock taken until deadline d; the order of calls is unspecified. For
  // inspection (lockstep-mq info): it drains like a receive, so it changes no delivery order.
  // ok, timed_out, corrupt, would_deadlock.
  template <class F>
  ring_status for_each_priority(F&& f, seam::deadline d) {
    const end_lock l = receive_end();
    ring_status st = lock_until(l, d);
    if (st != ring_status::ok) return st;
    std::uint32_t n = 0, drained = 0;
    st = drain(n, drained);
    if (st != ring_status::ok) return unlock_with(l, st);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t p = s_.read_heap(i).priority;
      if (p >= mq_prio_max) return unlock_with(l, ring_status::corrupt);
      f(p);
    }
    return unlock(l);
  }

 private:
  ring_cursors free_ring() const noexcept {
    return {c_->free_tail, c_->free_head, c_->free_head_seen, c_->free_tail_seen, capacity_};
  }
  ring_cursors full_ring() const noexcept {
    return {c_->full_tail, c_->full_head, c_->full_head_seen, c_->full_tail_seen, capacity_};
  }

  // receive_lock held. Moves every published full-ring entry into the heap (Q3); n: the heap's
  // size afterwards, drained: how many moved. ok or corrupt (lock still held).
  ring_status drain(std::uint32_t& n, std::uint32_t& drained) {
    n = c_->heap_size.read();  // once
    if (n > capacity_) [[unlikely]]
      return ring_status::corrupt;  // Q1
    std::uint64_t seq = c_->next_seq.read();
    for (;;) {
      std::uint32_t pos = 0;
      const ring_status st = full_ring().try_data(pos);
      if (st == ring_status::would_block) break;
      if (st != ring_status::ok) [[unlikely]]
        return st;
      const std::uint32_t slot = s_.read_full(full_ring().slot(pos));  // Q5: once each
      if (slot >= capacity_ || n == capacity_) [[unlikely]]
        return ring_status::corrupt;
      const std::uint32_t priority = s_.read_priority(slot);
      if (priority >= mq_prio_max) [[unlikely]]
        return ring_status::corrupt;
      const heap_entry e{priority, slot, seq};
      journal_receive(mq_step::push, n, pos, e);  // Q6: before the heap changes
      heap_push(s_, n, e);
      c_->heap_size.write(++n);
      c_->next_seq.write(++seq);
      full_ring().release(pos);  // the entry is read: the full ring's slot goes back to senders
      end_receive_step();
      ++drained;
      if (seam::mutant("message_queue.drain_one")) break;
    }
    return ring_status::ok;
  }

  // --- owner death (Q6) ------------------------------------------------------------------------

  end_lock send_end() noexcept {
    return {c_->send_lock, [](void* q) { return static_cast<mq_protocol*>(q)->repair_send(); }, this};
  }
  end_lock receive_end() noexcept {
    return {c_->receive_lock, [](void* q) { return static_cast<mq_protocol*>(q)->repair_receive(); }, this};
  }

  // The journals: the step's fields first, then what makes them valid (send_slot, recv_op),
  // each in program order before the step they describe (seam::program_order).
  void journal_send(std::uint32_t slot, std::uint32_t fpos, std::uint32_t upos) {
    c_->send_free_pos.write(fpos);
    c_->send_full_pos.write(upos);
    seam::program_order();
    c_->send_slot.write(slot + 1);
    seam::program_order();
  }
  void journal_receive(mq_step op, std::uint32_t n, std::uint32_t pos, const heap_entry& e) {
    c_->recv_n.write(n);
    c_->recv_pos.write(pos);
    c_->recv_priority.write(e.priority);
    c_->recv_slot.write(e.slot);
    c_->recv_seq.write(e.seq);
    seam::program_order();
    c_->recv_op.write(std::uint32_t(op));
    seam::program_order();
  }
  void end_receive_step() {
    seam::program_order();
    c_->recv_op.write(std::uint32_t(mq_step::none));
    seam::program_order();  // before the next step's journal fields: they must not look valid early
  }

  // send_lock came with owner_dead: a sender died holding it. Its journal says which of three
  // places the slot it named is in (Q6): still in the free ring (free_head has not moved past
  // send_free_pos), in the full ring (full_tail has moved past send_full_pos: published), or
  // in the holder's hands (between the two): kept there for the next send to fill, so no slot
  // is lost (Q1) and nothing half-written is ever published. Then both rings' caches are reset.
  ring_status repair_send() {
    const std::uint32_t held = c_->send_slot.read();  // Q5: each field once
    if (held != 0) {
      const std::uint32_t fpos = c_->send_free_pos.read();
      const std::uint32_t upos = c_->send_full_pos.read();
      if (held - 1 >= capacity_ || upos >= 2 * capacity_ || (fpos != no_pos && fpos >= 2 * capacity_))
        return ring_status::corrupt;
      // By I2 (ring.hpp) only the send_lock holder moves these two: exact.
      const std::uint32_t free_head = c_->free_head.load(seam::order::relaxed) & position_mask;
      const std::uint32_t full_tail = c_->full_tail.load(seam::order::relaxed) & position_mask;
      const bool popped = fpos == no_pos || free_head != fpos;
      const bool published = full_tail != upos;
      if (!popped || published || seam::mutant("message_queue.repair_drops_held_slot"))
        c_->send_slot.write(0);
      else
        c_->send_free_pos.write(no_pos);  // in our hands: the next send fills it
    }
    const ring_status st = free_ring().revalidate_consumer();
    return st != ring_status::ok ? st : full_ring().revalidate_producer();
  }

  // receive_lock came with owner_dead: a receiver died holding it. A step its journal names is
  // finished forward if it was a drain (push) whose full ring release had not happened yet,
  // and undone if it was a pop whose free ring publish had not happened yet: the message goes
  // back into the heap with its seq and is delivered to the next receiver, in its place (Q3).
  // A pop whose publish happened lost only the message the dead receiver was returning.
  // The heap is repaired in two steps that survive the repairer's own death (priority_heap.hpp
  // H4): heap_restore puts the journal's entry back (one write), the step's bookkeeping
  // follows and the step ends; then heap_order restores the heap order, each of its
  // sift-downs journalled as a sift step, which a later repairer finishes with heap_restore.
  ring_status repair_receive() {
    const std::uint32_t op = c_->recv_op.read();  // Q5: each field once
    if (op != std::uint32_t(mq_step::none)) {
      const std::uint32_t n = c_->recv_n.read();
      const std::uint32_t pos = c_->recv_pos.read();
      const heap_entry e{c_->recv_priority.read(), c_->recv_slot.read(), c_->recv_seq.read()};
      if (pos >= 2 * capacity_ || e.slot >= capacity_ || e.priority >= mq_prio_max) return ring_status::corrupt;
      const bool repair_heap = !seam::mutant("message_queue.repair_skips_heap");
      if (op == std::uint32_t(mq_step::push)) {
        if (n >= capacity_) return ring_status::corrupt;  // Q1: room for one more
        if ((c_->full_head.load(seam::order::relaxed) & position_mask) == pos) {  // not released (I2: exact)
          if (repair_heap) heap_restore(s_, n + 1, e);
          c_->heap_size.write(n + 1);
          c_->next_seq.write(e.seq + 1);
          full_ring().release(pos);
        }
      } else if (op == std::uint32_t(mq_step::pop)) {
        if (n == 0 || n > capacity_) return ring_status::corrupt;
        if ((c_->free_tail.load(seam::order::relaxed) & position_mask) == pos) {  // not given back
          if (repair_heap) heap_restore(s_, n, e);
          c_->heap_size.write(n);
        }
      } else if (op == std::uint32_t(mq_step::sift)) {  // a repairer died in heap_order
        if (n == 0 || n > capacity_) return ring_status::corrupt;
        heap_restore(s_, n, e);
      } else {
        return ring_status::corrupt;
      }
      end_receive_step();
    }
    const std::uint32_t size = c_->heap_size.read();  // once
    if (size > capacity_) return ring_status::corrupt;  // Q1
    if (!seam::mutant("message_queue.repair_skips_heap") && !heap_in_order(s_, size))
      heap_order(
          s_, size, [&](const heap_entry& c) { journal_receive(mq_step::sift, size, 0, c); },
          [&] { end_receive_step(); });
    const ring_status st = free_ring().revalidate_producer();
    return st != ring_status::ok ? st : full_ring().revalidate_consumer();
  }

  mq_control* c_;
  Storage s_;
  std::uint32_t capacity_;
  std::uint32_t max_msg_size_;
};

}  // namespace lockstep::ipc::detail
