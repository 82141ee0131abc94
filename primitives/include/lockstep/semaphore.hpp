// lockstep/semaphore.hpp: counting and binary futex semaphores, for threads or for processes.
//
//   lockstep::counting_semaphore<Max>                threads of one process
//   lockstep::binary_semaphore                       counting_semaphore<1>
//   lockstep::interprocess_counting_semaphore<Max>   processes too: place it in a MAP_SHARED mapping
//   lockstep::interprocess_binary_semaphore          interprocess_counting_semaphore<1>
//
// The std::counting_semaphore interface (release, acquire, try_acquire, try_acquire_for,
// try_acquire_until, max), with what std leaves undefined defined: a release past max() and a
// bad initial count are refused with an error and change nothing. A semaphore has no owner:
// any thread may release, also one that never acquired, also from a signal handler.
//
// State: one 32-bit futex word, split by the template argument Max into C = bit_width(Max)
// count bits (low) and S = 32 - C sleeper bits (high):
//
//   word = sleepers << C | count
//
//   | count | sleepers        | meaning                                                       |
//   |-------|-----------------|---------------------------------------------------------------|
//   | n     | 0               | n tokens; no thread registered to sleep                       |
//   | 0     | k, 0 < k < SAT  | no token; k threads registered (asleep, about to sleep, or    |
//   |       |                 | woken and not yet gone)                                       |
//   | n > 0 | k, 0 < k < SAT  | tokens released while k registered threads are being woken   |
//   | any   | SAT = 2^S - 1   | saturated: "unknown, maybe many"; sticks; every release wakes |
//
//   SAT is reached only with 2^S - 1 registered threads at once (65535 for Max <= 65535; the
//   default Max), and then only costs a futex_wake per release from then on.
//
//     release(n): CAS count -> count+n; if, in the value the CAS replaced, sleepers > count
//                 (or sleepers == SAT): futex_wake(n), and nothing else: the word is never
//                 read again. With sleepers <= count every registered thread already has a
//                 token waiting and is awake or being woken (I3): no system call.
//     acquire:    CAS count -> count-1 (fast path); if count == 0: spin (or, with threads
//                 already registered, yield the CPU up to seam::max_yields times), then register
//                 (sleepers+1), futex_wait while the word is exactly that value; take a token
//                 and deregister in one CAS (count-1, sleepers-1), or on timeout deregister.
//
// Invariants:
//   I1 (tokens)      0 <= count <= Max. Only two CASes change the count: a release adds n,
//                    refused (nothing written) if count + n would exceed Max, and an acquirer
//                    subtracts 1, only from a value whose count is >= 1. Tokens are never made
//                    or lost otherwise.
//   I2 (sleepers)    Below SAT, sleepers is the number of threads between their registering
//                    CAS and their deregistering CAS (the one that takes their token, or the
//                    timed-out exit). Each waiting call registers at most once and deregisters
//                    exactly once, so timed-out waiters leave no trace. SAT is never left:
//                    at SAT nobody increments or decrements (a deregistration could not know
//                    which threads the saturated field still counts).
//   I3 (no lost      A thread sleeps only in futex_wait(word, v) where v has count 0 and
//       wake-up)     counts it among sleepers (its own registration, I2). The kernel compares
//                    and queues atomically with respect to FUTEX_WAKE. Below SAT, with k
//                    registered threads, count c, q threads asleep and p wake-ups released but
//                    not yet made: q - p <= max(0, k - c), "the sleepers no wake-up covers are
//                    at most the registered threads no token covers". A release that finds
//                    k > c wakes up to n (p += n, the bound shrinks by at most n); one that
//                    finds k <= c finds every sleeper covered already; taking, registering
//                    and deregistering keep the bound, and a thread falls asleep only on
//                    c = 0. At SAT every release wakes. So while count > 0, not every
//                    registered thread is asleep uncovered: a woken thread re-reads the word
//                    and takes a token, or sleeps again on a count of 0, or (deadline passed,
//                    count 0) deregisters. Every token a release makes either is taken or has
//                    a registered thread awake to take it; docs/semaphore.md has the argument.
//   I4 (one          A release reads the word only through its CAS, and after it only passes
//       decision)    the word's address to futex_wake, as that CAS's result decided. A waiter
//                    woken by that CAS may already have returned and destroyed the semaphore
//                    (glibc bug 12674: a poster read a separate waiter count after the CAS).
//                    The kernel tolerates a wake on memory that has been unmapped or reused:
//                    at worst it wakes a thread that waits there, which, like every futex
//                    waiter, re-checks its own condition (trusted base, as in glibc).
//   I5 (dead         A process-shared sleeper sleeps at most seam::shared_wait_slice (200 ms)
//       waker)       at a time, then re-reads the word as if woken. A releaser killed between
//                    its CAS and its futex_wake (I3's wake never comes) thus delays a sleeper
//                    by at most one slice, never strands it. The process-private semaphore
//                    sleeps unsliced: its threads die only with their whole process.
//
// Signals: release() is async-signal-safe (one CAS loop and the futex_wake syscall; fatal()
// uses only write and abort). A blocking acquire interrupted by a signal handler (EINTR) simply
// re-reads the word and sleeps again: it never returns early, and a token the handler released
// is taken (unit.signal).
//
// Memory ordering:
//   - Every CAS that takes a token is acquire; every CAS that adds tokens is release. Every
//     change of the word is a read-modify-write, so each release heads a release sequence
//     that all later changes continue: an acquirer synchronizes with every release before the
//     value it took from, and data written before release() is visible after acquire().
//     (mutants semaphore.release_relaxed, semaphore.acquire_relaxed)
//   - Registering and timed-out deregistering CASes, spins and plain loads are relaxed: they
//     publish nothing and only decide what to try next; a token is always taken by an
//     acquire CAS.
//   - futex_wait/futex_wake carry no ordering we rely on (see the seam): a woken thread
//     re-reads the word and takes a token only by an acquire CAS.
#pragma once

