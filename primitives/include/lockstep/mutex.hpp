// lockstep/mutex.hpp: an owner-checked futex mutex, for threads or for processes.
//
//   lockstep::mutex              threads of one process
//   lockstep::interprocess_mutex processes too: place it in a MAP_SHARED mapping
//
// Both meet Lockable and TimedLockable (std::lock_guard, std::unique_lock, std::scoped_lock,
// std::condition_variable_any). Unlike std::mutex, ownership is checked, as a mutex's
// definition demands: only the thread that locked it may unlock it.
//
// The owner is the locking thread's kernel tid (seam::thread_id()). A fork child's thread is a
// new thread with its own tid, whatever pthread_atfork handlers run and in whatever order, and
// after _Fork too: it owns nothing that its parent's threads held, so a mutex locked in an
// atfork prepare handler cannot be unlocked in the child handler (EPERM; unlock() aborts).
// There, make a process-private mutex anew (std::construct_at(&m)); an interprocess_mutex is
// the parent's to unlock, in its parent handler.
//
// Owner death (interprocess_mutex; docs/fault-tolerance.md): it is a robust mutex. If its
// owner thread exits or its process is killed while holding it, the next locker gets it with
// errc::owner_dead (lock_checked, try_lock_checked), repairs the data and calls consistent();
// an unlock without consistent() makes it not recoverable for good (POSIX robust mutexes:
// EOWNERDEAD, pthread_mutex_consistent, ENOTRECOVERABLE). lock() throws instead (see there).
// The kernel does the detecting: the mutex joins glibc's per-thread robust futex list (seam
// R1..R4), and at a thread's death the kernel marks every word on it that still names the
// thread OWNER_DIED and wakes a waiter, at once. lockstep::mutex is not robust: a thread that
// exits holding it leaves it held forever, and a later thread that the kernel gives the same,
// recycled tid is taken for its owner.
//
// State: one 32-bit futex word (interprocess_mutex: then glibc's robust-list node, seam R1).
//
//   | word             | meaning                                                               |
//   |------------------|-----------------------------------------------------------------------|
//   | 0                | unlocked                                                              |
//   | tid              | locked by the thread whose seam::thread_id() is tid; nobody asleep    |
//   | tid | WAITERS    | locked by tid; a thread may be asleep (or about to sleep) on word     |
//   | tid | OD [| W]   | locked by tid, taken with owner_dead; consistent() not called yet     |
//   | OD [| W]         | R-state: free; its owner died holding it (written by the kernel only) |
//   | W (no tid, no OD)| R-state: not recoverable, for good                                    |
//
//   tid < 2^30 (the kernel's FUTEX_TID_MASK), so it never collides with WAITERS = 2^31 or
//   OWNER_DIED (OD) = 2^30. The R-states have no owner (tid part 0) and are never 0; they arise
//   only for interprocess_mutex.
//
//     unlock (fast) +------------ CAS 0 -> me ---------------+
//       +---------->|                                        v
//     [ 0 ] <-------+-- store 0 + wake(1) --- [ tid|W ] <-- [ tid ]
//       ^                                         ^  CAS tid -> tid|W by a thread about to sleep
//       +-- CAS 0 -> me|W by a thread that slept -+
//
//     [ tid(|OD)(|W) ] --kernel: owner died--> [ OD(|W) ] --CAS -> me|OD|(W): owner_dead--> [ me|OD(|W) ]
//     [ me|OD(|W) ] --consistent(): clear OD--> [ me(|W) ]     (an ordinary held mutex again)
//     [ me|OD(|W) ] --unlock: store W + wake(all)--> [ W ]      (not recoverable; never left)
//
// Invariants:
//   I1 (owner)      word & TID_MASK != 0 exactly while the mutex is held, and then it is the
//                   holder's thread id.
//   I2 (writers)    Only the holder changes a word that names it (back to 0, on unlock; to
//                   not recoverable; clearing OD), except the kernel, which replaces a dead
//                   holder's id by OD. Any other thread only CASes a free word (0, or OD[|W])
//                   to its own id, or a held word h -> h|WAITERS (announcing that it will sleep).
//   I3 (no lost     A thread sleeps only in futex_wait(word, v) with WAITERS set in v and an
//       wake-up)    owner in v. The kernel checks word == v and queues the thread atomically
//                   with respect to FUTEX_WAKE, so a sleeper is asleep only while the word
//                   still has WAITERS, and whatever clears that owner wakes: the unlock (one,
//                   or all when marking not recoverable), or the kernel at the owner's death.
//   I4 (no         A thread that takes the lock after having gone through the sleeping path
//       stranded    takes it with WAITERS set: its wake-up consumed the one FUTEX_WAKE, others
//       sleeper)    may still sleep, so its own unlock must wake the next. For the same reason
//                   a thread that leaves without the lock (a timeout) after a wake-up leaves
//                   WAITERS set on the held word.
//   I5 (exact       A thread reads its own id in the word only while it holds the mutex: by I2
//       ownership)  nobody else writes that id (the kernel only removes a dead thread's), and
//                   by per-location coherence the thread cannot read a value older than its own
//                   last write (the unlock that cleared it). So a relaxed read decides
//                   ownership exactly.
//   I6 (owner_dead  A death is reported by the one CAS that takes OD[|W] to me|OD: the word
//       once)       then names a live holder, and OD-free is reached again only by another
//                   death. So each death is reported exactly once, and only after a death.
//   I7 (not         Not recoverable (W alone) is written only by the holder's unlock of a
//       recoverable) me|OD word, and no CAS expects it, so it is never left. Every thread that
//                   finds it returns state_not_recoverable; one that finds it after a wake-up
//                   first wakes one more sleeper, so that a marker killed between its store
//                   and its wake-all (the kernel then wakes one, seam R3) strands nobody.
//   I8 (sliced      A process-shared sleep lasts at most seam::shared_wait_slice (200 ms),
//       sleep)      then the thread re-reads the word as if woken (a slice end is not a timeout).
//                   This bounds what the robust list cannot see: a woken waiter killed before
//                   it re-took the lock or re-set WAITERS, a word freed by a releaser that died
//                   outside the robust protocol.
//   S1 (bounded     Before it first sleeps, a contender polls the word at most 4 +
//       polling)    backoff_yields times, backing off: after 1, 2, 4, 8 PAUSEs, then after a
//                   yield each (seam::backoff_pauses, backoff_yields: 8 and 4 on Linux). A poll is a relaxed read, and it takes
//                   only a free word, by an acquire CAS (I2), so no invariant above depends on
//                   how often or how long anyone polls. It polls only while the word has a live
//                   owner and no WAITERS: with a sleeper, it would barge ahead of it. Why back
//                   off (docs/mutex.md, "Spinning"): every read takes the word's cache line from
//                   a holder that is writing it, so a contender that re-reads at every PAUSE
//                   slows a short critical section more than polling saves; and a yield hands
//                   the CPU to a holder that is waiting for it, if there is one.
//
// Memory ordering:
//   - Every CAS that takes the lock is acquire; every write that releases it (fast-path CAS
//     me -> 0, slow-path store 0) is release. Each acquire reads the value written by the
//     previous holder's release, so critical sections are totally ordered by happens-before.
//   - The CAS that sets WAITERS, and all plain loads, are relaxed: they publish nothing and
//     only decide what to try next; entering is always decided by an acquire CAS.
//   - futex_wait/futex_wake carry no ordering we rely on (see the seam): after waking, a thread
//     re-reads the word and takes the lock only by an acquire CAS.
//   - Owner death: the CAS that takes an OD word is acquire, and the kernel's OWNER_DIED
//     cmpxchg is a full barrier on the dying thread, so the taker sees what the dead owner
//     wrote (as far as it got: that is why the data "may be inconsistent"). The store that
//     marks not recoverable is release; consistent()'s fetch_and is relaxed (the repair is
//     published by the unlock that follows).
#pragma once

