// lockstep/seam/linux.hpp: the production side of the seam: std::atomic and the futex syscall.
//
// Only <lockstep/seam.hpp> includes this file. See that header for the contract; this file is
// the one place in lockstep that talks to the kernel.
//
// Memory ordering: every operation forwards its seam::order to std::atomic unchanged. The
// futex calls themselves are given no ordering role: the kernel compares the word and queues
// the waiter atomically with respect to FUTEX_WAKE on the same word (that is what rules out a
// lost wake-up), but it documents no happens-before edge from waker to waiter, so algorithms
// re-read their word with their own acquire after every wait.
#pragma once

// Mutants are for models only (seam/common.hpp): refuse the old compile-time switch outright
// rather than build production code that someone meant to break (ctest mutant.production_refused).
#if defined(LOCKSTEP_MUTANT)
#error "LOCKSTEP_MUTANT is for model builds only: mutants must never reach production code"
#endif

#include <lockstep/seam/common.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#if defined(__SANITIZE_THREAD__)
#define LOCKSTEP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCKSTEP_TSAN 1
#endif
#endif
#if defined(LOCKSTEP_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace lockstep::seam {

// Layout assertions about shared memory hold in production only (Relacy's atomics are larger).
inline constexpr bool is_model = false;

constexpr std::memory_order to_std(order o) noexcept {
  switch (o) {
    case order::relaxed: return std::memory_order_relaxed;
    case order::acquire: return std::memory_order_acquire;
    case order::release: return std::memory_order_release;
    case order::acq_rel: return std::memory_order_acq_rel;
    case order::seq_cst: return std::memory_order_seq_cst;
  }
  return std::memory_order_seq_cst;
}

template <class T>
class atomic {
  static_assert(std::atomic<T>::is_always_lock_free,
                "lockstep atomics must be lock-free: they live in shared memory and signal handlers");

 public:
  constexpr explicit atomic(T v) noexcept : v_(v) {}
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T load(order o) const noexcept { return v_.load(to_std(o)); }
  void store(T v, order o) noexcept { v_.store(v, to_std(o)); }
  T exchange(T v, order o) noexcept { return v_.exchange(v, to_std(o)); }
  bool compare_exchange_strong(T& expected, T desired, order success, order failure) noexcept {
    return v_.compare_exchange_strong(expected, desired, to_std(success), to_std(failure));
  }
  bool compare_exchange_weak(T& expected, T desired, order success, order failure) noexcept {
    return v_.compare_exchange_weak(expected, desired, to_std(success), to_std(failure));
  }
  T fetch_add(T v, order o) noexcept { return v_.fetch_add(v, to_std(o)); }
  T fetch_sub(T v, order o) noexcept { return v_.fetch_sub(v, to_std(o)); }
  T fetch_or(T v, order o) noexcept { return v_.fetch_or(v, to_std(o)); }
  T fetch_and(T v, order o) noexcept { return v_.fetch_and(v, to_std(o)); }

 private:
  template <class U>
  friend U* native_word(atomic<U>& a) noexcept;
  std::atomic<T> v_;
};

using futex_word = atomic<std::uint32_t>;
static_assert(sizeof(futex_word) == 4 && alignof(futex_word) == 4,
              "the kernel's futex word is exactly one aligned 32-bit integer");

// std::atomic<uint32_t> is a lock-free uint32_t with the same representation; the kernel only
// ever reads it (and compares it) through this address.
template <class U>
U* native_word(atomic<U>& a) noexcept {
  return reinterpret_cast<U*>(&a.v_);
}

// A plain shared variable: data that a lock or a protocol guards. Production adds nothing.
template <class T>
class var {
 public:
  constexpr explicit var(T v = T()) noexcept : v_(v) {}
  T read() const noexcept { return v_; }
  void write(T v) noexcept { v_ = v; }

 private:
  T v_;
};

// Every mutation point is switched off, at compile time (seam/common.hpp).
consteval bool mutant(std::string_view) noexcept { return false; }

[[noreturn, gnu::cold]] inline void fatal(const char* msg) noexcept {
  // write(2) and abort() are async-signal-safe; stdio is not, and a broken lock may be found
  // inside a signal handler.
  static constexpr char prefix[] = "lockstep: fatal: ";
  (void)!::write(2, prefix, sizeof prefix - 1);
  (void)!::write(2, msg, std::strlen(msg));
  (void)!::write(2, "\n", 1);
  std::abort();
}

