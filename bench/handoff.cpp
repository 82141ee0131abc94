// bench/handoff.cpp: mutex hand-off latency: how long after the holder's unlock() a thread that
// is blocked in lock() gets the mutex, as a function of how long it had been waiting.
//
// A waiter that is still polling when the unlock comes sees it after a cache-line transfer (or,
// in lockstep's yield phase, after the yield in progress: ~1 us here); one that has gone to sleep
// pays a futex wake-up across CPUs (tens of microseconds on a VM). The hold times straddle
// lockstep's polling phase (mutex.hpp S1: ~0.3 us of PAUSEs, then ~5 us of yields), so these
// rows are what that policy trades: latency on the left, CPU burnt on the right.
//
// The waiter's CPU time per hand-off (waiter_cpu_ns: its CLOCK_THREAD_CPUTIME_ID over the window
// over the rounds) is the price of that latency. It includes the ~0.1-0.2 us per round that the
// waiter busy-polls for the next round to start.
//
// Per round: the holder locks, lets the waiter go, waits until it has announced its lock() call,
// holds for the hold time, reads the clock and unlocks; the waiter reads the clock as soon as
// lock() returns. The sample is the difference (both read CLOCK_MONOTONIC, which is one clock
// on every CPU), so it includes the unlock itself, e.g. its FUTEX_WAKE.
#include "peers/locks.hpp"

#include <lockstep/mutex.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

namespace lockstep_bench {
namespace {

// The rounds are sequenced by busy-polled flags, not by anything under test.
void await(const std::atomic<std::uint64_t>& flag, std::uint64_t value) {
  while (flag.load(std::memory_order_acquire) != value) lockstep::seam::spin_pause();
}

// What spinning costs: CPU time the waiting thread burns, whether or not it then sleeps.
double thread_cpu_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <class Lock>
void handoff(benchmark::State& state, std::chrono::microseconds hold) {
  const cpu_pin here(0);
  Lock lock;
  std::atomic<std::uint64_t> go{0}, trying{0}, done{0};
  std::atomic<std::int64_t> unlocked_at{0};  // written under the lock, read under it
  std::atomic<double> latency_ns{0};
  double waiter_cpu_ns = 0;  // the waiter's CPU time from its first round to the stop; read after join
  constexpr std::uint64_t stop = ~std::uint64_t{0};

  std::thread waiter([&] {
    const cpu_pin there(1);
    double cpu_start = 0;
    for (std::uint64_t round = 1;; ++round) {
      std::uint64_t g;
      while ((g = go.load(std::memory_order_acquire)) != round && g != stop) lockstep::seam::spin_pause();
      if (g == stop) {
        waiter_cpu_ns = thread_cpu_ns() - cpu_start;
        return;
      }
      if (round == 1) cpu_start = thread_cpu_ns();
      trying.store(round, std::memory_order_release);
      lock.lock();
      const auto now = clock::now().time_since_epoch().count();
      latency_ns.store(static_cast<double>(now - unlocked_at.load(std::memory_order_relaxed)),
                       std::memory_order_relaxed);
      lock.unlock();
      done.store(round, std::memory_order_release);
    }
  });

  std::vector<double> samples;
  samples.reserve(200'000);
  for (auto _ : state) {
    const auto end = clock::now() + window;
    for (std::uint64_t round = 1; clock::now() < end; ++round) {
      lock.lock();
      go.store(round, std::memory_order_release);
      await(trying, round);
      const auto held_until = clock::now() + hold;
      auto now = clock::now();
      while (now < held_until) now = clock::now();
      unlocked_at.store(now.time_since_epoch().count(), std::memory_order_relaxed);
      lock.unlock();
      await(done, round);
      samples.push_back(latency_ns.load(std::memory_order_relaxed));
    }
  }
  go.store(stop, std::memory_order_release);
  waiter.join();
  report_samples(state, samples);
  state.counters["waiter_cpu_ns"] = waiter_cpu_ns / static_cast<double>(samples.size());
}

template <class Lock>
void add_handoff(const std::string& subject) {
  for (int us : {0, 2, 8, 32, 128})
    add_timed("mutex_handoff/" + subject + "/hold:" + std::to_string(us) + "us",
              [us](benchmark::State& s) { handoff<Lock>(s, std::chrono::microseconds(us)); });
}

const bool registered = [] {
  add_handoff<lockstep::mutex>("lockstep::mutex");
  add_handoff<std::mutex>("std::mutex");
  add_handoff<pthread_lock<pthread_kind::adaptive>>("pthread adaptive");
  add_handoff<tas_spinlock>("TAS spinlock");
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
