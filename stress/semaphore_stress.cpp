// stress/semaphore_stress.cpp: the classic bounded buffer, driven hard: producers and consumers
// through a ring of `capacity` slots guarded by two counting semaphores (free slots, items)
// and a lockstep mutex (the ring's indices), every item accounted for exactly.
//
// Each round runs two phases (processes first, so that each fork happens while this process
// has no other thread):
//   processes  --processes P producer and P consumer processes, each with --threads T threads,
//              on interprocess_counting_semaphore + interprocess_mutex in a MAP_SHARED mapping
//   threads    T producer and T consumer threads on counting_semaphore + mutex
// Each producer thread puts --iterations M items, in batches of 1..3: it takes that many free
// slots (acquire, or try_acquire_for / try_acquire retried, chosen pseudo-randomly), writes
// them under the mutex, then items.release(batch), which must wake up to `batch` consumers.
// Consumers claim items from a shared budget, take each by acquire / try_acquire_for /
// try_acquire likewise, read it under the mutex and release one free slot.
//
// Checks, exact, at the end of a phase: items produced = consumed = P(or 1) x T x M; the sum of
// the item values put = the sum taken = the closed form; each consumer saw every producer's
// items in the order it put them (the ring is FIFO); the ring never held more than capacity
// items (the free-slot semaphore's whole job); both semaphores are back to their initial count
// with no registered sleeper (I2). The ring slots are plain memory, so only the semaphores and
// the mutex order them: TSan (tsan preset) checks that.
//
// Output: one line per phase with ops and ops/s; exit 0 when every check held, 1 otherwise,
// 2 for bad arguments. Defaults run in a few seconds under TSan; --seconds S repeats rounds.
#include "common.hpp"

#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace lockstep::stress;

constexpr unsigned capacity = 16;  // small, so that producers really block on free slots

// An item names its producer and its sequence number (1..M) within that producer.
constexpr std::uint64_t item(std::uint64_t producer, std::uint64_t seq) { return producer << 32 | seq; }

// What one phase shares. Sem is counting_semaphore<capacity> or its interprocess flavour.
template <class Sem, class Mutex>
struct ring {
  ring(unsigned parties, unsigned long long budget) : claims_left(budget), start(parties) {}
  Sem free_slots{capacity};
  Sem items{0};
  Mutex m;
  std::uint64_t slot[capacity] = {};  // plain: guarded by m
  unsigned head = 0, tail = 0, fill = 0;
  std::atomic<long long> claims_left;  // items consumers may still claim
  std::atomic<unsigned long long> produced{0}, consumed{0}, sum_in{0}, sum_out{0};
  std::atomic<unsigned long long> overfull{0}, out_of_order{0}, timeouts{0}, misses{0};
  start_line start;
};

// A per-thread xorshift: which way to take each token, and batch sizes.
struct dice {
  std::uint64_t x;
  explicit dice(std::uint64_t seed) : x(seed * 0x9e3779b97f4a7c15ull | 1) {}
  unsigned roll(unsigned sides) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return unsigned(x % sides);
  }
};

// Takes one token of s, by one of the three ways in; counts failed timed and try attempts.
template <class Sem>
void take(Sem& s, dice& d, unsigned long long& timeouts, unsigned long long& misses) {
  switch (d.roll(4)) {
    case 0:
      while (!s.try_acquire_for(std::chrono::microseconds(d.roll(64)))) ++timeouts;
      return;
    case 1:
      while (!s.try_acquire()) {
        ++misses;
        std::this_thread::yield();
      }
      return;
    default:
      s.acquire();
  }
}

template <class Sem, class Mutex>
void producer(ring<Sem, Mutex>& r, std::uint64_t id, unsigned long iterations) {
  dice d(id + 1);
  unsigned long long sum = 0, timeouts = 0, misses = 0;
  r.start.arrive_and_wait();
  for (unsigned long seq = 1; seq <= iterations;) {
    const unsigned batch = unsigned(std::min<unsigned long>(1 + d.roll(3), iterations - seq + 1));
    for (unsigned k = 0; k < batch; ++k) take(r.free_slots, d, timeouts, misses);
    {
      std::lock_guard g(r.m);
      for (unsigned k = 0; k < batch; ++k, ++seq) {
        r.slot[r.tail] = item(id, seq);
        r.tail = (r.tail + 1) % capacity;
        if (++r.fill > capacity) r.overfull.fetch_add(1, std::memory_order_relaxed);
        sum += item(id, seq);
      }
    }
    r.items.release(batch);
  }
  r.produced.fetch_add(iterations, std::memory_order_relaxed);
  r.sum_in.fetch_add(sum, std::memory_order_relaxed);
  r.timeouts.fetch_add(timeouts, std::memory_order_relaxed);
  r.misses.fetch_add(misses, std::memory_order_relaxed);
}

