// bench/reference.cpp: the yardsticks the other figures are read against: what one clock read
// costs (every latency sample includes one), what one spin step costs, and how long the spin
// that lockstep's semaphore (and the channel's cursors) do before sleeping lasts (seam::max_spins
// steps; the mutex polls by its own rule, mutex.hpp S1).
#include "common.hpp"

#include <lockstep/seam.hpp>

#include <atomic>
#include <cstdint>
#include <string>

namespace lockstep_bench {
namespace {

void clock_read(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(clock::now());
}

void spin_step(benchmark::State& state) {
  for (auto _ : state) lockstep::seam::spin_pause();
}

// Mirrors the spin phase of lockstep::mutex: a pause and a relaxed load per step.
void spin_window(benchmark::State& state) {
  std::atomic<std::uint32_t> word{1};
  for (auto _ : state)
    for (int i = 0; i < lockstep::seam::max_spins && word.load(std::memory_order_relaxed) != 0; ++i)
      lockstep::seam::spin_pause();
  state.counters["max_spins"] = lockstep::seam::max_spins;
}

const bool registered = [] {
  add("reference/steady_clock::now", clock_read);
  add("reference/spin step (PAUSE)", spin_step);
  add("reference/spin window (max_spins steps)", spin_window);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
