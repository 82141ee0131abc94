// lockstep/ipc/detail/ring.hpp: THE channel algorithm: a bounded multi-producer multi-consumer
// ring of variable-size messages in shared memory, with two locks and two futex cursors.
//
// Production (channel.hpp) runs it on a mapped segment; the Relacy model compiles this very
// file against the model seam, with the control block in model memory and the slots as
// seam::var cells. It includes only the seam and lockstep's mutex. Two layers:
//   ring_cursors        the cursor protocol (wait for room / data, publish, release) of one ring,
//                       run under a lock the caller holds (so that the message queue can run
//                       two rings under one lock).
//   message_ring<Slots> the channel: one ring of message slots, send_lock for producers,
//                       receive_lock for consumers; reserve/commit and acquire/release (the
//                       zero-copy path) and the copying send/receive built on them.
//
// Shared layout: channel_control (the kind area of a channel segment, segment.hpp, at segment
// offset 64), one group per 64-byte cache line; then the slots (segment.hpp: slot_header + payload).
//
//   | line | offset | field        | type               | written by                        | meaning                                       |
//   |------|--------|--------------|--------------------|-----------------------------------|-----------------------------------------------|
//   | P    | 0      | send_lock    | interprocess_mutex | producers                         | serializes producers (40 bytes: its word and  |
//   |      |        |              |                    |                                   | robust-list node, mutex.hpp R-states)         |
//   | P    | 40     | head_seen    | u32                | the send_lock holder              | a value head held: a lower bound of head (I4) |
//   | T    | 64     | tail         | u32 futex word     | the send_lock holder; consumers   | bits 0-30: position of the next slot to fill; |
//   |      |        |              |                    | only set WAITERS (I2)             | bit 31 WAITERS: consumers may sleep on it     |
//   | C    | 128    | receive_lock | interprocess_mutex | consumers                         | serializes consumers                          |
//   | C    | 168    | tail_seen    | u32                | the receive_lock holder           | a value tail held: a lower bound of tail (I4) |
//   | H    | 192    | head         | u32 futex word     | the receive_lock holder;          | bits 0-30: position of the next slot to read; |
//   |      |        |              |                    | producers only set WAITERS (I2)   | bit 31 WAITERS: producers may sleep on it     |
//   | slot | k      | size, bytes  | u32 + payload      | the producer holding position p   | the message at position p, k = p mod capacity |
//
// Positions count modulo 2 * capacity (the "two laps" ring: full and empty differ without a
// wasted slot), capacity <= 2^30, so a position fits bits 0-30; count = (tail - head) mod
// 2 * capacity; the slot of position p is p mod capacity (p or p - capacity). Not modulo 2^31:
// a capacity that does not divide 2^31 would map two live positions to one slot at the wrap
// (for capacity 3, positions 2^31 - 2 and 0 are both slot 0).
//
//   send:    lock send_lock -> t = tail; room if t - head_seen < capacity, else re-read head
//            (acquire) -> write slot t: size, bytes -> tail.exchange(next(t), release); if it had
//            WAITERS: wake all -> unlock.      Full: try -> false; else spin, set WAITERS on
//            head, unlock, futex_wait(head), relock, re-check.
//   receive: the mirror image: receive_lock, head, tail_seen / tail, read slot h (size read
//            once, checked), head.exchange(next(h), release), wake producers if WAITERS.
//
// Invariants:
//   I1 (range)        Both positions are below 2 * capacity, and 0 <= count <= capacity. Every
//                     position and count computed from shared memory is checked against the
//                     process-local capacity; one out of range is corruption
//                     (ring_status::corrupt) and is never used, so a slot index is always
//                     below capacity.
//   I2 (writers)      tail's position changes only by the send_lock holder's publish exchange,
//                     head's only by the receive_lock holder's release exchange. The other side
//                     only sets WAITERS, by CAS on an unchanged value. So a lock holder reads its
//                     own cursor exactly with a relaxed load (the lock orders it after the last
//                     move), and such a CAS cannot succeed on a recycled value: the CAS-er holds
//                     its own lock, so its cursor is fixed, and the other stays within capacity
//                     of it (I1), so it cannot go once around the 2 * capacity positions.
//   I3 (slots)        Slots at positions [head, tail) hold published messages and belong to
//                     consumers; [tail, head + capacity) are free and belong to producers. A
//                     producer writes only slot tail, and only while count < capacity; a
//                     consumer reads only slot head, and only while count > 0. A slot changes
//                     hands only through the exchange that moves a cursor past it, after all
//                     accesses to it are done.
//   I4 (caches)       head_seen is a value head held, and head only moves forward (and never
//                     past tail), so tail - head_seen >= tail - head: room by the cache is real
//                     room. Likewise data by tail_seen is real data. A cached position or count
//                     out of range is not trusted: the cursor is re-read and checked (I1).
//   I5 (no lost       A waiter sleeps only in futex_wait(cursor, v), where v carries WAITERS
//       wake-up)      and the position at which it saw the ring full (empty), and only after
//                     unlocking (I6). The cursor's owner moves it only by exchange, which clears
//                     WAITERS and returns the old value; if that had WAITERS, it wakes every
//                     sleeper. The kernel compares and queues atomically with respect to
//                     FUTEX_WAKE, so a sleeper stays asleep only while the cursor still holds v,
//                     that is, until the exchange that wakes it. (Wake-all: one bit cannot say
//                     how many sleep; a sleeper count in the word could replace it.) A waiter
//                     that times out leaves WAITERS set: the next move makes one futex_wake for
//                     nobody, as with the mutex's I4. (Mutants channel.publish_no_wake,
//                     channel.release_no_wake, channel.sleep_without_waiters.)
//   I6 (no sleep      Nobody sleeps holding send_lock or receive_lock. A holder is copying or
//       under a lock) deciding, so a try_* call waits for the lock only as long as one copy (or
//                     a zero-copy reservation, short by contract), and it reports full (empty)
//                     only from a fresh, acquire read of the other cursor under the lock: the
//                     channel holds exactly `capacity` messages. (Mutant
//                     channel.try_trusts_cache.)
//   I7 (sizes)        A slot's size is written before the publish exchange and read once by the
//                     consumer after it; the local copy is checked against the local
//                     max_msg_size before any copy. A size out of range is corruption: the
//                     message is not consumed, head does not move.
//   I8 (membership)   A message is in the channel from its publish exchange until its
//                     consumer's release exchange; the count (I1) is the number of such messages.
//   I9 (owner death)  The cursor exchanges are the ring's only commit points: at every other
//                     instruction of a lock holder, the shared state is what it was at the last
//                     exchange, except for the cache it may be refilling (an aligned 32-bit
//                     store of a value the other cursor held: never torn) and the bytes of a
//                     slot it owns (I3) and has not published or released. So a holder killed
//                     at any instruction leaves: a producer, an unpublished slot (tail did not
//                     move: its half-written message is never delivered, the slot is free again)
//                     or a published one (done); a consumer, an unreleased message (head did
//                     not move: the next consumer gets it again, whole) or a released one (done,
//                     lost with the dead consumer if it had not returned it yet). Its lock is
//                     robust (mutex.hpp): the next locker gets owner_dead, repairs the end with
//                     end_lock::repair (re-reads both cursors, checks I1, resets the cache from
//                     the fresh read: revalidate_*), then consistent(). A holder killed between
//                     its exchange and its futex_wake strands no sleeper: every cursor sleep
//                     is in slices of sleep_slice (150 ms) and re-checks after each. The
//                     line-by-line table is docs/fault-tolerance.md's. (Mutant
//                     channel.recover_skips_consistent; models producer_death_2t,
//                     consumer_death_2t.)
//
// Memory ordering:
//   - publish is tail.exchange(release): the slot's size and bytes, written before it, are
//     visible to a consumer whose decision to read came from an acquire load of tail that read
//     this value or a later one, or from a cache filled from such a load (I3, I4).
//     (mutants channel.publish_relaxed, channel.publish_before_copy_in)
//   - release is head.exchange(release): the consumer's reads of the slot happen before a
//     producer's later overwrite of it, which is decided by an acquire load of head (I3; no
//     write-after-read race on the slot).
//     (mutants channel.release_relaxed, channel.release_before_copy_out)
//   - A lock holder re-reads the other side's cursor with acquire (pairs with the above), and
//     its own cursor relaxed (I2).
//     (mutants channel.space_check_relaxed, channel.data_check_relaxed)
//   - The caches are plain data under the lock. The holder that fills one does so right after
//     its acquire load, and the lock's release/acquire carries that to the next holder, so a
//     cached value orders the data exactly as the load that produced it did.
//   - The WAITERS CAS and the spin loads are relaxed: they only decide whether to sleep or to
//     re-check, and the re-check's acquire load decides. A relaxed CAS on a cursor continues the
//     release sequence of the exchange before it, so an acquire load that reads its value still
//     synchronizes with that publish/release.
//   - The exchange reads the latest value in the cursor's modification order, in which the
//     sleeper's CAS also lies: a WAITERS set before it is seen (I5). Both sides act on one word,
//     so nothing needs seq_cst.
//   - futex_wait/futex_wake carry no ordering we rely on (see the seam): a woken waiter re-locks
//     and re-reads with acquire.
//   - The count snapshot loads head with acquire, then tail: the consumer that wrote that head
//     had read a tail at least as large, so the count is never negative (it may exceed the
//     capacity by what moved in between, and is clamped). (mutant channel.count_head_relaxed)
//   - The ordering mutants are caught by models in which nobody sleeps: Relacy's futex model
//     adds edges the kernel does not promise (seam/model.hpp), which would hide them.
//
// Sources: the two-lock queue (Michael and Scott, PODC 1996: one lock per end, so a producer
// and a consumer never wait for each other); a bounded array ring with positions (Lamport
// 1983); each side caching the other's cursor (Rigtorp's SPSCQueue, folly's
// ProducerConsumerQueue); the WAITERS bit and futex sleep of lockstep's own mutex (mutex.hpp I3).
#pragma once