#include <lockstep/detail/deadline.hpp>
#include <lockstep/detail/status.hpp>
#include <lockstep/seam.hpp>

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <type_traits>

namespace lockstep {

// counting_semaphore<>'s max(): the largest count whose word still leaves 16 sleeper bits.
inline constexpr std::ptrdiff_t default_semaphore_max = 0xffff;

template <std::ptrdiff_t Max, seam::scope Scope>
class basic_counting_semaphore {
  static_assert(Max >= 1, "a semaphore that can never hold a token is a bug: Max must be >= 1");
  static_assert(Max <= 0x7fff'ffff,
                "Max must leave at least one sleeper bit in the 32-bit futex word (Max <= 2^31 - 1)");

 public:
  // The largest count: a release that would exceed it is refused.
  static constexpr std::ptrdiff_t max() noexcept { return Max; }

  // Starts with `desired` tokens. Throws std::invalid_argument unless 0 <= desired <= max()
  // (std leaves that undefined).
  constexpr explicit basic_counting_semaphore(std::ptrdiff_t desired) : word_(initial_word(desired)) {}
  basic_counting_semaphore(const basic_counting_semaphore&) = delete;
  basic_counting_semaphore& operator=(const basic_counting_semaphore&) = delete;
  // Precondition: no thread waits in it. A thread that has just returned from acquire() may
  // destroy it even while the releasing thread is still inside release() (I4).
  ~basic_counting_semaphore() = default;

  // Adds `update` tokens and wakes up to `update` waiting threads. Any thread may call it, the
  // ones that never acquired included, and it is async-signal-safe. Precondition (as std's):
  // 0 <= update <= max() - current count. A broken one is reported on stderr and aborts,
  // like lockstep::mutex::unlock by a non-owner; release_checked() returns it as an error.
  // release(0) does nothing.
  void release(std::ptrdiff_t update = 1) noexcept {
    if (update < 0) [[unlikely]]
      seam::fatal("lockstep::counting_semaphore::release(update) with update < 0");
    if (add(update) != detail::status::ok) [[unlikely]]
      seam::fatal("lockstep::counting_semaphore::release(update) would exceed max()");
  }

  // release() that reports a broken precondition and changes nothing:
  //   errc::invalid_argument if update < 0, errc::value_too_large (EOVERFLOW) if the count
  //   would exceed max().
  [[nodiscard]] std::error_code release_checked(std::ptrdiff_t update = 1) noexcept {
    if (update < 0) return std::make_error_code(std::errc::invalid_argument);
    return detail::to_error_code(add(update));
  }

  // Blocks until it takes a token.
  void acquire() noexcept { (void)take(seam::no_deadline); }

  // Takes a token if there is one right now; never blocks, never fails spuriously.
  [[nodiscard]] bool try_acquire() noexcept {
    std::uint32_t cur = word_.load(order::relaxed);
    return try_take(cur);
  }

  // Blocks at most until the timeout/deadline; returns whether it took a token. Any clock, rep
  // and period, by one rule (detail/deadline.hpp D1..D4): a timeout <= 0 or a deadline at or
  // before now makes one attempt (it takes a token that is there, never spins or sleeps); a
  // deadline beyond steady_clock's range (~292 years after boot) means none; any other is
  // rounded up, never early; nothing overflows. steady_clock is exact, other clocks are
  // re-checked after a timeout.
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) noexcept {
    return take(detail::deadline_after(timeout)) == detail::status::ok;
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
    return detail::until(t, [this](seam::deadline d) noexcept { return take(d) == detail::status::ok; });
  }