// --- syscall and spin counting (test builds only) ----------------------------------------------
// With LOCKSTEP_COUNT_FUTEX_CALLS (the unit tests), the seam counts every futex syscall and
// every spin step, so a test can assert what an operation did without timing it: an
// uncontended lock makes no syscall, a due deadline (deadline.hpp D1) no spin step.
#if defined(LOCKSTEP_COUNT_FUTEX_CALLS)
inline constexpr bool counts_futex_calls = true;
inline std::atomic<std::uint64_t> futex_wait_calls{0};
inline std::atomic<std::uint64_t> futex_wake_calls{0};
inline std::atomic<std::uint64_t> spin_steps{0};
inline std::atomic<std::uint64_t> yield_calls{0};
#define LOCKSTEP_COUNT(counter) ::lockstep::seam::counter.fetch_add(1, std::memory_order_relaxed)
#else
inline constexpr bool counts_futex_calls = false;
#define LOCKSTEP_COUNT(counter) ((void)0)
#endif

inline wait_result futex_wait(futex_word& w, std::uint32_t expected, scope s,
                              deadline d = no_deadline) noexcept {
  LOCKSTEP_COUNT(futex_wait_calls);
  timespec ts{};
  timespec* abs = nullptr;
  if (d != no_deadline) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what libstdc++'s
    // steady_clock reads. A deadline before boot is simply long past (the kernel rejects
    // negative times with EINVAL, so clamp).
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    abs = &ts;
  }
  const int op = FUTEX_WAIT_BITSET | (s == scope::process_private ? FUTEX_PRIVATE_FLAG : 0);
  if (::syscall(SYS_futex, native_word(w), op, expected, abs, nullptr, FUTEX_BITSET_MATCH_ANY) == 0)
    return wait_result::woken;
  switch (errno) {
    case EAGAIN: return wait_result::value_changed;
    case EINTR: return wait_result::interrupted;
    case ETIMEDOUT: return wait_result::timed_out;
    default: fatal("futex(FUTEX_WAIT_BITSET) failed: word not mapped, or not 4-byte aligned");
  }
}

inline int futex_wake(futex_word& w, int count, scope s) noexcept {
  LOCKSTEP_COUNT(futex_wake_calls);
  const int op = FUTEX_WAKE | (s == scope::process_private ? FUTEX_PRIVATE_FLAG : 0);
  const long woken = ::syscall(SYS_futex, native_word(w), op, count, nullptr, nullptr, 0);
  // A wake may come after the word's owner is gone: a woken waiter may free or unmap the memory
  // before the waker's futex_wake (semaphore.hpp I4). A process-shared wake on unmapped memory
  // then fails with EFAULT, and one on memory reused for a PI futex with EINVAL; neither is an
  // error of the caller's, and nobody is left to wake. glibc's futex_wake ignores both alike.
  if (woken < 0) {
    if (errno == EFAULT || errno == EINVAL) return 0;
    fatal("futex(FUTEX_WAKE) failed");
  }
  return static_cast<int>(woken);
}

// The time deadlines are measured against.
inline deadline now() noexcept { return clock::now(); }