#include <lockstep/mutex.hpp>
#include <lockstep/seam.hpp>

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <type_traits>

namespace lockstep::ipc::detail {

// The outcome of a ring operation; the public classes turn it into their result or exception.
enum class ring_status : unsigned char {
  ok,
  would_block,     // try: the ring is full (send) or empty (receive)
  timed_out,       // the deadline passed first
  message_size,    // send: longer than max_msg_size (nothing queued); receive: buffer shorter
                   // than max_msg_size (the message stays queued)
  corrupt,         // a count or size from shared memory out of range (I1, I7), or our lock's
                   // word rewritten by someone else: nothing was consumed
  would_deadlock,  // the caller already holds the lock of this end (an open reservation or
                   // in-place message on this thread), or would sleep holding the other end's
  not_owner,       // commit / abandon / release by a thread that does not hold the lock
};

// How long an operation may wait: block = false tries once (it still takes the lock, I6);
// otherwise it waits until `deadline` (seam::no_deadline: forever).
struct ring_wait {
  bool block;
  seam::deadline deadline;
};
inline constexpr ring_wait wait_never{false, seam::no_deadline};
inline constexpr ring_wait wait_forever{true, seam::no_deadline};
constexpr ring_wait wait_until(seam::deadline d) noexcept { return {true, d}; }

inline constexpr std::uint32_t position_mask = 0x7fff'ffffu;
inline constexpr std::uint32_t waiters_bit = 0x8000'0000u;
inline constexpr std::uint32_t max_ring_capacity = 0x4000'0000u;  // 2^30: positions < 2^31 (I1)

// The lock of one end, and how to repair the state it guards when a holder died holding it
// (I9): `repair(ctx)` runs with the lock held and the previous holder dead; it re-validates
// that end's shared state (re-reads the cursors, resets the caches, finishes or undoes a
// journalled step) and returns ok, or corrupt if the state is beyond repair. A small view,
// made per call: the mutex lives in shared memory, the repair is the process's own code.
struct end_lock {
  using repair_fn = ring_status (*)(void* ctx);
  interprocess_mutex& mutex;
  repair_fn repair;
  void* ctx;
};

// The lock came with owner_dead (I9): the previous holder died holding it. Repair the end's
// state, then mark the mutex consistent. A state beyond repair is corrupt: the lock is then
// released without consistent(), which makes the mutex not recoverable (mutex.hpp), so every
// later call on this end reports corrupt too, instead of trusting the damaged state.
[[gnu::cold, gnu::noinline]] inline ring_status recover(const end_lock& l) {
  const ring_status s = l.repair(l.ctx);
  if (s == ring_status::ok && !seam::mutant("channel.recover_skips_consistent") && !l.mutex.consistent())
    return ring_status::ok;
  (void)l.mutex.unlock_checked();  // without consistent(): not recoverable
  return ring_status::corrupt;
}

// Lock `l`, at most until `d`. ok (repaired first if its holder had died, I9), timed_out,
// would_deadlock (the caller holds it), or corrupt (not recoverable: an earlier repair failed,
// or our lock's word was rewritten).
[[gnu::cold, gnu::noinline]] inline ring_status lock_contended(const end_lock& l, seam::deadline d) {
  const std::error_code ec = l.mutex.lock_checked(d);
  if (!ec) return ring_status::ok;
  if (ec == std::errc::timed_out) return ring_status::timed_out;
  if (ec == std::errc::owner_dead) return recover(l);
  if (ec == std::errc::resource_deadlock_would_occur) return ring_status::would_deadlock;
  return ring_status::corrupt;  // state_not_recoverable
}
inline ring_status lock_until(const end_lock& l, seam::deadline d) {
  if (l.mutex.try_lock()) [[likely]]
    return ring_status::ok;
  return lock_contended(l, d);
}

// Unlock `m`, which the caller locked. A word that no longer names the caller was rewritten
// by someone else: corrupt, and the word is left alone (never an abort on shared memory).
inline ring_status unlock(interprocess_mutex& m) {
  return m.unlock_checked() ? ring_status::corrupt : ring_status::ok;
}
inline ring_status unlock(const end_lock& l) { return unlock(l.mutex); }
// Unlock and report `s` (or corrupt, if the unlock found the lock rewritten).
inline ring_status unlock_with(const end_lock& l, ring_status s) {
  const ring_status u = unlock(l);
  return u == ring_status::ok ? s : u;
}

// How long a sleeper on a cursor sleeps before it re-checks by itself (I9): a peer killed
// between its cursor exchange and its futex_wake never wakes anyone, so no sleep may depend
// on that wake alone. 150 ms: under the 1 s, and an idle blocked waiter re-checks
// ~7 times a second (a lock, two loads, a futex_wait: microseconds, far below 1% of a CPU).
// Not in models: Relacy may time out any wait with a deadline, which would hide the lost
// wake-ups the models exist to find (I5); the slice is a backstop for dead peers only.
inline constexpr std::chrono::milliseconds sleep_slice{150};
inline seam::deadline slice_end(seam::deadline d) {
  if (seam::is_model) return d;
  const seam::deadline s = seam::now() + sleep_slice;
  return s < d ? s : d;
}

// The cursor protocol of one ring (I1-I6). A process-local view: references to the two
// cursors and two caches in shared memory, and the validated capacity (a local copy, never
// re-read). Producer-end calls need the producer lock held, consumer-end calls the consumer
// lock; `lock` is that lock. Every call that returns anything but ok has unlocked it.
class ring_cursors {
 public:
  ring_cursors(seam::futex_word& tail, seam::futex_word& head, seam::var<std::uint32_t>& head_seen,
               seam::var<std::uint32_t>& tail_seen, std::uint32_t capacity) noexcept
      : tail_(tail), head_(head), head_seen_(head_seen), tail_seen_(tail_seen), capacity_(capacity) {}