#include <lockstep/detail/deadline.hpp>
#include <lockstep/detail/status.hpp>
#include <lockstep/seam.hpp>

#include <chrono>
#include <climits>
#include <cstdint>
#include <system_error>
#include <type_traits>

namespace lockstep {

template <seam::scope Scope>
class basic_mutex {
 public:
  constexpr basic_mutex() noexcept : word_(unlocked) {}
  basic_mutex(const basic_mutex&) = delete;
  basic_mutex& operator=(const basic_mutex&) = delete;
  // Precondition: unlocked. (Destroying a held mutex is the caller's bug, as with std::mutex.)
  ~basic_mutex() = default;

  // Blocks until the caller holds the mutex.
  // Throws std::system_error with
  //   errc::resource_deadlock_would_occur if the caller already holds it (std::mutex leaves
  //     that undefined; this one refuses instead of deadlocking);
  //   errc::owner_dead if the previous owner died holding it (interprocess_mutex, R-states):
  //     lock() cannot hand over data that may be inconsistent as if nothing happened, and its
  //     caller has no way to say it repaired it, so it marks the mutex not recoverable,
  //     releases it and throws. owner_dead is reported exactly once, to this caller;
  //   errc::state_not_recoverable if the mutex is not recoverable (ENOTRECOVERABLE).
  // Use lock_checked() to take over from a dead owner and repair.
  void lock() {
    const status s = acquire(seam::no_deadline);
    if (s != status::ok) [[unlikely]]
      lock_failed(s);
  }

