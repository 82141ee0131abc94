// bench/scaling.cpp: the primitives under contention and oversubscription: N threads (1 to 16)
// on however many CPUs the machine has (2 on the reference VM), unpinned, for a fixed window
// (100 ms; 500 ms when threads outnumber CPUs: scaling_window).
//
//   scaling_tight/<lock>/threads:N     N threads: lock; ++counter; unlock (empty critical section)
//   scaling_moderate/<lock>/threads:N  N threads: lock; ~40 ns of work, ++counter; unlock; ~200 ns
//                                      of private work
//   scaling_{tight,moderate}/no lock/threads:N  the same work with no lock, nothing shared: the
//                                      ceiling, and the scheduler's own fairness (a reference row)
//   scaling_{tight,moderate}/no lock, shared atomic counter/threads:N  the same with a relaxed
//                                      fetch_add on one shared counter: what moving one cache
//                                      line between the CPUs costs (a reference row)
//   bounded_buffer/<set>/threads:N     N/2 producers, N/2 consumers, a 64-slot ring guarded by a
//                                      mutex, counted by two counting semaphores (free, filled):
//                                      the textbook bounded buffer, the channels' blocking shape
//
// Each repetition starts N threads, lets them run for the window, snapshots every thread's
// count, and stops them. Counters reported:
//   ops_per_s     operations (lock+unlock; or items through the buffer, a put and a take each)
//                 per second, all threads together
//   fairness      the smallest thread's count over the largest's (1 = equal shares, 0 = a thread
//                 made no progress in the whole window)
//   cpu_ns_per_op CPU time of all the threads (CLOCK_THREAD_CPUTIME_ID) over the operations: what
//                 waiting costs; spinning shows here, sleeping does not
//   csw_per_op    context switches of all the threads (getrusage RUSAGE_THREAD; voluntary ones are
//                 futex sleeps, involuntary ones preemptions) per operation
// Each operation is checked: the guarded counter must equal the sum of the threads' counts, and
// every item produced must be consumed once.
#include "peers/locks.hpp"
#include "peers/semaphores.hpp"

#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sched.h>
#include <sys/resource.h>
#include <time.h>