  std::uint32_t capacity() const noexcept { return capacity_; }

  // The slot of a position that wait_for_space/wait_for_data returned (< capacity by I1).
  std::uint32_t slot(std::uint32_t pos) const noexcept { return pos >= capacity_ ? pos - capacity_ : pos; }

  // Producer end. Waits as `how` says until the slot at tail is free (I3); ok: `pos` is the
  // position to fill (its slot is slot(pos)) and `lock` is still held. Otherwise `lock`
  // is released: would_block (full, try), timed_out, corrupt (I1), would_deadlock (relocking,
  // or about to sleep while the caller holds `peer_lock`, the consumer lock, which the wake-up
  // would need).
  ring_status wait_for_space(const end_lock& lock, ring_wait how, std::uint32_t& pos,
                             const interprocess_mutex* peer_lock = nullptr) {
    return wait_for<true>(lock, how, pos, peer_lock);
  }
  // Producer end: the slot at `pos` (from wait_for_space, lock held since) is written; hand it
  // to consumers (I3) and wake them if any sleep (I5).
  void publish(std::uint32_t pos) {
    advance(tail_, pos, seam::mutant("channel.publish_relaxed") ? order::relaxed : order::release,
            !seam::mutant("channel.publish_no_wake"));
  }

  // Consumer end: the mirror images. wait_for_data's ok means the slot at `pos` holds a
  // published message.
  ring_status wait_for_data(const end_lock& lock, ring_wait how, std::uint32_t& pos,
                            const interprocess_mutex* peer_lock = nullptr) {
    return wait_for<false>(lock, how, pos, peer_lock);
  }
  void release(std::uint32_t pos) {
    advance(head_, pos, seam::mutant("channel.release_relaxed") ? order::relaxed : order::release,
            !seam::mutant("channel.release_no_wake"));
  }