template <class Sem, class Mutex>
void consumer(ring<Sem, Mutex>& r, std::uint64_t id, unsigned producers) {
  dice d(0x5eed + id);
  std::vector<std::uint64_t> last(producers, 0);  // last sequence number seen per producer
  unsigned long long n = 0, sum = 0, timeouts = 0, misses = 0, out_of_order = 0;
  r.start.arrive_and_wait();
  while (r.claims_left.fetch_sub(1, std::memory_order_relaxed) > 0) {
    take(r.items, d, timeouts, misses);
    std::uint64_t v;
    {
      std::lock_guard g(r.m);
      v = r.slot[r.head];
      r.head = (r.head + 1) % capacity;
      --r.fill;
    }
    r.free_slots.release();
    const std::uint64_t p = v >> 32, seq = v & 0xffff'ffffu;
    if (p >= producers || seq <= last[p]) ++out_of_order;
    else last[p] = seq;
    ++n;
    sum += v;
  }
  r.consumed.fetch_add(n, std::memory_order_relaxed);
  r.sum_out.fetch_add(sum, std::memory_order_relaxed);
  r.out_of_order.fetch_add(out_of_order, std::memory_order_relaxed);
  r.timeouts.fetch_add(timeouts, std::memory_order_relaxed);
  r.misses.fetch_add(misses, std::memory_order_relaxed);
}

// Runs `threads` producers (ids first_id..) or consumers, and joins them.
template <class Sem, class Mutex>
void run_role(ring<Sem, Mutex>& r, bool produce, unsigned first_id, unsigned threads, unsigned producers,
              unsigned long iterations) {
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, id = first_id + i] {
      if (produce) producer(r, id, iterations);
      else consumer(r, id, producers);
    });
  for (auto& t : ts) t.join();
}

// The exact checks of a phase; prints the phase's line and each mismatch.
template <class Sem, class Mutex>
bool judge(const char* phase, const ring<Sem, Mutex>& r, unsigned producers, unsigned long iterations, double secs) {
  const unsigned long long items = 1ull * producers * iterations;
  // Sum over producers p and seq 1..M of (p << 32 | seq), modulo 2^64 like the sums taken.
  const unsigned long long expected_sum =
      (1ull * producers * (producers - 1) / 2 * iterations << 32) + 1ull * producers * iterations * (iterations + 1) / 2;
  report(phase, items, secs,
         "produced=" + std::to_string(r.produced.load()) + " consumed=" + std::to_string(r.consumed.load()) +
             " timeouts=" + std::to_string(r.timeouts.load()) + " misses=" + std::to_string(r.misses.load()));
  bool ok = true;
  auto expect = [&](bool cond, const char* what) {
    if (!cond) std::fprintf(stderr, "%s: MISMATCH: %s\n", phase, what);
    ok = ok && cond;
  };
  expect(r.produced.load() == items, "items produced differ from producers x iterations");
  expect(r.consumed.load() == items, "items consumed differ from items produced");
  expect(r.sum_in.load() == expected_sum, "the sum of the items put differs from the closed form");
  expect(r.sum_out.load() == expected_sum, "the sum of the items taken differs from the sum put");
  expect(r.out_of_order.load() == 0, "a consumer saw a producer's items out of order (or a torn item)");
  expect(r.overfull.load() == 0, "the ring held more items than free slots allow");
  expect(r.fill == 0 && r.head == r.tail, "the ring is not empty at the end");
  expect(r.free_slots.value() == capacity && r.items.value() == 0, "a semaphore is not back to its initial count");
  expect(r.free_slots.waiting() == 0 && r.items.waiting() == 0, "a semaphore still counts a registered sleeper");
  return ok;
}

bool processes_phase(const options& o) {
  using shared_ring = ring<lockstep::interprocess_counting_semaphore<capacity>, lockstep::interprocess_mutex>;
  const unsigned producers = o.processes * o.threads;
  shared_object<shared_ring> r(2 * producers, 1ull * producers * o.iterations);
  stopwatch clock;
  std::vector<pid_t> children;
  for (unsigned p = 0; p < 2 * o.processes; ++p) {
    const bool produce = p < o.processes;
    const unsigned first_id = (produce ? p : p - o.processes) * o.threads;
    children.push_back(fork_child([&] {
      run_role(*r, produce, first_id, o.threads, producers, o.iterations);
      return 0;
    }));
  }
  const bool children_ok = wait_children(children, "processes");
  const bool ok = judge("processes", *r, producers, o.iterations, clock.seconds());
  return ok && children_ok;
}

bool threads_phase(const options& o) {
  ring<lockstep::counting_semaphore<capacity>, lockstep::mutex> r(2 * o.threads, 1ull * o.threads * o.iterations);
  stopwatch clock;
  std::thread producers([&] { run_role(r, true, 0, o.threads, o.threads, o.iterations); });
  run_role(r, false, 0, o.threads, o.threads, o.iterations);
  producers.join();
  return judge("threads", r, o.threads, o.iterations, clock.seconds());
}

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.threads = 2;
  defaults.processes = 2;
  defaults.iterations = 100000;
  const options o = parse_options(argc, argv, defaults);
  std::printf("semaphore stress: ring of %u, %u producer + %u consumer threads (x %u processes in the process phase),"
              " %lu items per producer, %g s\n",
              capacity, o.threads, o.threads, o.processes, o.iterations, o.seconds);
  const bool ok = repeat_rounds(o, [&] {
    // Both phases run even if the first failed, so one report shows every mismatch.
    const bool p = processes_phase(o);
    const bool t = threads_phase(o);
    return p && t;
  });
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