inline void spin_pause() noexcept {
  LOCKSTEP_COUNT(spin_steps);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spin steps before sleeping. Sleeping is not free for the waiter either: on the 2-vCPU KVM
// machines this was tuned on, a futex sleep and its wake-up cost the waiter 7-10 us of CPU and
// 8-25 us of latency, while one step (PAUSE + load) is 25 ns. 300 steps (7.5 us there) spin no
// longer than a sleep costs anyway, catch every release within that window ~100x sooner than
// a wake-up would, and keep a two-thread hand-off from settling into sleeping on every round
// (with 100 steps it did, p99 ~50 us). Bounded: a wait longer than the window sleeps. PAUSE
// costs 3-50 ns across x86 CPUs, so the window is CPU-dependent: docs/performance.md has the
// sweep behind the number, and a time-based bound proposed instead.
// LOCKSTEP_MAX_SPINS overrides it for the benchmarks' spin sweep (bench/CMakeLists.txt) only.
#if defined(LOCKSTEP_MAX_SPINS)
inline constexpr int max_spins = LOCKSTEP_MAX_SPINS;
#else
inline constexpr int max_spins = 300;
#endif

// Gives this thread's CPU to another runnable thread, if there is one (sched_yield(2); it
// returns at once when there is none). A spinning semaphore waiter yields every yield_every-th
// step instead of pausing: if the thread that will release shares its CPU (more runnable
// threads than CPUs), it runs after 0.8 us instead of after the whole 7.5 us window, which the
// waiter would only have burnt. A waiter that finds other waiters already registered yields,
// at most max_yields times, instead of spinning: releases are not keeping up, which on an
// oversubscribed machine means the releaser is waiting for a CPU, and a yield hands it ours for
// one system call where sleeping costs a futex wait, two context switches and the releaser's
// futex wake (docs/performance.md, "Scaling").
inline void yield_cpu() noexcept {
  LOCKSTEP_COUNT(yield_calls);
  ::sched_yield();
}
inline constexpr int yield_every = 32;
inline constexpr int max_yields = 8;

// --- thread identity ---------------------------------------------------------------------------
// thread_id() is the kernel tid, read once per thread with gettid(2) and then cached. A fork
// child's one thread is a copy of the forking thread, cache included, but has another tid; a
// child that used the copied tid would lock as (and so "own" what is held by) its parent's
// thread. So a cached tid is valid only together with the *fork epoch* it was read in:
//
//   | word          | where                                    | value                              |
//   |---------------|------------------------------------------|------------------------------------|
//   | *fork_epoch   | a MADV_WIPEONFORK page, one per process  | 0: not armed in this process yet;  |
//   |               | (before first use: unarmed_epoch, 0)     | e >= 1: this process's epoch       |
//   | next_epoch    | ordinary memory (a child copies it)      | the last epoch armed in this       |
//   |               |                                          | process or in an ancestor          |
//   | cached_tid    | thread-local                             | {tid, epoch}; epoch no_epoch: none |
//
// Invariants:
//   T1 (wiped)    The kernel zeroes a MADV_WIPEONFORK page in every child that gets a copy of
//                 its parent's memory (fork, _Fork, clone without CLONE_VM) before the child
//                 runs a single instruction, so before any pthread_atfork handler, in any
//                 order, and also for _Fork, which runs none (Linux 4.14, madvise(2)).
//   T2 (fresh)    An epoch is armed only in a zeroed word, with a value drawn from next_epoch,
//                 which only grows and which a child inherits: a child's epoch exceeds every
//                 epoch that a thread it copies can have cached. No epoch is ever no_epoch.
//   T3 (valid)    By T1 and T2, cached.epoch == *fork_epoch holds only in the process, and so
//                 in the thread, whose gettid() filled the cache: thread_id() is exact in every
//                 child a program can make without raw syscalls, however it made it and
//                 whatever ran first there. (A vfork child shares its parent's memory and may
//                 only exec or _exit, as POSIX says; a raw CLONE_VM thread has no TLS of its own.)
//
// Where the page cannot be had (a kernel before 4.14; mmap failing), the epoch lives in
// fallback_epoch, which a pthread_atfork child handler zeroes: then T1 holds only for fork(),
// and only for atfork child handlers registered after lockstep's first thread_id() call.
//
// Memory ordering: fork_epoch changes once, from unarmed_epoch to a new word, by a release CAS
// after the word is constructed; the fast path loads it with acquire (a plain load on x86), so
// the word it reads through is constructed (the C++ model, and TSan, would call a relaxed load
// a race with the construction). The epoch word itself changes once per process, from 0 to e,
// and is read relaxed: a thread compares it with an epoch it read from that same word itself,
// so a stale 0 only sends it to the slow path; it can never make a foreign cache look valid.
namespace detail {
struct tid_cache {
  std::uint32_t tid;
  std::uint32_t epoch;
};
inline constexpr std::uint32_t no_epoch = ~std::uint32_t(0);
inline constinit thread_local tid_cache cached_tid{0, no_epoch};

inline constinit std::atomic<std::uint32_t> unarmed_epoch{0};
inline constinit std::atomic<std::uint32_t> fallback_epoch{0};
inline constinit std::atomic<std::atomic<std::uint32_t>*> fork_epoch{&unarmed_epoch};
inline constinit std::atomic<std::uint32_t> next_epoch{0};

// Once per process tree (a child inherits the page, wiped): the epoch word, on its own page.
[[gnu::cold, gnu::noinline]] inline std::atomic<std::uint32_t>* map_epoch_word() noexcept {
  constexpr std::size_t size = sizeof(std::atomic<std::uint32_t>);  // the kernel maps a whole page
  std::atomic<std::uint32_t>* word = &fallback_epoch;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED && ::madvise(p, size, MADV_WIPEONFORK) == 0) {
    word = ::new (p) std::atomic<std::uint32_t>(0);
  } else {
    if (p != MAP_FAILED) ::munmap(p, size);
    static const bool registered =
        (::pthread_atfork(nullptr, nullptr, [] { fallback_epoch.store(0, std::memory_order_relaxed); }), true);
    (void)registered;
  }
  std::atomic<std::uint32_t>* expected = &unarmed_epoch;
  if (fork_epoch.compare_exchange_strong(expected, word, std::memory_order_acq_rel, std::memory_order_acquire))
    return word;
  if (word != &fallback_epoch) ::munmap(word, size);  // another thread's first call won
  return expected;
}

// Async-signal-safe once the page exists (atomics and gettid only), as a fork child of a
// multithreaded parent needs: there it runs in the child's first thread_id() call.
[[gnu::cold, gnu::noinline]] inline std::uint32_t fetch_tid() noexcept {
  std::atomic<std::uint32_t>* word = fork_epoch.load(std::memory_order_acquire);
  if (word == &unarmed_epoch) word = map_epoch_word();
  for (;;) {
    std::uint32_t e = word->load(std::memory_order_relaxed);
    if (e == 0) {  // first use in this process, or in a fork child (T1): arm a fresh epoch (T2)
      const std::uint32_t fresh = next_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
      if (fresh == no_epoch) fatal("thread_id: 2^32 - 2 generations of fork children used lockstep");
      if (word->compare_exchange_strong(e, fresh, std::memory_order_relaxed, std::memory_order_relaxed)) e = fresh;
    }
    const auto tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
    cached_tid = {tid, e};
    // A fork (from a signal handler) since e was read would leave this call in the child with
    // the parent's tid; the cache itself could never validate there (T2), but the result must.
    if (word->load(std::memory_order_relaxed) == e) return tid;
  }
}
}  // namespace detail