  // The same check without waiting and without touching the lock, for a caller that runs more
  // than one ring under one lock (the message queue, detail/mq_protocol.hpp) and decides itself
  // when to unlock: ok (`pos` as above), would_block (full / empty), corrupt (I1). The caller
  // holds the lock of that end.
  ring_status try_space(std::uint32_t& pos) { return check<true>(pos); }
  ring_status try_data(std::uint32_t& pos) { return check<false>(pos); }
  // Right after try_space / try_data said would_block, `lock` still held: wait until the
  // other cursor moves (spin, WAITERS, unlock, futex_wait, relock: I5, I6). ok: `lock` is held
  // again and the caller re-checks everything; otherwise `lock` is released.
  ring_status sleep_for_space(const end_lock& lock, seam::deadline d, const interprocess_mutex* peer_lock = nullptr) {
    return sleep_until_moved(lock, head_, head_seen_.read(), d, peer_lock);
  }
  ring_status sleep_for_data(const end_lock& lock, seam::deadline d, const interprocess_mutex* peer_lock = nullptr) {
    return sleep_until_moved(lock, tail_, tail_seen_.read(), d, peer_lock);
  }

  // The repair of one end whose lock came with owner_dead (I9), that lock held: re-read both
  // cursors (our own relaxed, exact by I2; the other's acquire), check them (I1) and reset
  // the cache from the fresh read (I4). ok or corrupt. The cursors are the ring's only commit
  // points, so nothing else of the ring can be half done.
  ring_status revalidate_producer() { return revalidate<true>(); }
  ring_status revalidate_consumer() { return revalidate<false>(); }