  // Snapshots for assertions, tests and monitoring (not in std): exact when no other thread is
  // changing the semaphore, otherwise some recent value.
  //   value():   the count (like sem_getvalue).
  //   waiting(): registered waiters (I2), or max_waiting() once the field has saturated.
  [[nodiscard]] std::ptrdiff_t value() const noexcept { return count(word_.load(order::relaxed)); }
  [[nodiscard]] std::ptrdiff_t waiting() const noexcept { return sleepers(word_.load(order::relaxed)); }
  static constexpr std::ptrdiff_t max_waiting() noexcept { return sat; }

 private:
  using order = seam::order;
  using status = detail::status;

  static constexpr unsigned count_bits = unsigned(std::bit_width(std::uint32_t(Max)));
  static constexpr std::uint32_t count_mask = (std::uint32_t(1) << count_bits) - 1;
  static constexpr std::uint32_t one_sleeper = std::uint32_t(1) << count_bits;
  static constexpr std::uint32_t sat = 0xffff'ffffu >> count_bits;

  static constexpr std::uint32_t count(std::uint32_t w) noexcept { return w & count_mask; }
  static constexpr std::uint32_t sleepers(std::uint32_t w) noexcept { return w >> count_bits; }
  // What registering / deregistering adds to / subtracts from the word: nothing at SAT (I2).
  static constexpr std::uint32_t sleeper_step(std::uint32_t w) noexcept {
    return sleepers(w) == sat ? 0 : one_sleeper;
  }

  static constexpr std::uint32_t initial_word(std::ptrdiff_t desired) {
    if (desired < 0 || desired > Max)
      throw std::invalid_argument("lockstep::counting_semaphore: initial count outside [0, max()]");
    return std::uint32_t(desired);
  }

  // Takes a token while the count (in cur, refreshed by each failed CAS) is nonzero: the count
  // is checked again in the very value each CAS will replace (I1: never below 0).
  bool try_take(std::uint32_t& cur) noexcept {
    const bool had_token = count(cur) != 0;  // read by a mutant only
    while (seam::mutant("semaphore.take_checks_count_once") ? had_token : count(cur) != 0)
      if (word_.compare_exchange_strong(cur, cur - 1,
                                        seam::mutant("semaphore.acquire_relaxed") ? order::relaxed : order::acquire,
                                        order::relaxed))
        return true;
    return false;
  }

  status take(seam::deadline d) noexcept {
    std::uint32_t cur = word_.load(order::relaxed);
    if (try_take(cur)) [[likely]]
      return status::ok;
    return take_contended(cur, d);
  }

  status add(std::ptrdiff_t n) noexcept {
    if (n == 0) return status::ok;
    std::uint32_t cur = word_.load(order::relaxed);
    const std::uint32_t first = cur;  // read by mutants only: every check uses the CAS's own value
    do {
      // By I1 the count never exceeds Max: refuse before writing anything, judging the very value
      // this CAS will replace (a failed CAS brings a new one, to be judged again).
      if (n > Max - std::ptrdiff_t(count(seam::mutant("semaphore.overflow_checked_once") ? first : cur)) &&
          !seam::mutant("semaphore.overflow_unchecked"))
        return status::overflow;
    } while (!word_.compare_exchange_strong(cur, cur + std::uint32_t(n),
                                            seam::mutant("semaphore.release_relaxed") ? order::relaxed : order::release,
                                            order::relaxed));
    // By I4, from here on only what the CAS returned (cur) decides, and only the address is used:
    // a sleeper that registered after an earlier read is in cur (I3). By I3 a wake-up is owed
    // only while more threads are registered than tokens were there for them; at SAT nobody
    // can tell, so every release wakes.
    const std::uint32_t replaced = seam::mutant("semaphore.wake_decided_before_cas") ? first : cur;
    if (wake_owed(replaced, std::uint32_t(n))) [[unlikely]]
      wake(word_, int(n));
    return status::ok;
  }

  // Whether a release of n that replaced the value w must wake (I3).
  static bool wake_owed(std::uint32_t w, std::uint32_t n) noexcept {
    if (seam::mutant("semaphore.wake_only_from_zero")) return sleepers(w) != 0 && count(w) == 0;
    if (sleepers(w) == sat && !seam::mutant("semaphore.saturated_compares_count")) return true;
    return sleepers(w) > count(w) + (seam::mutant("semaphore.wake_compares_new_count") ? n : 0);
  }

  [[gnu::cold, gnu::noinline]] status take_contended(std::uint32_t cur, seam::deadline d) noexcept;
  [[gnu::cold, gnu::noinline]] static void wake(seam::futex_word& word, int n) noexcept {
    seam::futex_wake(word, seam::mutant("semaphore.release_wakes_one") ? 1 : n, Scope);
  }

