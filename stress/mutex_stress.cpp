// stress/mutex_stress.cpp: lockstep::mutex and interprocess_mutex driven hard, every operation
// counted and the counts compared exactly.
//
// Each round runs three phases (processes first, so that each fork happens while this process
// has no other thread):
//   processes  --processes P children, each with --threads T threads, each thread doing
//              --iterations M lock/unlock on one interprocess_mutex in a MAP_SHARED mapping
//   lock       T threads x M lock/unlock on a lockstep::mutex
//   mixed      T threads x M attempts, each by lock, try_lock or try_lock_for (0..63 us),
//              chosen pseudo-randomly
// Every critical section increments a plain (non-atomic) counter, so only the mutex orders
// those increments (TSan checks that in the tsan preset), and checks two things that need no
// sanitizer: it is the only thread inside (an atomic occupancy count, 0 on entry) and it owns
// the mutex (held_by_caller()). At the end of a phase the counter must equal the number of
// critical sections entered, exactly.
//
// Output: per phase, the operations of all rounds, ops/s and the counts; each mismatch on
// stderr with its round. Exit 0 when every check held, 1 on a mismatch, 2 for bad arguments;
// a round stuck for --stall seconds (a lost wake-up, a stranded sleeper) is killed by the
// watchdog. Defaults: rounds of 50000 iterations per thread for 2 s, which is a few seconds
// under TSan too; --seconds, --iterations, --threads and --processes make it run longer.
#include "common.hpp"

#include <lockstep/mutex.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace lockstep::stress;

// What one phase shares: the mutex under test, the data it guards, and the checks' counters.
template <class Mutex>
struct arena {
  explicit arena(unsigned parties) : start(parties) {}
  Mutex m;
  unsigned long long counter = 0;        // plain: guarded by m alone
  std::atomic<unsigned> inside{0};       // threads inside the critical section right now
  std::atomic<unsigned long long> overlaps{0};   // entries that found another thread inside
  std::atomic<unsigned long long> not_owner{0};  // held_by_caller() wrong inside or after
  std::atomic<unsigned long long> entered{0};    // critical sections entered, counted apart
  start_line start;
};

// The critical section; the caller holds a.m.
template <class Mutex>
void critical(arena<Mutex>& a) {
  // Relaxed is enough: read-modify-writes of one location are totally ordered, so two threads
  // inside at once cannot both see 0.
  if (a.inside.fetch_add(1, std::memory_order_relaxed) != 0) a.overlaps.fetch_add(1, std::memory_order_relaxed);
  if (!a.m.held_by_caller()) a.not_owner.fetch_add(1, std::memory_order_relaxed);
  ++a.counter;
  a.inside.fetch_sub(1, std::memory_order_relaxed);
}

template <class Mutex>
void leave(arena<Mutex>& a) {
  a.m.unlock();
  if (a.m.held_by_caller()) a.not_owner.fetch_add(1, std::memory_order_relaxed);  // exact, by I5
}

// M plain lock/unlock rounds.
template <class Mutex>
void locker(arena<Mutex>& a, unsigned long iterations) {
  a.start.arrive_and_wait();
  for (unsigned long i = 0; i < iterations; ++i) {
    a.m.lock();
    critical(a);
    leave(a);
  }
  a.entered.fetch_add(iterations, std::memory_order_relaxed);
}

struct mixed_tally {
  std::atomic<unsigned long long> busy{0};      // try_lock found it held
  std::atomic<unsigned long long> timeouts{0};  // try_lock_for timed out
};

// M attempts, each by one of the three ways in, chosen by a per-thread xorshift.
template <class Mutex>
void mixer(arena<Mutex>& a, mixed_tally& t, unsigned long iterations, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
  unsigned long long entered = 0, busy = 0, timeouts = 0;
  a.start.arrive_and_wait();
  for (unsigned long i = 0; i < iterations; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bool got = false;
    switch (x % 4) {
      case 0:
      case 1:
        a.m.lock();
        got = true;
        break;
      case 2:
        got = a.m.try_lock();
        busy += !got;
        break;
      default:
        got = a.m.try_lock_for(std::chrono::microseconds((x >> 8) % 64));
        timeouts += !got;
        break;
    }
    if (!got) continue;
    ++entered;
    critical(a);
    leave(a);
  }
  a.entered.fetch_add(entered, std::memory_order_relaxed);
  t.busy.fetch_add(busy, std::memory_order_relaxed);
  t.timeouts.fetch_add(timeouts, std::memory_order_relaxed);
}

template <class Fn>
void run_threads(unsigned n, Fn fn) {
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned i = 0; i < n; ++i) ts.emplace_back(fn, i);
  for (auto& t : ts) t.join();
}

