// bench/common.hpp: what every benchmark file shares: naming, registration, timing windows and
// the percentile summary of per-operation samples.
//
// Naming: "<group>/<subject>[/<variant>]". bench/report.py groups by <group>, and a subject that
// starts with "lockstep::" is ours; every other subject in the group is a peer it is compared
// with. Repetitions and minimum time come from the command line (tools/bench), not from here,
// so one binary serves both the full run and the quick spin sweep.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <pthread.h>
#include <sched.h>

namespace lockstep_bench {

using clock = std::chrono::steady_clock;

// How long one repetition of a two-thread benchmark runs. Long enough for thousands of 50 us
// sleeps/wake-ups, short enough that the whole run stays within its time budget.
inline constexpr auto window = std::chrono::milliseconds(100);

[[noreturn]] inline void die(const char* what, int err) {
  // A peer that cannot even be set up would make every figure after it meaningless: stop.
  std::fprintf(stderr, "bench: %s: %s\n", what, std::strerror(err));
  std::exit(2);
}

// Two-thread benchmarks measure hand-offs between CPUs: the peer runs on another CPU than the
// benchmark thread, pinned, so that neither the scheduler nor other load on the machine can put
// both on one CPU (where a "hand-off" is a context switch, and a spinning waiter stalls its
// holder). cpu_pin(k) pins the calling thread to the k-th CPU it may run on, for its lifetime.
// With fewer than two CPUs it pins nothing: the figures then measure one CPU, as they must.
class cpu_pin {
 public:
  explicit cpu_pin(int k) {
    if (::pthread_getaffinity_np(::pthread_self(), sizeof saved_, &saved_) != 0) return;
    // Choose among the CPUs the process may use, as seen before any thread was pinned: a thread
    // inherits its creator's (pinned) mask, which would leave it one CPU to choose from.
    static const cpu_set_t allowed = saved_;
    if (CPU_COUNT(&allowed) < 2) return;
    int seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed) || seen++ != k) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (const int e = ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one)) die("pthread_setaffinity_np", e);
      // The kernel migrates the thread before the call returns; check, so that a figure never
      // claims two CPUs it did not have.
      if (::sched_getcpu() != cpu) die("pinned thread runs on another CPU", EINVAL);
      pinned_ = true;
      return;
    }
  }
  ~cpu_pin() {
    if (pinned_) ::pthread_setaffinity_np(::pthread_self(), sizeof saved_, &saved_);
  }
  cpu_pin(const cpu_pin&) = delete;
  cpu_pin& operator=(const cpu_pin&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

inline double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A lock and the counter it guards, on a cache line of their own (allocate it with
// std::make_unique: aligned new). On the stack, what shares the lock's line with it (a stop flag
// every thread reads each round, the work lengths) depended on where the process's stack began,
// which ASLR moves in 16-byte steps, and so did the figures: std::mutex ran the moderate table
// at 5.7 M/s in one process and 2.1 M/s in the next, lockstep 6.1 and 5.6, the same binary.
template <class Lock>
struct alignas(64) guarded_counter {
  Lock lock;
  std::uint64_t counter = 0;  // guarded by lock
};

// A flag every thread polls, on its own cache line for the same reason.
struct alignas(64) stop_flag {
  std::atomic<bool> value{false};
};

// A single-threaded benchmark: Google Benchmark picks the iteration count and times it.
template <class Fn>
void add(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn);
}

// A two-thread benchmark that times itself: one iteration per repetition, and the function
// reports its own time per operation through SetIterationTime.
template <class Fn>
void add_timed(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->UseManualTime()->Iterations(1);
}

// Reports per-operation samples (nanoseconds): the mean as the benchmark's time, and the median
// and 99th percentile as counters, so the tails that a mean hides reach the report.
inline void report_samples(benchmark::State& state, std::vector<double>& ns) {
  if (ns.empty()) {
    state.SkipWithError("no samples were taken");
    return;
  }
  double sum = 0;
  for (double x : ns) sum += x;
  auto at = [&](double q) {
    auto k = ns.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(ns.size() - 1));
    std::nth_element(ns.begin(), k, ns.end());
    return *k;
  };
  state.SetIterationTime(sum / static_cast<double>(ns.size()) * 1e-9);
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["samples"] = static_cast<double>(ns.size());
}

inline double ns_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

}  // namespace lockstep_bench