  // Takes the mutex if it is free right now; never blocks, never fails spuriously. Returns
  // false if any thread holds it, the caller included, and also if its owner died holding it
  // or it is not recoverable: those it cannot report (the mutex is left as it was; use
  // try_lock_checked() to learn which and to take over from a dead owner).
  [[nodiscard]] bool try_lock() noexcept {
    seam::tsan::pre_lock(this, seam::tsan::try_lock);
    link_.lock_begin(word_);
    std::uint32_t cur = unlocked;
    const bool ok = word_.compare_exchange_strong(
        cur, seam::thread_id(), seam::mutant("mutex.try_lock_relaxed") ? order::relaxed : order::acquire, order::relaxed);
    link_.lock_end(word_, ok);
    seam::tsan::post_lock(this, ok ? seam::tsan::try_lock : seam::tsan::try_lock | seam::tsan::try_lock_failed);
    return ok;
  }

  // try_lock() that says why it failed, and takes over from a dead owner; never blocks:
  //   {} the caller now holds the mutex; errc::owner_dead: it holds it, and the previous owner
  //   died holding it (repair, then consistent(), as for lock_checked); errc::device_or_resource_busy
  //   (EBUSY): another thread holds it, or the caller does; errc::state_not_recoverable.
  [[nodiscard]] std::error_code try_lock_checked() noexcept { return detail::to_error_code(try_acquire()); }

  // Blocks at most until the timeout/deadline; returns whether the caller now holds the mutex.
  // Any clock, rep and period, by one rule (detail/deadline.hpp D1..D4): a timeout <= 0 or a
  // deadline at or before now makes one attempt (it takes a free mutex, never spins or
  // sleeps); a deadline beyond steady_clock's range (~292 years after boot) means none; any
  // other is rounded up, never early; nothing overflows. steady_clock is exact, other clocks
  // are re-checked after a timeout.
  // Throws std::system_error as lock() does: resource_deadlock_would_occur, owner_dead (after
  // marking the mutex not recoverable and releasing it), state_not_recoverable.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return timed(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    return detail::until(t, [this](seam::deadline d) { return timed(d); });
  }

  // Releases the mutex. Precondition: the caller holds it. A call by any other thread is a
  // broken contract that would corrupt the lock: it is reported on stderr and aborts (it
  // cannot throw: unlock runs in destructors). Use unlock_checked() to get an error instead.
  // Unlocking a mutex taken with owner_dead before consistent() makes it not recoverable.
  void unlock() noexcept {
    if (release() != detail::status::ok) [[unlikely]]
      seam::fatal("lockstep::mutex::unlock() called by a thread that does not own the mutex");
  }

  // The checked calls report misuse and failures as an error; the caller holds the mutex
  // after lock_checked exactly when it returns {} or errc::owner_dead:
  //   lock_checked:   errc::resource_deadlock_would_occur if the caller holds the mutex,
  //                   errc::timed_out if the deadline passed first (both change nothing);
  //                   errc::owner_dead: the caller now holds the mutex, its previous owner
  //                   died holding it and the data it guards may be inconsistent. Repair it,
  //                   call consistent(), then unlock(); unlocking without consistent() makes
  //                   the mutex not recoverable (POSIX EOWNERDEAD, pthread_mutex_consistent);
  //                   errc::state_not_recoverable: it is, for good; nobody can lock it again.
  //   unlock_checked: errc::operation_not_permitted if the caller does not hold it.
  // Owner death is detected for interprocess_mutex only (docs/fault-tolerance.md): a
  // lockstep::mutex whose owner thread exits holding it stays held.
  [[nodiscard]] std::error_code lock_checked(seam::deadline d = seam::no_deadline) noexcept {
    return detail::to_error_code(acquire(d));
  }
  [[nodiscard]] std::error_code unlock_checked() noexcept { return detail::to_error_code(release()); }

