// bench/pingpong.cpp: hand-off latency through semaphores: two threads bounce one token through
// two semaphores (ping, pong); a sample is one round trip, i.e. two hand-offs.
//
// Each round trip is timed on its own (one clock read per round trip, which is included: see
// reference/steady_clock::now), so the report carries the median and the 99th percentile, not
// only the mean. lockstep's semaphores against:  sem_t, the std and boost semaphores, a pipe (kernel IPC), and a
// busy-polled counter that never sleeps (the floor).
#include "peers/semaphores.hpp"

#include <lockstep/semaphore.hpp>

#include <atomic>
#include <semaphore>
#include <thread>
#include <vector>

namespace lockstep_bench {
namespace {

template <class Semaphore>
void pingpong(benchmark::State& state) {
  const cpu_pin here(0);
  Semaphore ping(0), pong(0);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    const cpu_pin there(1);
    for (;;) {
      ping.acquire();
      if (stop.load(std::memory_order_acquire)) return;
      pong.release();
    }
  });

  std::vector<double> samples;
  samples.reserve(1'000'000);
  for (auto _ : state) {
    auto last = clock::now();
    const auto end = last + window;
    while (last < end) {
      ping.release();
      pong.acquire();
      const auto now = clock::now();
      samples.push_back(ns_between(last, now));
      last = now;
    }
  }
  stop.store(true, std::memory_order_release);
  ping.release();
  echo.join();
  report_samples(state, samples);
}

const bool registered = [] {
  add_timed("pingpong/lockstep::binary_semaphore", pingpong<lockstep::binary_semaphore>);
  add_timed("pingpong/lockstep::counting_semaphore", pingpong<lockstep::counting_semaphore<>>);
  add_timed("pingpong/lockstep::interprocess_binary_semaphore", pingpong<lockstep::interprocess_binary_semaphore>);
  add_timed("pingpong/floor: busy-poll", pingpong<spin_semaphore>);
  add_timed("pingpong/sem_t", pingpong<posix_semaphore>);
  add_timed("pingpong/std::binary_semaphore", pingpong<std::binary_semaphore>);
  add_timed("pingpong/std::counting_semaphore", pingpong<std::counting_semaphore<>>);
  add_timed("pingpong/boost interprocess_semaphore", pingpong<boost_semaphore>);
  add_timed("pingpong/pipe", pingpong<pipe_channel>);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