  // Messages in the ring (I8): exact when nobody is mid-operation, otherwise a recent value;
  // clamped to [0, capacity] (and capacity if a position is out of range).
  std::uint32_t count_snapshot() const {
    const std::uint32_t h =
        head_.load(seam::mutant("channel.count_head_relaxed") ? seam::order::relaxed : seam::order::acquire) &
        position_mask;
    const std::uint32_t t = tail_.load(seam::order::relaxed) & position_mask;
    const std::uint32_t n = count(t, h);
    return n > capacity_ ? capacity_ : n;
  }

 private:
  using order = seam::order;

  // Positions run through [0, 2 * capacity) (I1); span() <= 2^31.
  std::uint32_t span() const noexcept { return 2 * capacity_; }
  std::uint32_t next(std::uint32_t pos) const noexcept { return pos + 1 == span() ? 0 : pos + 1; }

  // Messages from `head` to `tail`, or a value above capacity_ if either is out of range or
  // they are too far apart (I1): the caller refuses it.
  std::uint32_t count(std::uint32_t tail, std::uint32_t head) const noexcept {
    if (tail >= span() || head >= span()) return UINT32_MAX;
    return tail >= head ? tail - head : tail + span() - head;
  }

  // Whether a producer at `mine` may fill (count < capacity), or a consumer at `mine` may read
  // (0 < count <= capacity), given the other cursor at `theirs`. False for anything corrupt.
  template <bool Producer>
  bool usable(std::uint32_t mine, std::uint32_t theirs) const noexcept {
    if constexpr (Producer) {
      return count(mine, theirs) < capacity_;
    } else {
      const std::uint32_t n = count(theirs, mine);
      return n != 0 && n <= capacity_;
    }
  }