namespace lockstep_bench {
namespace {

// The window each repetition runs for. Up to one thread per CPU, 100 ms (shorter than the
// two-thread table's: ~140 figures must fit in tools/bench's budget). With more threads than
// CPUs the scheduler time-slices them in slices of milliseconds, and a 100 ms window is then
// shorter than one round of 8 threads per CPU: even the "no lock" row's fairness (the scheduler
// alone, nothing shared) was 0.20 median at 16 threads, 0.04-0.27 over 7 repetitions, lower
// than every lock's, which decides nothing about a lock. With 500 ms it was 0.65-0.80 and the
// locks' spread narrowed (docs/performance.md, "The resolution of the scaling tables"). "CPUs"
// are the ones this process may run on (its affinity mask: taskset, cpusets), not the machine's.
std::chrono::milliseconds scaling_window(int threads) {
  static const int cpus = [] {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return std::chrono::milliseconds(threads > cpus ? 500 : 100);
}
constexpr int thread_counts[] = {1, 2, 4, 8, 16};

double thread_cpu_ns();

// Private work of a given length: a dependent multiply-add chain the compiler cannot fold away.
// Calibrated once per process, so "40 ns" means 40 ns on every machine: in thread CPU time, the
// fastest of 5 tries, so that other load on the machine (a preemption during the calibration)
// cannot shrink the work.
struct work {
  static double steps_per_ns() {
    static const double v = [] {
      constexpr std::uint64_t n = 400'000;
      double best = 1e300;
      for (int i = 0; i < 5; ++i) {
        const double t0 = thread_cpu_ns();
        spin(n);
        best = std::min(best, thread_cpu_ns() - t0);
      }
      return static_cast<double>(n) / best;
    }();
    return v;
  }
  static std::uint64_t spin(std::uint64_t n) {
    std::uint64_t x = n;
    for (std::uint64_t i = 0; i < n; ++i) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      asm volatile("" : "+r"(x));
    }
    return x;
  }
  explicit work(int ns) : steps(static_cast<std::uint64_t>(ns * steps_per_ns())) {}
  void operator()() const { (void)spin(steps); }
  std::uint64_t steps;
};

// One thread's tallies, each on its own cache line so that counting does not contend.
struct alignas(64) tally {
  std::atomic<std::uint64_t> ops{0};  // written by its thread only (load + store), read by main
  double cpu_ns = 0;                  // read after join
  long csw = 0;
};

double thread_cpu_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

long thread_csw() {
  rusage ru;
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

// Runs body(k, stop, tally) on n threads for the window and reports the counters. body counts
// its operations into tally.ops and returns when stop is set; `check` validates the run after
// every thread has joined and returns an error message or nullptr.
// Each operation counts as 1/per_unit of a unit (a bounded-buffer item is two operations: a put
// and a take), and every counter is per unit.
template <class Body, class Check>
void run_threads(benchmark::State& state, int n, double per_unit, Body body, Check check) {
  for (auto _ : state) {
    std::vector<tally> t(static_cast<std::size_t>(n));
    stop_flag stop_line;
    std::atomic<bool>& stop = stop_line.value;
    std::latch start(n + 1);
    std::vector<std::thread> threads;
    for (int k = 0; k < n; ++k)
      threads.emplace_back([&, k] {
        start.arrive_and_wait();
        const double cpu0 = thread_cpu_ns();
        const long csw0 = thread_csw();
        body(k, stop, t[static_cast<std::size_t>(k)].ops);
        t[static_cast<std::size_t>(k)].cpu_ns = thread_cpu_ns() - cpu0;
        t[static_cast<std::size_t>(k)].csw = thread_csw() - csw0;
      });
#if defined(LOCKSTEP_COUNT_FUTEX_CALLS)
    lockstep::seam::futex_wait_calls = 0;
    lockstep::seam::futex_wake_calls = 0;
    lockstep::seam::spin_steps = 0;
#endif
    start.arrive_and_wait();
    const auto t0 = clock::now();
    std::this_thread::sleep_for(scaling_window(n));
    std::uint64_t total = 0, lo = ~std::uint64_t{0}, hi = 0;
    for (auto& x : t) {
      const std::uint64_t v = x.ops.load(std::memory_order_relaxed);
      total += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const auto t1 = clock::now();
    stop.store(true, std::memory_order_relaxed);
    for (auto& th : threads) th.join();
    if (const char* err = check()) {
      state.SkipWithError(err);
      return;
    }
    // Operations after the snapshot are not counted, nor their CPU time (nearly: the threads stop
    // within one operation, plus the wake-ups of those asleep at the stop).
    double cpu = 0, csw = 0, done = 0;
    for (auto& x : t) {
      cpu += x.cpu_ns;
      csw += static_cast<double>(x.csw);
      done += static_cast<double>(x.ops.load(std::memory_order_relaxed));
    }
    done /= per_unit;
    const double units = static_cast<double>(total) / per_unit;
    if (total == 0) {
      state.SkipWithError("no operation completed in the window");
      return;
    }
    state.SetIterationTime(seconds(t1 - t0) / units);
    state.counters["ops_per_s"] = units / seconds(t1 - t0);
    state.counters["fairness"] = hi == 0 ? 0 : static_cast<double>(lo) / static_cast<double>(hi);
    state.counters["cpu_ns_per_op"] = cpu / done;
    state.counters["csw_per_op"] = csw / done;
#if defined(LOCKSTEP_COUNT_FUTEX_CALLS)  // lockstep_bench_scaling_counted: meaningful for lockstep's rows only
    using namespace lockstep::seam;
    state.counters["futex_wait_per_op"] = static_cast<double>(futex_wait_calls.exchange(0)) / done;
    state.counters["futex_wake_per_op"] = static_cast<double>(futex_wake_calls.exchange(0)) / done;
    state.counters["spins_per_op"] = static_cast<double>(spin_steps.exchange(0)) / done;
#endif
  }
}

void count(std::atomic<std::uint64_t>& ops) { ops.store(ops.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

// What a thread does each operation between its private work: a counter increment under a lock,
// or the reference rows' ("no lock"; not peers) increment of a shared atomic counter, or nothing
// shared at all (the throughput ceiling, and the scheduler's own fairness: the floor under every
// lock's figure when threads outnumber CPUs). The shared atomic counter prices what moving one
// cache line between the CPUs costs per operation, which every lock pays too (its word and the
// counter it guards share that line). take() returns the counter and resets it, for the check.
template <class Lock>
struct under_lock {  // lock; ~inside; ++counter; unlock
  guarded_counter<Lock> g;  // on a cache line of its own (bench/common.hpp)
  void operator()(const work& inside) {
    g.lock.lock();
    inside();
    ++g.counter;
    g.lock.unlock();
  }
  std::uint64_t take() { return std::exchange(g.counter, 0); }
  static constexpr const char* broken = "the lock let two increments overlap: counter != sum of increments";
};
struct alignas(64) shared_atomic {  // ~inside; fetch_add on one shared line
  std::atomic<std::uint64_t> value{0};
  void operator()(const work& inside) {
    inside();
    value.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t take() { return value.exchange(0, std::memory_order_relaxed); }
  static constexpr const char* broken = "the shared counter lost increments: counter != sum of the counts";
};
struct nothing_shared {  // ~inside only
  void operator()(const work& inside) { inside(); }
  std::uint64_t take() { return 0; }
  static constexpr const char* broken = nullptr;  // nothing to check
};

// N threads: op (with ~inside_ns of work), count, ~outside_ns of private work, until the stop;
// the counter op keeps must equal the sum of the threads' counts.
template <class Op>
void counter_scaling(benchmark::State& state, int n, int inside_ns, int outside_ns) {
  const auto op = std::make_unique<Op>();
  std::atomic<std::uint64_t> counted{0};
  const work inside(inside_ns), outside(outside_ns);
  run_threads(
      state, n, 1,
      [&](int, std::atomic<bool>& stop, std::atomic<std::uint64_t>& ops) {
        while (!stop.load(std::memory_order_relaxed)) {
          (*op)(inside);
          count(ops);
          outside();
        }
        counted.fetch_add(ops.load(std::memory_order_relaxed), std::memory_order_relaxed);
      },
      [&]() -> const char* {
        const std::uint64_t c = op->take(), s = counted.exchange(0);
        return Op::broken == nullptr || c == s ? nullptr : Op::broken;
      });
}

// The bounded buffer: a ring of 64 slots, `free` counts empty slots, `filled` full ones, and the
// mutex guards the ring's indices. Producer: free.acquire; lock; put; unlock; filled.release.
// Consumer: the mirror image. At the stop every producer puts one end marker (0), and each
// consumer leaves at the first it takes: N/2 markers for N/2 consumers, so nobody is left
// blocked (a producer still waiting for a free slot is served by consumers that have not yet
// met their marker).
constexpr std::uint64_t slots = 64;

template <class Sem, class Lock>
struct alignas(64) ring {  // aligned: one layout in every process (bench/common.hpp, guarded_counter)
  Sem free{slots}, filled{0};
  Lock lock;
  std::uint64_t item[slots] = {};  // guarded by lock
  std::uint64_t head = 0, tail = 0;
};

template <class Sem, class Lock>
void bounded_buffer(benchmark::State& state, int n) {
  auto r = std::make_unique<ring<Sem, Lock>>();
  std::atomic<std::uint64_t> produced{0}, consumed{0}, mismatches{0};
  const int producers = n / 2;
  run_threads(
      state, n, 2,
      [&](int k, std::atomic<bool>& stop, std::atomic<std::uint64_t>& ops) {
        if (k < producers) {
          std::uint64_t sent = 0;
          for (bool last = false; !last;) {
            last = stop.load(std::memory_order_relaxed);
            r->free.acquire();
            r->lock.lock();
            r->item[r->tail++ % slots] = last ? 0 : 1;
            r->lock.unlock();
            r->filled.release();
            if (!last) {
              count(ops);
              ++sent;
            }
          }
          produced.fetch_add(sent, std::memory_order_relaxed);
        } else {
          std::uint64_t got = 0;
          for (;;) {
            r->filled.acquire();
            r->lock.lock();
            const std::uint64_t v = r->item[r->head++ % slots];
            r->lock.unlock();
            r->free.release();
            if (v == 0) break;
            if (v != 1) mismatches.fetch_add(1, std::memory_order_relaxed);
            count(ops);
            ++got;
          }
          consumed.fetch_add(got, std::memory_order_relaxed);
        }
      },
      [&]() -> const char* {
        const bool ok = produced.exchange(0) == consumed.exchange(0) && mismatches.exchange(0) == 0 &&
                        r->head == r->tail;
        r = std::make_unique<ring<Sem, Lock>>();
        return ok ? nullptr : "the bounded buffer lost, duplicated or corrupted an item";
      });
}

// A counting semaphore peer with the interface above (constructed with a count).
template <class Sem>
struct sem_of {
  explicit sem_of(std::uint64_t initial) : s(static_cast<std::ptrdiff_t>(initial)) {}
  void acquire() { s.acquire(); }
  void release() { s.release(); }
  Sem s;
};

template <class Lock>
void add_lock(const std::string& subject) {
  for (int n : thread_counts) {
    const std::string t = "/threads:" + std::to_string(n);
    add_timed("scaling_tight/" + subject + t,
              [n](benchmark::State& s) { counter_scaling<under_lock<Lock>>(s, n, 0, 0); });
    add_timed("scaling_moderate/" + subject + t,
              [n](benchmark::State& s) { counter_scaling<under_lock<Lock>>(s, n, 40, 200); });
  }
}

template <class Sem, class Lock>
void add_buffer(const std::string& subject) {
  for (int n : {2, 4, 8, 16})
    add_timed("bounded_buffer/" + subject + "/threads:" + std::to_string(n),
              [n](benchmark::State& s) { bounded_buffer<Sem, Lock>(s, n); });
}

const bool registered = [] {
  for (int n : thread_counts) {
    const std::string t = "/threads:" + std::to_string(n);
    add_timed("scaling_tight/no lock" + t, [n](benchmark::State& s) { counter_scaling<nothing_shared>(s, n, 0, 0); });
    add_timed("scaling_moderate/no lock" + t,
              [n](benchmark::State& s) { counter_scaling<nothing_shared>(s, n, 40, 200); });
    add_timed("scaling_tight/no lock, shared atomic counter" + t,
              [n](benchmark::State& s) { counter_scaling<shared_atomic>(s, n, 0, 0); });
    add_timed("scaling_moderate/no lock, shared atomic counter" + t,
              [n](benchmark::State& s) { counter_scaling<shared_atomic>(s, n, 40, 200); });
  }
  add_lock<lockstep::mutex>("lockstep::mutex");
  add_lock<lockstep::interprocess_mutex>("lockstep::interprocess_mutex");
  add_lock<unowned_futex>("futex mutex, no owner");
  add_lock<tas_spinlock>("TAS spinlock");
  add_lock<std::mutex>("std::mutex");
  add_lock<pthread_lock<pthread_kind::normal>>("pthread default");
  add_lock<pthread_lock<pthread_kind::adaptive>>("pthread adaptive");
  add_lock<pthread_lock<pthread_kind::process_shared>>("pthread process-shared");
  add_lock<boost_interprocess_mutex>("boost interprocess_mutex");

  add_buffer<sem_of<lockstep::counting_semaphore<>>, lockstep::mutex>("lockstep::counting_semaphore + mutex");
  add_buffer<sem_of<lockstep::interprocess_counting_semaphore<>>, lockstep::interprocess_mutex>(
      "lockstep::interprocess_counting_semaphore + mutex");
  add_buffer<sem_of<std::counting_semaphore<>>, std::mutex>("std::counting_semaphore + std::mutex");
  // Halves swapped: which of lockstep's two primitives the buffer's time goes to.
  add_buffer<sem_of<lockstep::counting_semaphore<>>, std::mutex>("lockstep::counting_semaphore + std::mutex");
  add_buffer<sem_of<std::counting_semaphore<>>, lockstep::mutex>("std::counting_semaphore + lockstep::mutex");
  add_buffer<posix_semaphore, pthread_lock<pthread_kind::normal>>("sem_t + pthread_mutex");
  add_buffer<boost_semaphore, boost_interprocess_mutex>("boost interprocess_semaphore + mutex");
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
