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
#include <cstddef>
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

// Keeps this thread's memory accesses on either side in program order for a process that may
// be killed between them (a journal written before the step it describes, ipc/detail/
// mq_protocol.hpp Q6): a compiler barrier only. The CPU needs none: a killed thread's retired
// stores all reach memory, and the kernel's robust-futex death action on the lock, which the
// next holder acquires, comes after them.
inline void program_order() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

inline void spin_pause() noexcept {
  LOCKSTEP_COUNT(spin_steps);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spin steps before sleeping, for the semaphore and the channel's cursors (the mutex polls by
// its own rule, backoff_pauses below). Sleeping is not free for the waiter either: on the 2-vCPU KVM
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

// A waiting mutex polls the word after 1, 2, 4, 8 PAUSEs (doubling up to backoff_pauses), then
// after a yield each, backoff_yields times, then sleeps (mutex.hpp S1): 15 PAUSEs and 4 yields,
// ~0.3 us + ~5 us on the 2-vCPU VM (a yield is a 1.25 us system call there, PAUSE 19 ns).
// Measured against polling every PAUSE for 300 steps (the rule until issue 13): a short
// critical section under contention ran 2-4x faster, because a waiter that re-reads the word
// every 19 ns takes its cache line from the holder on every read, and the yields hand an
// oversubscribed CPU to the holder; the price is the hand-off after 1-3 us of holding (~1 us
// instead of ~0.3 us: the release lands in a yield). docs/performance.md, "Scaling".
// 4 yields, not 8: a yield is not free for the yielder under Linux's EEVDF scheduler (6.6 on:
// kernel/sched/fair.c, yield_task_fair moves its virtual deadline a slice later; newer kernels
// also move its vruntime there, forfeiting the rest of its slice), so with more threads than
// CPUs the threads that happened to poll longest fell behind. With 8, "tight, 4 threads"
// fairness was 0.54 against 0.78 with 4 in the same runs (the other rows within the tables'
// resolution), for the same throughput; with 1 yield the empty critical section ran ~15%
// slower. docs/performance.md, "The resolution of the scaling tables".
inline constexpr int backoff_pauses = 8;
inline constexpr int backoff_yields = 4;

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

// --- robust ownership: the kernel's robust futex list ------------------------------------------
// When a thread exits or is killed, the kernel walks the list that the thread registered with
// set_robust_list(2) and, for every entry whose futex word (entry + futex_offset) still holds
// the dead thread's tid, sets FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) and wakes one waiter
// (kernel/futex/core.c, handle_futex_death). glibc registers one list per thread, for its own
// robust pthread mutexes, and the kernel allows one: an interprocess_mutex joins *that* list,
// with glibc's layout and protocol (nptl/descr.h ENQUEUE_MUTEX / DEQUEUE_MUTEX; the robust path
// of pthread_mutex_lock.c / pthread_mutex_unlock.c), so the two kinds of mutex share it.
//
//   | what                | where                          | value                                   |
//   |---------------------|--------------------------------|-----------------------------------------|
//   | futex word          | mutex + 0                      | tid | WAITERS | OWNER_DIED (mutex.hpp)  |
//   | link.prev           | mutex + robust_prev_offset     | &previous entry's next, or &head->list  |
//   | link.next           | mutex + robust_next_offset     | next entry (&its next), or head: the    |
//   |                     | (the list entry itself)        | entry the kernel walks; bit 0: PI entry |
//   | head->list          | glibc's struct pthread         | first entry, or &head->list when empty  |
//   | head[-1] ("prev")   | glibc's robust_prev            | the head's own prev field               |
//   | head->futex_offset  |                                | word - entry: robust_futex_offset       |
//   | head->list_op_pending |                              | the entry being locked or unlocked      |
//
// Invariants:
//   R1 (layout)   Our word-to-entry offset equals glibc's, offsetof(__lock) - offsetof(
//                 __list.__next) of pthread_mutex_t (static_asserted), and the thread's head
//                 says so too (checked at the thread's first use; otherwise robust ownership
//                 is off for that thread, and robust_available() says so).
//   R2 (list)     Only the owning thread links or unlinks an entry, and only while it holds the
//                 mutex: an entry is on its owner's list from its lock until its unlock.
//   R3 (pending)  list_op_pending names the entry from before the locking CAS until after it is
//                 linked (or the lock failed), and from before it is unlinked until after the
//                 word is released and its waiter woken. So a thread killed at any instruction
//                 of lock or unlock leaves its word either on the list or pending: the kernel
//                 marks it OWNER_DIED if it still names the thread, and wakes one waiter if
//                 the word is free (a release whose wake never came).
//   R4 (order)    The kernel reads the list on the dying thread itself, so program order on
//                 that thread is all it needs: compiler barriers between the steps (as glibc's
//                 asm("" ::: "memory")), no fences.
//
// Limits: a thread whose list is unavailable (no glibc robust list, an offset mismatch, seccomp
// refusing get_robust_list) gets no owner-death detection; the kernel walks at most 2048
// entries (ROBUST_LIST_LIMIT); a word in memory unmapped before the thread dies is skipped.
// Not async-signal-safe: a signal handler that locks while its thread is half-way through
// linking would corrupt the list (as with glibc's robust pthread mutexes).
inline constexpr long robust_futex_offset = -32;  // word - entry, as glibc's (R1)
inline constexpr std::size_t robust_prev_offset = 24;
inline constexpr std::size_t robust_next_offset = 32;
#if defined(__GLIBC__) && __PTHREAD_MUTEX_HAVE_PREV
static_assert(robust_futex_offset == long(offsetof(pthread_mutex_t, __data.__lock)) -
                                         long(offsetof(pthread_mutex_t, __data.__list.__next)) &&
                  robust_next_offset == offsetof(pthread_mutex_t, __data.__list.__next) &&
                  robust_prev_offset == offsetof(pthread_mutex_t, __data.__list.__prev),
              "interprocess_mutex must have a robust pthread_mutex_t's layout to join glibc's robust list (R1)");
static_assert(sizeof(void*) == sizeof(std::uint64_t), "glibc has the robust prev field on 64-bit targets only");
#define LOCKSTEP_ROBUST_LIST 1
#endif

namespace detail {
// The calling thread's robust list head, looked up once per thread (fork children keep the
// same address: glibc re-registers the same head, empty, in the child).
struct robust_head_view {
  void* list;
  long futex_offset;
  void* list_op_pending;
};
inline constinit robust_head_view no_robust_list{};  // the head of a thread without one (R1)
inline constinit thread_local robust_head_view* robust_head = nullptr;

[[gnu::cold, gnu::noinline]] inline robust_head_view* fetch_robust_head() noexcept {
  robust_head_view* head = &no_robust_list;
#if defined(LOCKSTEP_ROBUST_LIST)
  void* h = nullptr;
  std::size_t len = 0;
  if (::syscall(SYS_get_robust_list, 0, &h, &len) == 0 && h != nullptr && len == sizeof(robust_head_view) &&
      static_cast<robust_head_view*>(h)->futex_offset == robust_futex_offset)  // R1
    head = static_cast<robust_head_view*>(h);
#endif
  robust_head = head;
  return head;
}
inline robust_head_view* current_robust_head() noexcept {
  robust_head_view* h = robust_head;
  if (h == nullptr) [[unlikely]]
    h = fetch_robust_head();
  return h;
}
inline void compiler_barrier() noexcept { asm volatile("" ::: "memory"); }  // R4
// A list pointer field at `off` from an entry (bit 0, the kernel's PI mark, masked off). Its
// stores are relaxed atomics: an entry's fields pass from a dead owner to the next one with no
// happens-before edge that ThreadSanitizer could see (the kernel's OWNER_DIED write).
inline void store_list_field(std::uintptr_t entry, std::ptrdiff_t off, std::uintptr_t v) noexcept {
  __atomic_store_n(reinterpret_cast<std::uintptr_t*>((entry & ~std::uintptr_t(1)) + off), v, __ATOMIC_RELAXED);
}
}  // namespace detail

// Whether robust ownership works for the calling thread (R1).
inline bool robust_available() noexcept { return detail::current_robust_head() != &detail::no_robust_list; }

// What a mutex carries after its futex word for the robust list: nothing for a process-private
// mutex (which is not robust), glibc's {prev, next} at its offsets for a process-shared one.
// The calls bracket the mutex's own steps exactly as glibc's robust mutex does (R3):
//   lock:   lock_begin(); the CAS that takes the word; lock_end(taken)
//   unlock: unlock_begin(); release the word; wake; unlock_end()
// The word argument is for the model (seam/model.hpp), which keeps its own list.
template <scope S>
struct robust_link {
  void lock_begin(futex_word&) noexcept {}
  void lock_end(futex_word&, bool) noexcept {}
  void unlock_begin(futex_word&) noexcept {}
  void unlock_end(futex_word&) noexcept {}
};

template <>
struct robust_link<scope::process_shared> {
  // Bytes 4..23 of a robust pthread_mutex_t (its count, owner, kind...): unused, kept zero.
  // Fixed-width fields, so that 32- and 64-bit processes agree on a shared layout (a 32-bit one
  // never links: R1 holds for 64-bit glibc only).
  std::uint32_t reserved[4] = {};
  std::atomic<std::uint64_t> prev{0};
  std::atomic<std::uint64_t> next{0};

  void lock_begin(futex_word&) noexcept {
    detail::robust_head_view* h = detail::current_robust_head();
    if (h == &detail::no_robust_list) return;
    h->list_op_pending = &next;
    detail::compiler_barrier();
  }
  void lock_end(futex_word&, bool taken) noexcept {
    detail::robust_head_view* h = detail::robust_head;  // looked up by lock_begin
    if (h == &detail::no_robust_list) return;
    if (taken) {  // link at the front (glibc's ENQUEUE_MUTEX), by R2 only we touch our fields
      const auto first = reinterpret_cast<std::uintptr_t>(h->list);
      detail::store_list_field(first, -std::ptrdiff_t(sizeof(void*)), self());
      next.store(first, std::memory_order_relaxed);
      prev.store(reinterpret_cast<std::uintptr_t>(&h->list), std::memory_order_relaxed);
      detail::compiler_barrier();
      h->list = &next;
    }
    detail::compiler_barrier();
    h->list_op_pending = nullptr;
  }
  void unlock_begin(futex_word&) noexcept {
    detail::robust_head_view* h = detail::current_robust_head();
    if (h == &detail::no_robust_list) return;
    h->list_op_pending = &next;
    detail::compiler_barrier();
    // Unlink (glibc's DEQUEUE_MUTEX): next's prev = our prev; prev's next = our next.
    const auto n = std::uintptr_t(next.load(std::memory_order_relaxed));
    const auto p = std::uintptr_t(prev.load(std::memory_order_relaxed));
    detail::store_list_field(n, -std::ptrdiff_t(sizeof(void*)), p);
    detail::store_list_field(p, 0, n);
    detail::compiler_barrier();
    prev.store(0, std::memory_order_relaxed);
    next.store(0, std::memory_order_relaxed);
  }
  void unlock_end(futex_word&) noexcept {
    detail::robust_head_view* h = detail::robust_head;
    if (h == &detail::no_robust_list) return;
    detail::compiler_barrier();
    h->list_op_pending = nullptr;
  }

 private:
  std::uintptr_t self() noexcept { return reinterpret_cast<std::uintptr_t>(&next); }
};

static_assert(offsetof(robust_link<scope::process_shared>, prev) + sizeof(std::uint64_t) == robust_prev_offset &&
                  offsetof(robust_link<scope::process_shared>, next) + sizeof(std::uint64_t) == robust_next_offset &&
                  alignof(robust_link<scope::process_shared>) == sizeof(std::uint64_t) &&
                  sizeof(robust_link<scope::process_shared>) == 32,
              "placed right after a 32-bit futex word (at +8), the link's fields sit at glibc's offsets (R1)");

// A process-shared sleeper sleeps at most this long at a time and then re-checks its word, so
// that a peer killed between changing the word and its futex_wake strands nobody for longer
// (docs/fault-tolerance.md). Idle cost: one futex round trip per slice, ~0 CPU.
inline constexpr std::chrono::milliseconds shared_wait_slice{200};
// The deadline of one sleep: d, or the end of the slice if that comes first (process-shared).
inline deadline sliced(deadline d, scope s) noexcept {
  if (s == scope::process_private) return d;
  const deadline end = now() + shared_wait_slice;
  return end < d ? end : d;
}

// Crash points: where a model may kill the calling thread (seam/model.hpp). Never in production.
consteval bool crash_point(std::string_view) noexcept { return false; }

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