  // ok, would_block or corrupt; the lock is left as it is.
  template <bool Producer>
  ring_status check(std::uint32_t& pos) {
    seam::futex_word& own = Producer ? tail_ : head_;
    seam::futex_word& other = Producer ? head_ : tail_;
    seam::var<std::uint32_t>& seen = Producer ? head_seen_ : tail_seen_;
    // By I2 the lock makes this relaxed load exact.
    const std::uint32_t mine = own.load(order::relaxed) & position_mask;
    // By I4 the cache may only understate what is available.
    if (usable<Producer>(mine, seen.read())) [[likely]] {
      pos = mine;
      return ring_status::ok;
    }
    // Acquire: pairs with the other side's exchange (see Memory ordering).
    const std::uint32_t theirs =
        other.load((Producer ? seam::mutant("channel.space_check_relaxed") : seam::mutant("channel.data_check_relaxed"))
                       ? order::relaxed
                       : order::acquire) &
        position_mask;
    if ((Producer ? count(mine, theirs) : count(theirs, mine)) > capacity_) [[unlikely]]
      return ring_status::corrupt;  // I1
    seen.write(theirs);  // sleep_for_* sleeps on this value
    if (!usable<Producer>(mine, theirs)) return ring_status::would_block;
    pos = mine;
    return ring_status::ok;
  }

  template <bool Producer>
  ring_status revalidate() {
    const std::uint32_t mine = (Producer ? tail_ : head_).load(order::relaxed) & position_mask;
    const std::uint32_t theirs = (Producer ? head_ : tail_).load(order::acquire) & position_mask;
    if ((Producer ? count(mine, theirs) : count(theirs, mine)) > capacity_) return ring_status::corrupt;  // I1
    (Producer ? head_seen_ : tail_seen_).write(theirs);
    return ring_status::ok;
  }

  template <bool Producer>
  ring_status wait_for(const end_lock& lock, ring_wait how, std::uint32_t& pos, const interprocess_mutex* peer_lock) {
    for (;;) {
      // I6: a try reports full (empty) only from a fresh read of the other cursor (in check),
      // never from the cache alone.
      if (!how.block && seam::mutant("channel.try_trusts_cache") &&
          !usable<Producer>((Producer ? tail_ : head_).load(order::relaxed) & position_mask,
                            (Producer ? head_seen_ : tail_seen_).read()))
        return unlock_with(lock, ring_status::would_block);
      const ring_status s = check<Producer>(pos);
      if (s == ring_status::ok) [[likely]]
        return s;
      if (s != ring_status::would_block || !how.block) return unlock_with(lock, s);
      const ring_status w = Producer ? sleep_for_space(lock, how.deadline, peer_lock)
                                     : sleep_for_data(lock, how.deadline, peer_lock);
      if (w != ring_status::ok) return w;  // lock released
      // lock held again: re-check from the start (another holder may have moved our cursor)
    }
  }

  // The ring stayed full (empty) with `other` at position `seen_pos`: wait until it moves.
  // ok: it may have moved, `lock` is held, re-check. Otherwise `lock` is released.
  [[gnu::cold, gnu::noinline]] ring_status sleep_until_moved(const end_lock& lock, seam::futex_word& other,
                                                            std::uint32_t seen_pos, seam::deadline d,
                                                            const interprocess_mutex* peer_lock) {
    // Spin a bounded time with the lock held: the other side moves `other` under its own lock.
    for (int i = 0; i < seam::max_spins; ++i) {
      seam::spin_pause();
      if ((other.load(order::relaxed) & position_mask) != seen_pos) return ring_status::ok;
    }
    // A deadline already past never sleeps.
    if (d != seam::no_deadline && seam::now() >= d) return unlock_with(lock, ring_status::timed_out);
    // Only the other end's lock holder can wake us: sleeping while we hold that lock would be
    // forever.
    if (peer_lock != nullptr && peer_lock->held_by_caller()) return unlock_with(lock, ring_status::would_deadlock);
    // I5: announce the sleeper (WAITERS) on the value we sleep on.
    std::uint32_t cur = other.load(order::relaxed);
    for (;;) {
      if ((cur & position_mask) != seen_pos) return ring_status::ok;
      if ((cur & waiters_bit) != 0 || seam::mutant("channel.sleep_without_waiters")) break;
      if (other.compare_exchange_strong(cur, cur | waiters_bit, order::relaxed, order::relaxed)) {
        cur |= waiters_bit;
        break;
      }
    }
    // I6: never sleep holding the lock.
    if (unlock(lock) != ring_status::ok) return ring_status::corrupt;
    // I9: in slices, so that a peer that died before its wake strands nobody. A slice that
    // ends before the caller's deadline is a spurious wake-up: relock and re-check.
    const seam::deadline slice = slice_end(d);
    if (seam::futex_wait(other, cur, seam::scope::process_shared, slice) == seam::wait_result::timed_out &&
        slice == d)
      return ring_status::timed_out;
    return lock_until(lock, d);
  }

