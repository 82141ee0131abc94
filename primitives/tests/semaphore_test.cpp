// primitives/tests/semaphore_test.cpp: unit tests of <lockstep/semaphore.hpp>.
//
// The checklist is glibc's tst-sem*, LTP's sem_* and libc++'s thread.semaphore tests: try on
// zero, timeouts, past deadlines, a failed wait changing nothing, a post at the maximum, lost
// wake-ups with several waiters, release(n) waking n, release by a thread that never acquired
// and from a signal handler, process-shared use across fork; plus the futex syscalls each path
// makes (this target counts them: LOCKSTEP_COUNT_FUTEX_CALLS).
//
// Timing: a check asserts a lower bound on how long a timed call took (the kernel never times
// out early), never an upper bound. Where a test needs a thread asleep, it waits until the
// semaphore counts it as registered and the futex_wait counter says it went in.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include "death.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <latch>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>

using namespace std::chrono_literals;
using lockstep::binary_semaphore;
using lockstep::counting_semaphore;
using lockstep::interprocess_binary_semaphore;
using lockstep::interprocess_counting_semaphore;
namespace seam = lockstep::seam;
using lockstep::test::eventually;
using lockstep::test::futex_calls;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
using std::errc;

// The layout a shared mapping relies on, and std's shape.
static_assert(sizeof(interprocess_binary_semaphore) == 4 && alignof(interprocess_binary_semaphore) == 4);
static_assert(sizeof(counting_semaphore<1000>) == 4 && sizeof(interprocess_counting_semaphore<0x7fff'ffff>) == 4);
static_assert(std::is_standard_layout_v<interprocess_counting_semaphore<>>);
static_assert(!std::is_copy_constructible_v<binary_semaphore> && !std::is_copy_assignable_v<binary_semaphore>);
static_assert(!std::is_convertible_v<std::ptrdiff_t, binary_semaphore>, "the constructor is explicit");
static_assert(binary_semaphore::max() == 1 && counting_semaphore<5>::max() == 5);
static_assert(counting_semaphore<>::max() == lockstep::default_semaphore_max);
// Sleeper bits are what the count leaves: 31 for binary, 16 for the default, 1 at the top.
static_assert(binary_semaphore::max_waiting() == 0x7fff'ffff);
static_assert(counting_semaphore<>::max_waiting() == 0xffff);
static_assert(counting_semaphore<0x7fff'ffff>::max_waiting() == 1);
// A semaphore needs no run-time initialisation: it can be a constinit global.
constinit binary_semaphore global_semaphore{1};

namespace {

// Until `n` threads are registered in `s` and have entered futex_wait at least `n` times since
// `calls`: then they are asleep, or about to be (and then the kernel's compare catches any change).
template <class S>
bool asleep(const S& s, std::ptrdiff_t n, const futex_calls& calls) {
  return eventually([&] { return s.waiting() == n && calls.waits() >= std::uint64_t(n); });
}

double ms_since(steady::time_point t0) { return std::chrono::duration<double, std::milli>(steady::now() - t0).count(); }

// Threads that each acquire `s` once and then count themselves done.
template <class S>
class acquirers {
 public:
  acquirers(S& s, int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this, &s] {
        s.acquire();
        done_.fetch_add(1);
      });
  }
  ~acquirers() { join(); }
  int done() const { return done_.load(); }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  std::atomic<int> done_{0};
  std::vector<std::thread> threads_;
};

}  // namespace

// ----------------------------------------------------------------------------------------------
TEST_SUITE("basics") {
  TEST_CASE("acquire, try_acquire and release count tokens exactly") {
    counting_semaphore<5> s{3};
    CHECK(s.value() == 3);
    s.acquire();
    CHECK(s.try_acquire());
    CHECK(s.value() == 1);
    s.release(4);
    CHECK(s.value() == 5);
    for (int i = 0; i < 5; ++i) CHECK(s.try_acquire());
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);
  }

  TEST_CASE("try_acquire on zero fails, never blocks, and changes nothing") {
    binary_semaphore s{0};
    futex_calls calls;
    CHECK_FALSE(s.try_acquire());
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);
    CHECK(calls.waits() == 0);
  }

  TEST_CASE("a constinit global starts with its tokens") {
    CHECK(global_semaphore.try_acquire());
    CHECK_FALSE(global_semaphore.try_acquire());
    global_semaphore.release();
  }

  TEST_CASE("release(0) does nothing") {
    binary_semaphore s{0};
    s.release(0);
    CHECK(s.release_checked(0) == std::error_code{});
    CHECK(s.value() == 0);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("bad input") {
  TEST_CASE("a negative or oversize initial count throws std::invalid_argument") {
    CHECK_THROWS_AS(binary_semaphore{-1}, std::invalid_argument);
    CHECK_THROWS_AS(binary_semaphore{2}, std::invalid_argument);
    CHECK_THROWS_AS(counting_semaphore<10>{11}, std::invalid_argument);
    CHECK_NOTHROW(counting_semaphore<10>{10});
    CHECK_NOTHROW(counting_semaphore<10>{0});
  }

  TEST_CASE("a post at the maximum fails with EOVERFLOW and leaves the count unchanged") {
    binary_semaphore b{1};
    CHECK(b.release_checked() == errc::value_too_large);
    CHECK(b.value() == 1);
    counting_semaphore<3> c{2};
    CHECK(c.release_checked(2) == errc::value_too_large);  // 2 + 2 > 3: none of it happens
    CHECK(c.value() == 2);
    CHECK(c.release_checked(1) == std::error_code{});
    CHECK(c.value() == 3);
    CHECK(c.release_checked(1) == errc::value_too_large);
    counting_semaphore<0x7fff'ffff> big{0x7fff'ffff};
    CHECK(big.release_checked(1) == errc::value_too_large);  // the count field is full, too
    CHECK(big.value() == 0x7fff'ffff);
    CHECK(big.waiting() == 0);  // no carry into the sleeper bits
  }

  TEST_CASE("a negative update is refused with EINVAL and changes nothing") {
    counting_semaphore<3> c{2};
    CHECK(c.release_checked(-1) == errc::invalid_argument);
    CHECK(c.value() == 2);
  }

  TEST_CASE("release() past max() prints why on stderr and aborts") {
    const auto d = lockstep::test::run_in_child([] {
      binary_semaphore s{1};
      s.release();
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.killed_by(SIGABRT));
    CHECK(d.stderr_text.find("lockstep::counting_semaphore::release(update) would exceed max()") != std::string::npos);
  }

  TEST_CASE("release() with a negative update aborts too") {
    const auto d = lockstep::test::run_in_child([] {
      counting_semaphore<3> s{0};
      s.release(-2);
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.killed_by(SIGABRT));
    CHECK(d.stderr_text.find("update < 0") != std::string::npos);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("futex syscalls") {
  TEST_CASE("uncontended acquire, try_acquire, timed acquire and release make no futex syscall") {
    counting_semaphore<> s{0};
    futex_calls calls;
    for (int i = 0; i < 1000; ++i) {
      s.release();
      s.acquire();
      s.release(3);
      CHECK(s.try_acquire());
      CHECK(s.try_acquire_for(1s));
      CHECK(s.try_acquire_until(steady::now() + 1s));
    }
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }

  TEST_CASE("a release wakes only when a thread sleeps: one wake for one sleeper") {
    binary_semaphore s{0};
    futex_calls calls;
    acquirers a(s, 1);
    REQUIRE(asleep(s, 1, calls));
    s.release();
    a.join();
    CHECK(calls.wakes() == 1);
    CHECK(s.waiting() == 0);  // the woken thread deregistered as it took its token
    s.release();              // nobody sleeps now: no syscall
    CHECK(calls.wakes() == 1);
  }

  TEST_CASE("a waiter yields its CPU a bounded number of times: every yield_every-th spin step, max_yields once others sleep") {
    // Nobody registered: the first waiter spins max_spins steps, every yield_every-th a yield.
    // With it asleep, the second yields (seam::yield_cpu) instead of spinning, max_yields times.
    counting_semaphore<> s{0};
    futex_calls calls;
    auto yields0 = seam::yield_calls.load();
    acquirers first(s, 1);
    REQUIRE(asleep(s, 1, calls));
    CHECK(seam::yield_calls.load() - yields0 == std::uint64_t(seam::max_spins / seam::yield_every));
    yields0 = seam::yield_calls.load();
    acquirers second(s, 1);
    REQUIRE(asleep(s, 2, calls));
    CHECK(seam::yield_calls.load() - yields0 == std::uint64_t(seam::max_yields));
    s.release(2);
  }

  TEST_CASE("the release's wake may hit memory the woken waiter already unmapped: harmless (I4)") {
    // The window between a release's CAS and its futex_wake cannot be hit on demand, so make the
    // wake it ends with directly: on a process-shared word whose mapping is gone (EFAULT).
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    auto* word = ::new (p) seam::futex_word(0);
    REQUIRE(::munmap(p, 4096) == 0);
    CHECK(seam::futex_wake(*word, 1, seam::scope::process_shared) == 0);
    CHECK(seam::futex_wake(*word, 1, seam::scope::process_private) == 0);
  }

  TEST_CASE("one syscall wakes what is owed: release(n) for n sleepers, and a burst of releases for one (I3)") {
    // n sleepers, then `release`: every sleeper finishes after exactly one futex_wake. In the
    // burst (a producer filling a buffer while its consumer wakes up) the first release finds
    // one registered thread and no token and wakes it; the 63 after it find a token for every
    // registered thread already (sleepers <= count): no wake is owed.
    const auto one_wake = [](int n, auto release) {
      counting_semaphore<> s{0};
      futex_calls calls;
      acquirers a(s, n);
      REQUIRE(asleep(s, n, calls));
      release(s);
      a.join();
      CHECK(a.done() == n);
      CHECK(calls.wakes() == 1);
      CHECK(s.waiting() == 0);
      return s.value();
    };
    CHECK(one_wake(4, [](auto& s) { s.release(4); }) == 0);
    CHECK(one_wake(1, [](auto& s) {
            for (int i = 0; i < 64; ++i) s.release();
          }) == 63);
  }

  TEST_CASE("release(n) with more sleepers than n wakes n; the rest sleep on") {
    counting_semaphore<> s{0};
    futex_calls calls;
    acquirers a(s, 5);
    REQUIRE(asleep(s, 5, calls));
    s.release(2);
    REQUIRE(eventually([&] { return a.done() == 2; }));
    std::this_thread::sleep_for(20ms);
    CHECK(a.done() == 2);  // no token was made up
    CHECK(s.waiting() == 3);
    s.release(3);
    a.join();
    CHECK(a.done() == 5);
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("timeouts") {
  TEST_CASE("try_acquire_for and try_acquire_until time out on zero, no earlier than asked, and change nothing") {
    counting_semaphore<> s{0};
    auto t0 = steady::now();
    CHECK_FALSE(s.try_acquire_for(30ms));
    CHECK(ms_since(t0) >= 30.0);
    t0 = steady::now();
    CHECK_FALSE(s.try_acquire_until(steady::now() + 30ms));
    CHECK(ms_since(t0) >= 30.0);
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);  // a timed-out waiter leaves no trace (I2)
    s.release();              // and the semaphore works as before
    CHECK(s.try_acquire());
  }

  TEST_CASE("a zero or negative timeout, or a past deadline, neither spins nor sleeps but takes a token that is there") {
    counting_semaphore<> s{4};
    futex_calls calls;
    lockstep::test::spin_steps spins;
    CHECK(s.try_acquire_for(0s));
    CHECK(s.try_acquire_for(-5s));
    CHECK(s.try_acquire_until(steady::now() - 1h));
    CHECK(s.try_acquire_until(sys::now() - 1h));
    CHECK_FALSE(s.try_acquire_for(0s));
    CHECK_FALSE(s.try_acquire_until(steady::time_point::min()));
    CHECK_FALSE(s.try_acquire_until(sys::now() - 1s));
    CHECK_FALSE(s.try_acquire_for(-1ns));
    CHECK(spins.count() == 0);  // one attempt each (deadline.hpp D1)
    CHECK(calls.waits() == 0);
    CHECK(s.waiting() == 0);
  }

  TEST_CASE("a system_clock deadline times out by that clock, and takes a token released in time") {
    binary_semaphore s{0};
    auto t0 = steady::now();
    CHECK_FALSE(s.try_acquire_until(sys::now() + 30ms));
    CHECK(ms_since(t0) >= 25.0);  // system_clock may have been stepped; steady_clock only bounds it loosely
    std::thread t([&] {
      std::this_thread::sleep_for(20ms);
      s.release();
    });
    CHECK(s.try_acquire_until(sys::now() + 10s));
    t.join();
  }

  TEST_CASE("huge timeouts mean 'no deadline', not an overflow into the past") {
    binary_semaphore s{0};
    std::thread t([&] {
      std::this_thread::sleep_for(20ms);
      s.release();
    });
    CHECK(s.try_acquire_for(std::chrono::hours::max()));
    t.join();
    t = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      s.release();
    });
    CHECK(s.try_acquire_until(steady::time_point::max()));
    t.join();
  }

  TEST_CASE("timed waiters racing releases: every token is taken or still counted, no trace left") {
    constexpr int threads = 4, rounds = 300;
    counting_semaphore<> s{0};
    std::atomic<int> taken{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i)
      ts.emplace_back([&] {
        for (int r = 0; r < rounds; ++r)
          if (s.try_acquire_for(std::chrono::microseconds(50 + 37 * r % 200))) taken.fetch_add(1);
      });
    int released = 0;
    for (int r = 0; r < threads * rounds / 2; ++r) {
      s.release();
      ++released;
      if (r % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (auto& t : ts) t.join();
    CHECK(taken.load() + s.value() == released);  // tokens conserved
    CHECK(s.waiting() == 0);                      // every timed-out waiter deregistered
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("wake-ups") {
  TEST_CASE("no lost wake-up: several sleepers, releases one at a time, back to back") {
    // The libstdc++/libc++ bug (GCC PR 104928, LLVM #46357): a release that finds count > 0
    // skips the wake although a sleeper may still wait. Here every sleeper must finish.
    for (int round = 0; round < 50; ++round) {
      counting_semaphore<> s{0};
      futex_calls calls;
      acquirers a(s, 3);
      REQUIRE(asleep(s, 3, calls));
      s.release();
      s.release();
      s.release();
      a.join();
      CHECK(a.done() == 3);
      CHECK(s.value() == 0);
    }
  }

  TEST_CASE("a thread that never acquired may release (a semaphore has no owner); a mutex refuses") {
    binary_semaphore s{0};
    std::thread stranger([&] { CHECK(s.release_checked() == std::error_code{}); });
    stranger.join();
    CHECK(s.try_acquire());

    // The contrast: a binary semaphore is not a mutex. Unlock by a non-owner is refused.
    lockstep::mutex m;
    m.lock();
    std::thread intruder([&] { CHECK(m.unlock_checked() == errc::operation_not_permitted); });
    intruder.join();
    CHECK(m.held_by_caller());
    m.unlock();
  }

  TEST_CASE("binary semaphore as a lock handed between threads: acquire in one, release in another") {
    binary_semaphore s{1};
    s.acquire();
    std::thread t([&] { s.release(); });
    s.acquire();  // released by t, which never acquired
    t.join();
    CHECK(s.value() == 0);
  }

  TEST_CASE("a signal handler releases while the main thread sleeps in acquire") {
    static binary_semaphore s{0};
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = [](int) { s.release(); };  // async-signal-safe: one CAS and maybe futex_wake
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);  // no SA_RESTART: futex_wait returns EINTR
    futex_calls calls;
    const pthread_t self = ::pthread_self();
    std::thread poker([&] {
      if (asleep(s, 1, calls)) ::pthread_kill(self, SIGUSR1);
    });
    s.acquire();  // the handler runs on this thread, inside this very call
    poker.join();
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);
    ::sigaction(SIGUSR1, &old, nullptr);
  }

  TEST_CASE("signals that interrupt a sleeper are not tokens: it sleeps on until a release") {
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
    binary_semaphore s{0};
    futex_calls calls;
    std::atomic<bool> got{false};
    std::thread sleeper([&] {
      s.acquire();
      got = true;
    });
    for (std::uint64_t k = 1; k <= 5; ++k) {
      REQUIRE(eventually([&] { return s.waiting() == 1 && calls.waits() >= k; }));  // asleep (again)
      ::pthread_kill(sleeper.native_handle(), SIGUSR1);
    }
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(got.load());  // an interruption is not a token
    CHECK(s.waiting() == 1);  // still registered: it went back to sleep
    s.release();
    sleeper.join();
    CHECK(got.load());
    CHECK(s.waiting() == 0);
    ::sigaction(SIGUSR1, &old, nullptr);
  }

  TEST_CASE("saturated sleeper field (Max = 2^31 - 1 leaves one bit): sticky, and still no lost wake-up") {
    counting_semaphore<0x7fff'ffff> s{0};
    futex_calls calls;
    acquirers a(s, 3);
    REQUIRE(eventually([&] { return s.waiting() == 1 && calls.waits() >= 3; }));
    s.release();
    s.release();
    s.release();
    a.join();
    CHECK(a.done() == 3);
    CHECK(s.waiting() == s.max_waiting());  // stuck at SAT: nobody can tell who it still counts
    const auto wakes = calls.wakes();
    s.release();
    CHECK(calls.wakes() == wakes + 1);  // the documented cost: every release wakes from now on
  }

  TEST_CASE("producers and consumers through a bounded buffer: every item exactly once") {
    constexpr int capacity = 8, per_producer = 20000, producers = 2, consumers = 2;
    counting_semaphore<capacity> free_slots{capacity};
    counting_semaphore<capacity> items{0};
    lockstep::mutex m;
    long buffer[capacity];
    int head = 0, tail = 0;
    std::atomic<long> sum{0}, count{0};
    std::vector<std::thread> ts;
    for (int p = 0; p < producers; ++p)
      ts.emplace_back([&, p] {
        for (int i = 1; i <= per_producer; ++i) {
          free_slots.acquire();
          {
            std::lock_guard g(m);
            buffer[tail] = long(p) * per_producer + i;
            tail = (tail + 1) % capacity;
          }
          items.release();
        }
      });
    for (int c = 0; c < consumers; ++c)
      ts.emplace_back([&] {
        for (int i = 0; i < producers * per_producer / consumers; ++i) {
          items.acquire();
          long v;
          {
            std::lock_guard g(m);
            v = buffer[head];
            head = (head + 1) % capacity;
          }
          free_slots.release();
          sum.fetch_add(v);
          count.fetch_add(1);
        }
      });
    for (auto& t : ts) t.join();
    const long n = long(producers) * per_producer;
    CHECK(count.load() == n);
    CHECK(sum.load() == n * (n + 1) / 2);
    CHECK(items.value() == 0);
    CHECK(free_slots.value() == capacity);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("processes") {
  TEST_CASE("interprocess semaphores in a MAP_SHARED mapping: ping-pong across fork") {
    struct shared {
      interprocess_binary_semaphore ping{0};
      interprocess_binary_semaphore pong{0};
      long ball = 0;
    };
    lockstep::test::shared_object<shared> s;
    constexpr int rounds = 2000;
    const pid_t child = lockstep::test::fork_child([&] {
      for (int i = 0; i < rounds; ++i) {
        s->ping.acquire();
        ++s->ball;  // ordered by the semaphores, as in the parent
        s->pong.release();
      }
      return 0;
    });
    for (int i = 0; i < rounds; ++i) {
      s->ping.release();
      s->pong.acquire();
    }
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(s->ball == rounds);
    CHECK(s->ping.waiting() == 0);
    CHECK(s->pong.waiting() == 0);
  }

  TEST_CASE("a child's timed-out wait leaves the shared semaphore as it was; a parent's release reaches a sleeping child") {
    struct shared {
      interprocess_counting_semaphore<> sem{0};
      std::atomic<int> phase{0};
    };
    lockstep::test::shared_object<shared> s;
    const pid_t child = lockstep::test::fork_child([&] {
      if (s->sem.try_acquire_for(20ms)) return 1;
      if (s->sem.waiting() != 0) return 2;
      s->phase = 1;
      s->sem.acquire();  // sleeps until the parent releases
      return s->sem.value() == 0 ? 0 : 3;
    });
    REQUIRE(eventually([&] { return s->phase.load() == 1 && s->sem.waiting() == 1; }));
    s->sem.release();
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(s->sem.value() == 0);
    CHECK(s->sem.waiting() == 0);
  }
}