// The kernel tid: nonzero, below 2^30 (FUTEX_TID_MASK), unique among the live threads of every
// process in this PID namespace, which is what lets a process-shared mutex name its owner.
// Exact in fork children too (T3). No system call after a thread's first.
inline std::uint32_t thread_id() noexcept {
  // The epoch first: the thread-local reads after an acquire load may fold into the compare.
  const std::uint32_t epoch = detail::fork_epoch.load(std::memory_order_acquire)->load(std::memory_order_relaxed);
  if (detail::cached_tid.epoch == epoch) [[likely]]
    return detail::cached_tid.tid;
  return detail::fetch_tid();
}

// --- ThreadSanitizer annotations --------------------------------------------------------------
// TSan understands std::atomic, but only annotations make it treat a futex word as a mutex:
// lock-order (deadlock) reports, and "held mutexes" in race reports.
#if defined(LOCKSTEP_TSAN)
namespace tsan {
inline constexpr bool enabled = true;
inline constexpr unsigned try_lock = __tsan_mutex_try_lock;
inline constexpr unsigned try_lock_failed = __tsan_mutex_try_lock_failed;
inline void pre_lock(void* m, unsigned flags) noexcept { __tsan_mutex_pre_lock(m, flags); }
inline void post_lock(void* m, unsigned flags) noexcept { __tsan_mutex_post_lock(m, flags, 0); }
inline void pre_unlock(void* m) noexcept { __tsan_mutex_pre_unlock(m, 0); }
inline void post_unlock(void* m) noexcept { __tsan_mutex_post_unlock(m, 0); }
}  // namespace tsan
#else
namespace tsan = tsan_off;
#endif

}  // namespace lockstep::seam