  // Moves `own` past `pos` (I2, I3) and wakes the other side's sleepers (I5). `o` is release
  // and `wake` true, except in a mutant (publish / release above).
  void advance(seam::futex_word& own, std::uint32_t pos, order o, bool wake) {
    const std::uint32_t old = own.exchange(next(pos), o);
    if ((old & waiters_bit) != 0 && wake) [[unlikely]]
      wake_all(own);
  }
  [[gnu::cold, gnu::noinline]] static void wake_all(seam::futex_word& w) {
    seam::futex_wake(w, INT_MAX, seam::scope::process_shared);
  }

  seam::futex_word& tail_;
  seam::futex_word& head_;
  seam::var<std::uint32_t>& head_seen_;
  seam::var<std::uint32_t>& tail_seen_;
  std::uint32_t capacity_;
};

// The channel's control block (the table above). Zero is its initial state: construct it once,
// in the zero-filled segment, before the segment is published.
struct channel_control {
  alignas(64) interprocess_mutex send_lock;  // line P
  seam::var<std::uint32_t> head_seen;
  alignas(64) seam::futex_word tail{0};  // line T
  alignas(64) interprocess_mutex receive_lock;  // line C
  seam::var<std::uint32_t> tail_seen;
  alignas(64) seam::futex_word head{0};  // line H
};

static_assert(seam::is_model || (std::is_standard_layout_v<channel_control> && offsetof(channel_control, send_lock) == 0 &&
                                 offsetof(channel_control, head_seen) == 40 && offsetof(channel_control, tail) == 64 &&
                                 offsetof(channel_control, receive_lock) == 128 &&
                                 offsetof(channel_control, tail_seen) == 168 && offsetof(channel_control, head) == 192 &&
                                 sizeof(channel_control) == 256 && alignof(channel_control) == 64),
              "the channel's control block layout is fixed: every process, 32- or 64-bit, must agree");
static_assert(seam::is_model || (sizeof(seam::var<std::uint32_t>) == 4 && sizeof(seam::futex_word) == 4),
              "fixed-width fields only: lock-free 32-bit atomics (seam::atomic asserts lock-free; lock-free "
              "atomics are address-free) and plain 32-bit words");

// The channel: one ring of message slots under two locks (table above).
//
// Slots is a small copyable view of the slot storage that only copies bytes; every protocol
// decision is here:
//   void write_size(std::uint32_t slot, std::uint32_t n);
//   std::uint32_t read_size(std::uint32_t slot) const;          // one read of shared memory
//   void copy_in(std::uint32_t slot, const void* src, std::uint32_t n);
//   void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const;
// Production: ipc::mapped_slots (segment.hpp), memcpy into the mapping. The model: seam::var
// cells, so that Relacy reports any slot access the protocol does not order as a data race.
template <class Slots>
class message_ring {
 public:
  // A position held by a reservation or an in-place message. size: the message's (acquire).
  struct ticket {
    std::uint32_t pos = 0;
    std::uint32_t slot = 0;
    std::uint32_t size = 0;
  };

  // `capacity` (<= max_ring_capacity) and `max_msg_size` are the validated local copies.
  message_ring(channel_control& control, Slots slots, std::uint32_t capacity, std::uint32_t max_msg_size) noexcept
      : c_(&control), slots_(slots), capacity_(capacity), max_msg_size_(max_msg_size) {}

  std::uint32_t capacity() const noexcept { return capacity_; }
  std::uint32_t max_msg_size() const noexcept { return max_msg_size_; }
  const Slots& slots() const noexcept { return slots_; }
  std::uint32_t num_msg() const { return cursors().count_snapshot(); }

