// primitives/tests/support.hpp: helpers shared by the unit tests.
#pragma once

#include <lockstep/seam.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

namespace lockstep::test {

// Futex syscalls made by this process since construction. The counters are process-wide
// (LOCKSTEP_COUNT_FUTEX_CALLS), and doctest runs one test at a time, so a delta belongs to the
// test that measures it.
class futex_calls {
 public:
  std::uint64_t waits() const { return seam::futex_wait_calls.load() - wait0_; }
  std::uint64_t wakes() const { return seam::futex_wake_calls.load() - wake0_; }

 private:
  std::uint64_t wait0_ = seam::futex_wait_calls.load();
  std::uint64_t wake0_ = seam::futex_wake_calls.load();
};

// Spin steps (seam::spin_pause calls) made by this process since construction: a due
// deadline must make none. Process-wide like futex_calls.
class spin_steps {
 public:
  std::uint64_t count() const { return seam::spin_steps.load() - steps0_; }

 private:
  std::uint64_t steps0_ = seam::spin_steps.load();
};

// Polls until pred() holds; false if it still does not after `limit` (then the test fails
// instead of hanging). Tests wait for states this way, never for a fixed time.
template <class Pred>
bool eventually(Pred pred, std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace lockstep::test
