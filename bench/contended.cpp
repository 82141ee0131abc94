// bench/contended.cpp: two threads increment one counter under one lock for a fixed window.
// Reports total throughput (the benchmark's time is nanoseconds per increment, both threads
// together) and fairness: the smaller thread's count over the larger's (1 = equal shares,
// 0 = one thread starved the other for the whole window).
#include "peers/locks.hpp"

#include <lockstep/mutex.hpp>

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>

namespace lockstep_bench {
namespace {

template <class Lock>
void shared_counter(benchmark::State& state) {
  const cpu_pin here(0);
  const auto g = std::make_unique<guarded_counter<Lock>>();  // one layout in every process
  Lock& lock = g->lock;
  std::uint64_t& counter = g->counter;
  stop_flag stop_line;
  std::atomic<bool>& stop = stop_line.value;
  std::latch start(2);
  std::uint64_t counts[2] = {};

  auto peer_work = [&] {
    const cpu_pin there(1);
    std::uint64_t mine = 0;
    start.arrive_and_wait();
    while (!stop.load(std::memory_order_relaxed)) {
      lock.lock();
      ++counter;
      lock.unlock();
      ++mine;
    }
    counts[1] = mine;
  };

  for (auto _ : state) {
    std::thread peer(peer_work);
    // This thread works too, and ends the window: it reads the clock every 64 increments so
    // that the clock is not what is measured.
    std::uint64_t mine = 0;
    start.arrive_and_wait();
    const auto t0 = clock::now();
    const auto end = t0 + window;
    auto t1 = t0;
    for (;;) {
      lock.lock();
      ++counter;
      lock.unlock();
      ++mine;
      if (mine % 64 == 0 && (t1 = clock::now()) >= end) break;
    }
    stop.store(true, std::memory_order_relaxed);
    peer.join();
    counts[0] = mine;

    const std::uint64_t total = counts[0] + counts[1];
    if (counter != total) {
      state.SkipWithError("the lock let two increments overlap: counter != sum of increments");
      return;
    }
    state.SetIterationTime(seconds(t1 - t0) / static_cast<double>(total));
    state.counters["ops_per_s"] = static_cast<double>(total) / seconds(t1 - t0);
    state.counters["fairness"] = static_cast<double>(std::min(counts[0], counts[1])) /
                                 static_cast<double>(std::max(counts[0], counts[1]));
  }
}

const bool registered = [] {
  add_timed("mutex_contended/lockstep::mutex", shared_counter<lockstep::mutex>);
  add_timed("mutex_contended/lockstep::interprocess_mutex", shared_counter<lockstep::interprocess_mutex>);
  add_timed("mutex_contended/futex mutex, no owner", shared_counter<unowned_futex>);
  add_timed("mutex_contended/TAS spinlock", shared_counter<tas_spinlock>);
  add_timed("mutex_contended/std::mutex", shared_counter<std::mutex>);
  add_timed("mutex_contended/pthread default", shared_counter<pthread_lock<pthread_kind::normal>>);
  add_timed("mutex_contended/pthread adaptive", shared_counter<pthread_lock<pthread_kind::adaptive>>);
  add_timed("mutex_contended/pthread process-shared", shared_counter<pthread_lock<pthread_kind::process_shared>>);
  add_timed("mutex_contended/boost interprocess_mutex", shared_counter<boost_interprocess_mutex>);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