  // --- producers ------------------------------------------------------------------------------
  // Takes send_lock (waiting at most until how.deadline; a try waits for it too, I6) and waits
  // for a free slot. ok: `t` names it and send_lock is held until commit or abandon.
  ring_status reserve(ring_wait how, ticket& t) {
    const end_lock l = send_end();
    ring_status s = lock_until(l, how.deadline);
    if (s != ring_status::ok) return s;
    s = cursors().wait_for_space(l, how, t.pos, &c_->receive_lock);
    if (s != ring_status::ok) return s;
    t.slot = cursors().slot(t.pos);
    return ring_status::ok;
  }
  // Sends the first `size` bytes written into t's slot. message_size if size > max_msg_size
  // (nothing sent, the reservation stays); not_owner if the caller does not hold send_lock.
  ring_status commit(const ticket& t, std::uint32_t size) {
    if (!c_->send_lock.held_by_caller()) return ring_status::not_owner;
    if (size > max_msg_size_) return ring_status::message_size;
    const bool early = seam::mutant("channel.publish_before_copy_in");  // the slot written after publishing
    if (!early) slots_.write_size(t.slot, size);
    cursors().publish(t.pos);
    if (early) slots_.write_size(t.slot, size);
    return unlock(c_->send_lock);
  }
  // Ends a reservation without sending anything.
  ring_status abandon(const ticket&) {
    if (!c_->send_lock.held_by_caller()) return ring_status::not_owner;
    return unlock(c_->send_lock);
  }
  // Copies `size` bytes from `src` into a slot and sends them: reserve + copy + commit.
  ring_status send(const void* src, std::uint32_t size, ring_wait how) {
    if (size > max_msg_size_) return ring_status::message_size;  // before touching anything
    ticket t;
    const ring_status s = reserve(how, t);
    if (s != ring_status::ok) return s;
    slots_.copy_in(t.slot, src, size);
    return commit(t, size);
  }

  // --- consumers ------------------------------------------------------------------------------
  // Takes receive_lock and waits for a message; reads its size once and checks it (I7). ok:
  // `t` names it (t.size <= max_msg_size) and receive_lock is held until release. corrupt: the
  // size was out of range; nothing was consumed.
  ring_status acquire(ring_wait how, ticket& t) {
    const end_lock l = receive_end();
    ring_status s = lock_until(l, how.deadline);
    if (s != ring_status::ok) return s;
    s = cursors().wait_for_data(l, how, t.pos, &c_->send_lock);
    if (s != ring_status::ok) return s;
    t.slot = cursors().slot(t.pos);
    const std::uint32_t size = slots_.read_size(t.slot);  // I7: once
    if (size > max_msg_size_) [[unlikely]]
      return unlock_with(receive_end(), ring_status::corrupt);
    t.size = size;
    return ring_status::ok;
  }
  // Consumes t's message: its slot goes back to producers (I3).
  ring_status release(const ticket& t) {
    if (!c_->receive_lock.held_by_caller()) return ring_status::not_owner;
    cursors().release(t.pos);
    return unlock(c_->receive_lock);
  }
  // Copies the next message into `dst` (room for `dst_size` bytes) and consumes it:
  // acquire + copy + release. message_size if dst_size < max_msg_size (POSIX mq_receive's
  // rule), before touching anything: the message stays queued.
  ring_status receive(void* dst, std::uint32_t dst_size, std::uint32_t& size, ring_wait how) {
    if (dst_size < max_msg_size_) return ring_status::message_size;
    ticket t;
    const ring_status s = acquire(how, t);
    if (s != ring_status::ok) return s;
    const bool early = seam::mutant("channel.release_before_copy_out");  // the slot freed before reading it
    const ring_status freed = early ? release(t) : ring_status::ok;
    slots_.copy_out(t.slot, dst, t.size);
    size = t.size;
    return early ? freed : release(t);
  }

 private:
  ring_cursors cursors() const noexcept {
    return {c_->tail, c_->head, c_->head_seen, c_->tail_seen, capacity_};
  }
  // Each end's lock with its repair (I9): the ring's cursors are its only commit points, so a
  // dead holder's end needs only its cursors re-validated and its cache reset.
  end_lock send_end() noexcept {
    return {c_->send_lock, [](void* r) { return static_cast<message_ring*>(r)->cursors().revalidate_producer(); }, this};
  }
  end_lock receive_end() noexcept {
    return {c_->receive_lock, [](void* r) { return static_cast<message_ring*>(r)->cursors().revalidate_consumer(); },
            this};
  }

  channel_control* c_;
  Slots slots_;
  std::uint32_t capacity_;
  std::uint32_t max_msg_size_;
};

}  // namespace lockstep::ipc::detail