  // Marks the data repaired after lock_checked/try_lock_checked returned errc::owner_dead: the
  // mutex is then an ordinary held mutex again (pthread_mutex_consistent). Returns
  // errc::operation_not_permitted if the caller does not hold the mutex, errc::invalid_argument
  // if it holds it but not in the owner-died state; changes nothing then.
  [[nodiscard]] std::error_code consistent() noexcept {
    const std::uint32_t cur = word_.load(order::relaxed);
    if ((cur & tid_mask) != seam::thread_id()) return std::make_error_code(std::errc::operation_not_permitted);
    if ((cur & owner_died) == 0) return std::make_error_code(std::errc::invalid_argument);
    // By I2 only W can change under us (others set it); the RMW keeps it. Relaxed: the repair
    // is published by the unlock's release.
    if (!seam::mutant("mutex.consistent_keeps_owner_died")) word_.fetch_and(~owner_died, order::relaxed);
    return {};
  }

  // Whether the calling thread holds the mutex (exact, by I5). For assertions.
  [[nodiscard]] bool held_by_caller() const noexcept {
    return (word_.load(order::relaxed) & tid_mask) == seam::thread_id();
  }

 private:
  using order = seam::order;
  using status = detail::status;

  static constexpr std::uint32_t unlocked = 0;
  static constexpr std::uint32_t waiters = 0x8000'0000u;     // the kernel's FUTEX_WAITERS
  static constexpr std::uint32_t owner_died = 0x4000'0000u;  // the kernel's FUTEX_OWNER_DIED
  static constexpr std::uint32_t tid_mask = 0x3fff'ffffu;    // the kernel's FUTEX_TID_MASK
  // W without an owner: never written otherwise (no CAS produces it, the kernel never does).
  static constexpr std::uint32_t not_recoverable = waiters;

  static constexpr bool holds(status s) noexcept { return s == status::ok || s == status::owner_dead; }

  bool timed(seam::deadline d) {
    const status s = acquire(d);
    if (s != status::ok && s != status::timed_out) [[unlikely]]
      lock_failed(s);
    return s == status::ok;
  }

  status acquire(seam::deadline d) noexcept {
    const std::uint32_t me = seam::thread_id();
    // TSan would report a relock as a double lock before we could refuse it: refuse first.
    if constexpr (seam::tsan::enabled)
      if ((word_.load(order::relaxed) & tid_mask) == me) return status::would_deadlock;
    const unsigned flags = d == seam::no_deadline ? 0u : seam::tsan::try_lock;
    seam::tsan::pre_lock(this, flags);
    link_.lock_begin(word_);  // R3: pending from before the taking CAS
    std::uint32_t cur = unlocked;
    status s = status::ok;
    if (!word_.compare_exchange_strong(cur, me,
                                       seam::mutant("mutex.lock_relaxed") ? order::relaxed : order::acquire,
                                       order::relaxed)) [[unlikely]]
      s = acquire_contended(me, cur, d);
    if (seam::crash_point("mutex.taken")) return s;  // taken, not yet linked: pending covers it
    link_.lock_end(word_, holds(s));
    seam::tsan::post_lock(this, holds(s) ? flags : flags | seam::tsan::try_lock_failed);
    return s;
  }

  status try_acquire() noexcept {
    const std::uint32_t me = seam::thread_id();
    seam::tsan::pre_lock(this, seam::tsan::try_lock);
    link_.lock_begin(word_);
    std::uint32_t cur = unlocked;
    status s;
    for (;;) {  // each failed CAS means another thread changed the word: no spurious failure
      if (cur == unlocked) {
        if (word_.compare_exchange_strong(cur, me, order::acquire, order::relaxed)) {
          s = status::ok;
          break;
        }
      } else if ((cur & tid_mask) == 0 && cur != not_recoverable) {  // R-state: free, owner died
        if (word_.compare_exchange_strong(cur, me | owner_died | (cur & waiters), order::acquire, order::relaxed)) {
          s = status::owner_dead;
          break;
        }
      } else {
        s = cur == not_recoverable ? status::not_recoverable : status::busy;
        break;
      }
    }
    link_.lock_end(word_, holds(s));
    seam::tsan::post_lock(this, holds(s) ? seam::tsan::try_lock : seam::tsan::try_lock | seam::tsan::try_lock_failed);
    return s;
  }

