// lockstep/seam/model.hpp: the model side of the seam: Relacy's atomics, futex and plain vars.
//
// Only <lockstep/seam.hpp> includes this file, and only in model builds (LOCKSTEP_MODEL). The
// names and signatures match seam/linux.hpp exactly, so an algorithm header compiles unchanged
// against either; each operation here also takes a defaulted `site` that records the caller's
// function, file and line, so Relacy's traces point at the algorithm, not at this wrapper.
//
// Memory ordering: seam::order maps one-to-one onto Relacy's orders, which Relacy simulates
// with a relaxed-memory model (stale loads, per-location coherence, release/acquire edges).
//
// Trusted base (what this model assumes and the kernel does not promise): Relacy's futex model
// adds a happens-before edge from a FUTEX_WAKE to the waiter it wakes. Linux documents no such
// edge. lockstep's algorithms never rely on it: after every wait they re-read their word with
// their own acquire. A mutant that weakens an order only on a path where a futex wake follows
// can therefore be masked; ordering mutants are aimed at paths where nobody sleeps.
#pragma once

#if !defined(LOCKSTEP_MODEL)
#error "seam/model.hpp is for model builds (LOCKSTEP_MODEL) only"
#endif
#if defined(LOCKSTEP_MUTANT)
#error "LOCKSTEP_MUTANT is gone: a model binary runs a mutant when started with --mutant NAME"
#endif

#include <lockstep/seam/common.hpp>

// Everything an algorithm header or a model client may include must be included before Relacy:
// relacy.hpp #defines new, delete, malloc, free, errno, assert and the E* error codes.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <relacy/relacy.hpp>

// Relacy's allocation-tracking macros would rewrite `new`/`delete` in any header included
// later (placement new in <memory>, for one). Models do not allocate in the algorithms, so
// drop them; rl::var/rl::atomic tracking is unaffected.
#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free

namespace lockstep::seam {

// Layout assertions about shared memory hold in production only (Relacy's atomics are larger).
inline constexpr bool is_model = true;

// Where an operation was called from, captured by default arguments at the call site.
struct site {
  const char* fn;
  const char* file;
  unsigned line;
  static constexpr site here(const char* f = __builtin_FUNCTION(), const char* fl = __builtin_FILE(),
                             unsigned l = __builtin_LINE()) noexcept {
    return {f, fl, l};
  }
  rl::debug_info info() const { return rl::debug_info(fn, file, line); }
};

constexpr rl::memory_order to_rl(order o) noexcept {
  switch (o) {
    case order::relaxed: return rl::mo_relaxed;
    case order::acquire: return rl::mo_acquire;
    case order::release: return rl::mo_release;
    case order::acq_rel: return rl::mo_acq_rel;
    case order::seq_cst: return rl::mo_seq_cst;
  }
  return rl::mo_seq_cst;
}

template <class T>
class atomic {
  // Relacy's futex model takes only rl::atomic<int>: keep 32-bit words as int inside.
  using rep = std::conditional_t<std::is_same_v<T, std::uint32_t>, int, T>;

 public:
  explicit atomic(T v, site s = site::here()) { a_(s.info()).store(rep(v), rl::mo_relaxed); }
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T load(order o, site s = site::here()) const { return T(a_(s.info()).load(to_rl(o))); }
  void store(T v, order o, site s = site::here()) { a_(s.info()).store(rep(v), to_rl(o)); }
  T exchange(T v, order o, site s = site::here()) { return T(a_(s.info()).exchange(rep(v), to_rl(o))); }
  bool compare_exchange_strong(T& expected, T desired, order success, order failure,
                               site s = site::here()) {
    rep e = rep(expected);
    const bool ok = a_(s.info()).compare_exchange_strong(e, rep(desired), to_rl(success), to_rl(failure));
    expected = T(e);
    return ok;
  }
  bool compare_exchange_weak(T& expected, T desired, order success, order failure,
                             site s = site::here()) {
    rep e = rep(expected);
    const bool ok = a_(s.info()).compare_exchange_weak(e, rep(desired), to_rl(success), to_rl(failure));
    expected = T(e);
    return ok;
  }
  T fetch_add(T v, order o, site s = site::here()) { return T(a_(s.info()).fetch_add(rep(v), to_rl(o))); }
  T fetch_sub(T v, order o, site s = site::here()) { return T(a_(s.info()).fetch_sub(rep(v), to_rl(o))); }
  T fetch_or(T v, order o, site s = site::here()) { return T(a_(s.info()).fetch_or(rep(v), to_rl(o))); }
  T fetch_and(T v, order o, site s = site::here()) { return T(a_(s.info()).fetch_and(rep(v), to_rl(o))); }