  seam::futex_word word_;
};

template <std::ptrdiff_t Max, seam::scope Scope>
detail::status basic_counting_semaphore<Max, Scope>::take_contended(std::uint32_t cur, seam::deadline d) noexcept {
  // A due deadline (deadline.hpp D1: a timeout <= 0, a point already past) has had its one
  // attempt, the fast path's: it neither spins nor registers nor sleeps.
  if (d != seam::no_deadline && seam::now() >= d) return status::timed_out;
  // Phase 1: spin a bounded number of steps while a release is likely imminent: while nobody
  // is registered, PAUSE steps, every yield_every-th a yield (the releaser may share our CPU).
  // Once threads are registered, releases are not keeping up with the waiters, and on an
  // oversubscribed machine the releaser is likely waiting for a CPU: yield ours to it, at most
  // max_yields times, then sleep. At most max_spins / yield_every + max_yields yields in all.
  // (A yield or a spin step may barge ahead of a registered thread; that costs fairness, never
  // a token: I3 does not rely on it.)
  for (int i = 0, yields = 0; i < seam::max_spins; ++i) {
    if (sleepers(cur) == 0)
      i % seam::yield_every == seam::yield_every - 1 ? seam::yield_cpu() : seam::spin_pause();
    else if (yields++ < seam::max_yields)
      seam::yield_cpu();
    else
      break;
    cur = word_.load(order::relaxed);
    if (try_take(cur)) return status::ok;
  }

  // Phase 2: register (I2), sleep while the word is exactly the value we registered with (I3).
  bool registered = false;
  bool timed_out = false;
  const auto expired = [&] { return timed_out || (d != seam::no_deadline && seam::now() >= d); };
  for (;;) {
    // The count comes before the deadline (I3): a thread woken for a token takes it even when
    // its deadline has passed meanwhile; leaving would strand the token beside a sleeper.
    const bool gave_up = seam::mutant("semaphore.timeout_before_token") && expired();
    if (count(cur) != 0 && !gave_up) {
      // Take a token and, if registered, deregister in the same CAS (I2).
      const std::uint32_t next = cur - 1 - (registered ? sleeper_step(cur) : 0);
      if (word_.compare_exchange_strong(cur, next, order::acquire, order::relaxed)) return status::ok;
      continue;  // cur now holds what we lost to
    }
    // No token. A deadline already past never sleeps; a registered thread leaves no trace (I2).
    if (gave_up || expired()) {
      if (!registered || seam::mutant("semaphore.timeout_keeps_registration")) return status::timed_out;
      if (word_.compare_exchange_strong(cur, cur - sleeper_step(cur), order::relaxed, order::relaxed))
        return status::timed_out;
      continue;
    }
    if (!registered && !seam::mutant("semaphore.sleep_unregistered")) {
      const std::uint32_t next = cur + sleeper_step(cur);
      if (!word_.compare_exchange_strong(cur, next, order::relaxed, order::relaxed)) continue;
      cur = next;
      registered = true;
    }
    // By I3 the kernel sleeps us only while the word is still cur: count 0, us among sleepers.
    // A process-shared sleep ends at the slice at the latest (I5) and then re-checks as if
    // woken; only a timeout at d itself is ours.
    const std::uint32_t expected = seam::mutant("semaphore.stale_expected") ? word_.load(order::relaxed) : cur;
    const seam::deadline until = seam::sliced(d, Scope);
    timed_out = seam::futex_wait(word_, expected, Scope, until) == seam::wait_result::timed_out && until == d;
    cur = word_.load(order::relaxed);
  }
}

// Threads of one process. The futex word is process-private (FUTEX_PRIVATE_FLAG).
template <std::ptrdiff_t Max = default_semaphore_max>
using counting_semaphore = basic_counting_semaphore<Max, seam::scope::process_private>;
using binary_semaphore = counting_semaphore<1>;

// Threads of any process that maps the same memory (MAP_SHARED, shm_open, ...). Construct it
// once in the shared mapping (placement new), from one process, before others use it.
template <std::ptrdiff_t Max = default_semaphore_max>
using interprocess_counting_semaphore = basic_counting_semaphore<Max, seam::scope::process_shared>;
using interprocess_binary_semaphore = interprocess_counting_semaphore<1>;

static_assert(seam::is_model || (sizeof(interprocess_binary_semaphore) == 4 && alignof(interprocess_binary_semaphore) == 4 &&
                                 sizeof(interprocess_counting_semaphore<>) == 4),
              "a semaphore in shared memory is exactly its 32-bit futex word");
static_assert(seam::is_model || (std::is_standard_layout_v<interprocess_binary_semaphore> &&
                                 std::is_standard_layout_v<interprocess_counting_semaphore<>>));

}  // namespace lockstep