  status release() noexcept {
    const std::uint32_t me = seam::thread_id();
    // Only the holder may unlink the mutex from its robust list (R2), and TSan must only see
    // unlocks by the holder: by I5 this read decides that exactly.
    if constexpr (seam::tsan::enabled || Scope == seam::scope::process_shared)
      if ((word_.load(order::relaxed) & tid_mask) != me) return status::not_owner;
    seam::tsan::pre_unlock(this);
    link_.unlock_begin(word_);  // R3: pending, unlinked, still held
    if (seam::mutant("mutex.unpend_before_release")) link_.unlock_end(word_);
    if (seam::crash_point("mutex.unlinked")) return status::ok;
    // One CAS both checks ownership (by I1 and I5 the word holds exactly `me` only if we hold
    // the mutex and nobody sleeps) and releases.
    std::uint32_t cur = me;
    status s = status::ok;
    if (!word_.compare_exchange_strong(cur, unlocked,
                                       seam::mutant("mutex.unlock_relaxed") ? order::relaxed : order::release,
                                       order::relaxed)) [[unlikely]]
      s = release_contended(me, cur);
    if (seam::crash_point("mutex.released")) return s;
    link_.unlock_end(word_);
    seam::tsan::post_unlock(this);
    return s;
  }

  [[gnu::cold, gnu::noinline]] status acquire_contended(std::uint32_t me, std::uint32_t cur, seam::deadline d) noexcept;
  [[gnu::cold, gnu::noinline]] status release_contended(std::uint32_t me, std::uint32_t cur) noexcept;
  [[noreturn, gnu::cold, gnu::noinline]] void lock_failed(status s);
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_would_deadlock() {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "lockstep::mutex: the calling thread already owns the mutex");
  }

  seam::futex_word word_;
  // Nothing for lockstep::mutex; glibc's robust-list node for interprocess_mutex (seam R1).
  [[no_unique_address]] seam::robust_link<Scope> link_;
};

template <seam::scope Scope>
detail::status basic_mutex<Scope>::acquire_contended(std::uint32_t me, std::uint32_t cur,
                                                     seam::deadline d) noexcept {
  if ((cur & tid_mask) == me) return status::would_deadlock;  // by I5: we hold it already
  // A due deadline (deadline.hpp D1: a timeout <= 0, a point already past) has had its one
  // attempt, the fast path's CAS: it neither spins nor sleeps.
  if (d != seam::no_deadline && seam::now() >= d) return status::timed_out;

  // Phase 1 (S1): poll while the holder is likely running, backing off: after 1, 2, 4, 8 PAUSEs,
  // then after a yield each, backoff_yields times. Only while the word has a live owner and no
  // WAITERS: with a sleeper, polling would just barge ahead of it; a word freed by a death (OD)
  // or not recoverable is for phase 2.
  for (int pauses = 1, yields = 0; (cur & (waiters | owner_died)) == 0;) {
    if (pauses <= seam::backoff_pauses) {
      for (int k = 0; k < pauses; ++k) seam::spin_pause();
      pauses *= 2;
    } else if (yields++ < seam::backoff_yields) {
      seam::yield_cpu();
    } else {
      break;
    }
    cur = word_.load(order::relaxed);
    if (cur == unlocked &&
        word_.compare_exchange_strong(cur, me, seam::mutant("mutex.spin_take_relaxed") ? order::relaxed : order::acquire,
                                      order::relaxed))
      return status::ok;
  }

  // Phase 2: announce that we sleep (WAITERS), then sleep while the word is unchanged.
  bool slept = false;  // a futex_wait returned: we may hold the wake meant for another sleeper
  for (;;) {
    if (cur == unlocked) {
      // By I4 we take it with WAITERS set: other sleepers may remain.
      const std::uint32_t take = seam::mutant("mutex.sleeper_takes_uncontended") ? me : me | waiters;
      if (word_.compare_exchange_strong(cur, take,
                                        seam::mutant("mutex.contended_take_relaxed") ? order::relaxed : order::acquire,
                                        order::relaxed))
        return status::ok;
      continue;  // cur now holds what we lost to
    }
    if ((cur & tid_mask) == 0) {  // R-states (interprocess_mutex only): no owner, not free
      if (cur == not_recoverable) {
        // By I7 pass on the wake-up that the thread which marked it may not have lived to give.
        if (slept && !seam::mutant("mutex.not_recoverable_no_pass")) seam::futex_wake(word_, 1, Scope);
        return status::not_recoverable;
      }
      // Free after its owner died (the kernel wrote OWNER_DIED): take it inconsistent, with
      // WAITERS by I4; owner_dead is reported by this CAS alone, so exactly once (I6).
      if (word_.compare_exchange_strong(cur, me | owner_died | waiters, order::acquire, order::relaxed))
        return status::owner_dead;
      continue;
    }
    // A deadline already past never sleeps (and so leaves no WAITERS bit behind for nothing).
    // After a wake-up, by I4, we leave only through the futex_wait below: it sets WAITERS first
    // and returns at once on a past deadline.
    if (d != seam::no_deadline && (!slept || seam::mutant("mutex.timeout_after_wake_skips_waiters")) &&
        seam::now() >= d)
      return status::timed_out;
    if ((cur & waiters) == 0 && !seam::mutant("mutex.sleep_without_waiters_bit")) {
      if (!word_.compare_exchange_strong(cur, cur | waiters, order::relaxed, order::relaxed)) continue;
      cur |= waiters;
    }
    // By I3 the kernel sleeps us only if the word still carries WAITERS: the value compared is
    // the one just checked (or written), never a newer read, which could be 0 after the unlock.
    // A process-shared sleep ends at the slice at the latest (I8): then we re-check as if woken.
    const seam::deadline until = seam::sliced(d, Scope);
    const seam::wait_result r =
        seam::futex_wait(word_, seam::mutant("mutex.stale_expected") ? word_.load(order::relaxed) : cur, Scope, until);
    if (r == seam::wait_result::timed_out && until == d) return status::timed_out;  // we changed nothing but WAITERS
    slept = true;
    if (seam::mutant("mutex.no_recheck_after_wake"))
      if (r == seam::wait_result::woken) return status::ok;
    cur = word_.load(order::relaxed);
  }
}