 private:
  template <class U>
  friend auto* native_word(atomic<U>& a) noexcept;
  rl::atomic<rep> a_;
};

using futex_word = atomic<std::uint32_t>;

template <class U>
auto* native_word(atomic<U>& a) noexcept {
  return &a.a_;
}

template <class T>
class var {
 public:
  explicit var(T v = T(), site s = site::here()) { v_(s.info()).store(v); }
  T read(site s = site::here()) const { return v_(s.info()).load(); }
  void write(T v, site s = site::here()) { v_(s.info()).store(v); }

 private:
  rl::var<T> v_;
};

[[noreturn]] inline void fatal(const char* msg, site s = site::here()) {
  rl::ctx().fail_test(msg, rl::test_result_user_assert_failed, s.info());
  std::abort();  // not reached: fail_test leaves this fiber for good
}

inline constexpr bool counts_futex_calls = false;

// Mutation points (seam/common.hpp), switched at run time. The harness names at most one mutant
// (--mutant NAME) before any model runs, and nothing changes it afterwards. A mutation point is
// a plain comparison that Relacy never sees: it adds no step, yield or shared access to the
// explored executions, so a clean run explores exactly the executions it would without any
// mutation point, and a mutant run exactly those of the source with that one point switched on.
struct mutant_switch {
  std::string_view active;  // the mutant this run breaks the algorithm with; empty: none
  bool reached = false;     // its mutation point ran at least once (else no model can catch it)
};
inline mutant_switch mutants;

inline bool mutant(std::string_view name) {
  if (mutants.active.empty() || name != mutants.active) return false;
  mutants.reached = true;
  return true;
}

// Relacy ignores the deadline's value: a wait with any deadline may time out, and any wait
// may return spuriously; the model explores every such outcome.
inline wait_result futex_wait(futex_word& w, std::uint32_t expected, scope, deadline d = no_deadline,
                              site s = site::here()) {
  timespec ts{};
  const int r = rl::rl_futex(native_word(w), rl::RL_FUTEX_WAIT, int(expected),
                             d == no_deadline ? nullptr : &ts, nullptr, 0, s.info());
  switch (r) {
    case 0: return wait_result::woken;
    case rl::RL_EWOULDBLOCK: return wait_result::value_changed;
    case rl::RL_ETIMEDOUT: return wait_result::timed_out;
    case rl::RL_EINTR: return wait_result::interrupted;
    default: fatal("unexpected result from Relacy's futex model", s);
  }
}

inline int futex_wake(futex_word& w, int count, scope, site s = site::here()) {
  return rl::rl_futex(native_word(w), rl::RL_FUTEX_WAKE, count, nullptr, nullptr, 0, s.info());
}

// Time in the model: each reading is, at the model checker's choice, "early" (the epoch) or
// "late" (an hour on). A deadline set from an early reading (now() + a timeout under an hour)
// may thus be seen as passed at any later check, and Relacy explores both outcomes at every
// check, deterministically on replay (unlike a real clock). Readings need not be monotonic:
// lockstep's algorithms only compare a reading with a deadline. The futex model, separately,
// may time out any wait that has a deadline.
inline deadline now() {
  return rl::rand(2) == 0 ? deadline{} : deadline{} + std::chrono::hours(1);
}

// A model thread that dies stops between two steps of its program: nothing to order.
inline void program_order() noexcept {}

// A spin step is a yield point: Relacy then schedules the other threads, and a spin loop that
// yields is not mistaken for a livelock.
inline void spin_pause(site s = site::here()) { rl::yield(1, s.info()); }

// The model explores interleavings exhaustively, so long spins only multiply states. Two steps
// keep both outcomes of the spin phase (won while spinning / went to sleep) reachable.
inline constexpr int max_spins = 2;

// A yield is a spin step for the model: it orders nothing and only lets others run.
inline void yield_cpu(site s = site::here()) { rl::yield(1, s.info()); }
inline constexpr int yield_every = 2;
inline constexpr int max_yields = 1;
// The mutex's backed-off polls (mutex.hpp S1): one after a PAUSE, one after a yield, both yield
// points: both outcomes of the polling phase stay reachable, as with max_spins.
inline constexpr int backoff_pauses = 1;
inline constexpr int backoff_yields = 1;

inline std::uint32_t thread_id() { return std::uint32_t(rl::thread_index()) + 1; }

// --- robust ownership, modelled (seam/linux.hpp R1..R4) -------------------------------------------
// The model keeps each thread's robust list itself, outside Relacy (plain bookkeeping: no steps):
// the words a thread holds linked, and its pending one. kill_thread() is the kernel's action
// when a thread dies (kernel/futex/core.c exit_robust_list + handle_futex_death), run on the
// dying thread itself as the kernel does: for each linked word, then the pending one, if the
// word still names the thread set OWNER_DIED (keeping WAITERS) and wake one waiter if WAITERS
// was set; if the pending word has no owner, wake one waiter.
struct robust_thread {
  futex_word* held[4] = {};
  int count = 0;
  futex_word* pending = nullptr;
  bool mortal = false;  // may die at a crash point
  bool dead = false;
  int marked = 0;  // words the kernel found naming the thread when it died (OWNER_DIED set)
};
inline robust_thread robust_threads[8];
inline robust_thread& robust_self() { return robust_threads[rl::thread_index()]; }
// A model's before(): every thread alive, immortal, holding nothing.
inline void robust_reset() {
  for (robust_thread& t : robust_threads) t = robust_thread{};
}

inline bool robust_death(futex_word& w, bool pending, site s) {
  constexpr std::uint32_t waiters = 0x8000'0000u, owner_died = 0x4000'0000u, tid_mask = 0x3fff'ffffu;
  const std::uint32_t me = std::uint32_t(rl::thread_index()) + 1;  // thread_id()
  std::uint32_t v = w.load(order::relaxed, s);
  for (;;) {
    const std::uint32_t owner = v & tid_mask;
    if (pending && owner == 0) {
      rl::rl_futex(native_word(w), rl::RL_FUTEX_WAKE, 1, nullptr, nullptr, 0, s.info());
      return false;
    }
    if (owner != me) return false;
    // The kernel's cmpxchg is a full barrier; release is what a new owner may rely on.
    if (w.compare_exchange_strong(v, (v & waiters) | owner_died, order::release, order::relaxed, s)) {
      if ((v & waiters) != 0) rl::rl_futex(native_word(w), rl::RL_FUTEX_WAKE, 1, nullptr, nullptr, 0, s.info());
      return true;
    }
  }
}

// The calling thread dies now: the kernel's robust-list walk, then nothing more runs for it.
inline void kill_thread(site s = site::here()) {
  robust_thread& t = robust_self();
  int marked = 0;
  for (int i = 0; i < t.count; ++i)
    if (t.held[i] != t.pending) marked += robust_death(*t.held[i], false, s);
  if (t.pending != nullptr) marked += robust_death(*t.pending, true, s);
  t = robust_thread{};
  t.dead = true;
  t.marked = marked;
}
inline void set_mortal(bool m) { robust_self().mortal = m; }
inline bool is_dead() { return robust_self().dead; }
// Whether the calling thread died holding a robust mutex (the kernel marked its word).
inline bool died_holding() { return robust_self().marked > 0; }

// A mortal thread may die at every crash point (the model explores both); the algorithm then
// returns at once and the client stops the thread.
inline bool crash_point(std::string_view, site s = site::here()) {
  robust_thread& t = robust_self();
  if (!t.mortal || t.dead || rl::rand(2) == 0) return false;
  kill_thread(s);
  return true;
}

template <scope S>
struct robust_link {
  void lock_begin(futex_word&) {}
  void lock_end(futex_word&, bool) {}
  void unlock_begin(futex_word&) {}
  void unlock_end(futex_word&) {}
};
template <>
struct robust_link<scope::process_shared> {
  void lock_begin(futex_word& w) { robust_self().pending = &w; }
  void lock_end(futex_word& w, bool taken) {
    robust_thread& t = robust_self();
    if (taken) {
      if (t.count == 4) fatal("model: a thread holds more than 4 robust mutexes");
      t.held[t.count++] = &w;
    }
    t.pending = nullptr;
  }
  void unlock_begin(futex_word& w) {
    robust_thread& t = robust_self();
    t.pending = &w;
    for (int i = 0; i < t.count; ++i)
      if (t.held[i] == &w) t.held[i] = t.held[--t.count];
  }
  void unlock_end(futex_word&) { robust_self().pending = nullptr; }
};

// Sleeps are not cut into slices in the model: a stranded sleeper must show as a deadlock, not
// hide behind a timeout the futex model may always take. The slice is production-only.
inline deadline sliced(deadline d, scope) { return d; }

// Relacy sees every atomic itself: ThreadSanitizer annotations have no meaning here.
namespace tsan = tsan_off;

}  // namespace lockstep::seam