// Sums over the rounds, for the closing report.
struct tally {
  unsigned long long ops = 0, entered = 0, busy = 0, timeouts = 0;
  double secs = 0;
};

// The checks every phase ends with: the guarded counter equals the critical sections entered,
// which equal what the phase expects, and no critical section saw another thread or a wrong
// owner. Adds the phase to `sum`; on a mismatch prints the round's counts and what is wrong.
template <class Mutex>
bool judge(const char* phase, const arena<Mutex>& a, unsigned long long attempts, unsigned long long expected,
           double secs, tally& sum) {
  const unsigned long long entered = a.entered.load();
  sum.ops += attempts;
  sum.entered += entered;
  sum.secs += secs;
  bool ok = true;
  auto expect = [&](bool cond, const char* what) {
    if (!cond) std::fprintf(stderr, "%s: MISMATCH: %s\n", phase, what);
    ok = ok && cond;
  };
  expect(a.counter == entered, "the guarded counter differs from the critical sections entered");
  expect(entered == expected, "critical sections entered differ from the successful lock calls");
  expect(a.overlaps.load() == 0, "two threads were inside the critical section at once");
  expect(a.not_owner.load() == 0, "held_by_caller() was wrong inside or after a critical section");
  if (!ok)
    std::fprintf(stderr, "%s: attempts=%llu expected=%llu entered=%llu counter=%llu overlaps=%llu not_owner=%llu\n",
                 phase, attempts, expected, entered, a.counter, a.overlaps.load(), a.not_owner.load());
  return ok;
}

bool processes_phase(const options& o, tally& sum) {
  const unsigned parties = o.processes * o.threads;
  shared_object<arena<lockstep::interprocess_mutex>> a(parties);
  stopwatch clock;
  std::vector<pid_t> children;
  for (unsigned p = 0; p < o.processes; ++p)
    children.push_back(fork_child([&] {
      run_threads(o.threads, [&](unsigned) { locker(*a, o.iterations); });
      return 0;
    }));
  const bool children_ok = wait_children(children, "processes");
  const unsigned long long ops = 1ull * parties * o.iterations;
  return judge("processes", *a, ops, ops, clock.seconds(), sum) && children_ok;
}

bool lock_phase(const options& o, tally& sum) {
  arena<lockstep::mutex> a(o.threads);
  stopwatch clock;
  run_threads(o.threads, [&](unsigned) { locker(a, o.iterations); });
  const unsigned long long ops = 1ull * o.threads * o.iterations;
  return judge("lock", a, ops, ops, clock.seconds(), sum);
}

bool mixed_phase(const options& o, unsigned round, tally& sum) {
  arena<lockstep::mutex> a(o.threads);
  mixed_tally t;
  stopwatch clock;
  run_threads(o.threads, [&](unsigned i) { mixer(a, t, o.iterations, 1 + i + 1000ull * round); });
  const unsigned long long attempts = 1ull * o.threads * o.iterations;
  const unsigned long long busy = t.busy.load(), timeouts = t.timeouts.load();
  sum.busy += busy;
  sum.timeouts += timeouts;
  return judge("mixed", a, attempts, attempts - busy - timeouts, clock.seconds(), sum);
}

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.iterations = 50000;
  defaults.seconds = 2;
  const options o = parse_options(argc, argv, defaults);
  std::printf("mutex stress: %u threads, %u processes x %u threads, %lu iterations per thread per round, %g s\n",
              o.threads, o.processes, o.threads, o.iterations, o.seconds);
  unsigned round = 0;
  tally processes, lock, mixed;
  const bool ok = repeat_rounds(o, [&] {
    ++round;
    // Each phase runs even if an earlier one failed, so one report shows every mismatch.
    const bool p = processes_phase(o, processes);
    const bool l = lock_phase(o, lock);
    const bool m = mixed_phase(o, round, mixed);
    return p && l && m;
  });
  auto entered = [](const tally& t) { return "entered=" + std::to_string(t.entered); };
  report("processes", processes.ops, processes.secs,
         entered(processes) + " (" + std::to_string(o.processes) + " processes x " + std::to_string(o.threads) +
             " threads)");
  report("lock", lock.ops, lock.secs, entered(lock));
  report("mixed", mixed.ops, mixed.secs,
         entered(mixed) + " busy=" + std::to_string(mixed.busy) + " timeouts=" + std::to_string(mixed.timeouts));
  std::printf("%s after %u round(s)\n", ok ? "PASS" : "FAIL", round);
  return ok ? 0 : 1;
}