template <seam::scope Scope>
detail::status basic_mutex<Scope>::release_contended(std::uint32_t me, std::uint32_t cur) noexcept {
  if ((cur & tid_mask) != me) return status::not_owner;  // by I5; nothing was changed
  // cur is me|WAITERS, or me|OWNER_DIED[|WAITERS] (taken with owner_dead, never made
  // consistent), and by I2 only its W bit may change under us: a plain store releases.
  if ((cur & owner_died) != 0 && !seam::mutant("mutex.unlock_forgets_owner_died")) {
    // Not recoverable (I7): every waiter must see it, now and later.
    word_.store(not_recoverable, order::release);
    if (seam::crash_point("mutex.marked_not_recoverable")) return status::ok;
    seam::futex_wake(word_, INT_MAX, Scope);
    return status::ok;
  }
  word_.store(unlocked, seam::mutant("mutex.contended_unlock_relaxed") ? order::relaxed : order::release);
  if (seam::crash_point("mutex.released_before_wake")) return status::ok;
  if (!seam::mutant("mutex.unlock_no_wake")) seam::futex_wake(word_, 1, Scope);
  return status::ok;
}

template <seam::scope Scope>
void basic_mutex<Scope>::lock_failed(status s) {
  switch (s) {
    case status::owner_dead:
      // Nobody repaired the data: unlocking without consistent() makes the mutex not
      // recoverable (I7), so no later locker takes it as if it were sound.
      (void)release();
      throw std::system_error(std::make_error_code(std::errc::owner_dead),
                              "lockstep::mutex: the previous owner died holding the mutex; it is now not recoverable "
                              "(lock_checked() lets the caller repair and call consistent())");
    case status::not_recoverable:
      throw std::system_error(std::make_error_code(std::errc::state_not_recoverable),
                              "lockstep::mutex: the mutex is not recoverable");
    default: throw_would_deadlock();
  }
}

// Threads of one process. The futex word is process-private (FUTEX_PRIVATE_FLAG).
using mutex = basic_mutex<seam::scope::process_private>;

// Threads of any process that maps the same memory (MAP_SHARED, shm_open, ...). Construct it
// once in the shared mapping (placement new), from one process, before others use it. Owners
// are kernel thread ids, unique within a PID namespace: processes must share one.
using interprocess_mutex = basic_mutex<seam::scope::process_shared>;

static_assert(seam::is_model || (sizeof(mutex) == 4 && alignof(mutex) == 4),
              "a process-private mutex is exactly its 32-bit futex word");
static_assert(seam::is_model || (sizeof(interprocess_mutex) == 40 && alignof(interprocess_mutex) == 8),
              "a mutex in shared memory is its futex word and glibc's robust-list node (seam R1)");
static_assert(seam::is_model || std::is_standard_layout_v<interprocess_mutex>);

}  // namespace lockstep
