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
#include <string_view>

#include <linux/futex.h>
#include <pthread.h>
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

// --- futex syscall counting (test builds only) -------------------------------------------------
#if defined(LOCKSTEP_COUNT_FUTEX_CALLS)
inline constexpr bool counts_futex_calls = true;
inline std::atomic<std::uint64_t> futex_wait_calls{0};
inline std::atomic<std::uint64_t> futex_wake_calls{0};
#define LOCKSTEP_COUNT_FUTEX(counter) ::lockstep::seam::counter.fetch_add(1, std::memory_order_relaxed)
#else
inline constexpr bool counts_futex_calls = false;
#define LOCKSTEP_COUNT_FUTEX(counter) ((void)0)
#endif

inline wait_result futex_wait(futex_word& w, std::uint32_t expected, scope s,
                              deadline d = no_deadline) noexcept {
  LOCKSTEP_COUNT_FUTEX(futex_wait_calls);
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
  LOCKSTEP_COUNT_FUTEX(futex_wake_calls);
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

// --- thread identity ---------------------------------------------------------------------------
namespace detail {
inline constinit thread_local std::uint32_t cached_tid = 0;

inline void forget_tid_in_child() noexcept { cached_tid = 0; }

[[gnu::cold, gnu::noinline]] inline std::uint32_t fetch_tid() noexcept {
  // After fork() the child's only thread inherits the parent thread's cached tid: drop it, or
  // the child would lock with (and so "own" as) its parent's id.
  static const bool registered = (::pthread_atfork(nullptr, nullptr, forget_tid_in_child), true);
  (void)registered;
  cached_tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  return cached_tid;
}
}  // namespace detail

// The kernel tid: nonzero, below 2^30 (FUTEX_TID_MASK), unique among the live threads of every
// process in this PID namespace, which is what lets a process-shared mutex name its owner.
inline std::uint32_t thread_id() noexcept {
  const std::uint32_t t = detail::cached_tid;
  return t != 0 ? t : detail::fetch_tid();
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
