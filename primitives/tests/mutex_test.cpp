// primitives/tests/mutex_test.cpp: unit tests of <lockstep/mutex.hpp>.
//
// Every call of the contract, its errors and its timeouts; the futex syscalls each path makes
// (this target counts them: LOCKSTEP_COUNT_FUTEX_CALLS); the standard library's lock adaptors;
// and the process-shared mutex across fork. glibc's own mutex tests were the checklist.
//
// Timing: a check asserts a lower bound on how long a timed call took (the kernel never times
// out early), never an upper bound, which a loaded machine could break. Where a test needs a
// thread to be asleep, it waits until the futex_wait counter says so instead of sleeping.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/mutex.hpp>

#include "death.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <latch>
#include <mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <pthread.h>
#include <sched.h>

using namespace std::chrono_literals;
using lockstep::interprocess_mutex;
using lockstep::mutex;
namespace seam = lockstep::seam;
using lockstep::test::eventually;
using lockstep::test::futex_calls;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
using std::errc;

// A mutex is one word (an interprocess_mutex adds glibc's robust-list node) and needs no
// run-time initialisation: it can be a constinit global.
static_assert(sizeof(interprocess_mutex) == 40 && alignof(interprocess_mutex) == 8);
static_assert(sizeof(mutex) == 4);
static_assert(!std::is_copy_constructible_v<mutex> && !std::is_copy_assignable_v<mutex>);
static_assert(std::is_standard_layout_v<interprocess_mutex>);
constinit mutex global_mutex;

namespace {

// Waits until some thread has entered futex_wait since `calls` was made: it set WAITERS first.
bool someone_sleeps(const futex_calls& calls) {
  return eventually([&] { return calls.waits() > 0; });
}

// Another thread locks `m` on construction (the constructor returns once it holds it) and
// unlocks it on release(), release_after(d) (d later, without blocking the caller) or
// destruction. It records whether it still owned the mutex just before its unlock.
template <class M>
class held_elsewhere {
 public:
  explicit held_elsewhere(M& m)
      : m_(m), thread_([this] {
          m_.lock();
          locked_.count_down();
          go_.wait();
          std::this_thread::sleep_for(delay_);
          still_owned_ = m_.held_by_caller();
          m_.unlock();
        }) {
    locked_.wait();
  }
  held_elsewhere(const held_elsewhere&) = delete;
  held_elsewhere& operator=(const held_elsewhere&) = delete;
  ~held_elsewhere() { release(); }

  void release_after(steady::duration d) {
    if (signalled_) return;
    signalled_ = true;
    delay_ = d;
    go_.count_down();
  }
  void release() {
    release_after(0s);
    if (thread_.joinable()) thread_.join();
  }
  bool still_owned_at_release() const { return still_owned_; }  // after release()

 private:
  M& m_;
  std::latch locked_{1};
  std::latch go_{1};
  steady::duration delay_{};
  bool signalled_ = false;
  bool still_owned_ = false;
  std::thread thread_;  // last: it starts after every member it uses exists
};

// Installs a signal handler for the test's duration. No SA_RESTART: a futex_wait that the
// signal interrupts returns EINTR to the algorithm.
class signal_handler {
 public:
  signal_handler(int sig, void (*fn)(int)) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(sig, &sa, &old_) == 0);
  }
  signal_handler(const signal_handler&) = delete;
  signal_handler& operator=(const signal_handler&) = delete;
  ~signal_handler() { ::sigaction(sig_, &old_, nullptr); }

 private:
  int sig_;
  struct sigaction old_ {};
};

// Pins the calling thread to one CPU it may run on, for the object's lifetime; join() pins
// another thread to the same CPU, idle_priority() makes that thread SCHED_IDLE (it never
// preempts the pinned thread). Each returns false where the system refuses.
class pinned_to_one_cpu {
 public:
  pinned_to_one_cpu() {
    ok_ = ::pthread_getaffinity_np(::pthread_self(), sizeof old_, &old_) == 0;
    for (int c = 0; ok_ && c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &old_)) {
        CPU_ZERO(&one_);
        CPU_SET(c, &one_);
        ok_ = ::pthread_setaffinity_np(::pthread_self(), sizeof one_, &one_) == 0;
        return;
      }
  }
  pinned_to_one_cpu(const pinned_to_one_cpu&) = delete;
  pinned_to_one_cpu& operator=(const pinned_to_one_cpu&) = delete;
  ~pinned_to_one_cpu() {
    if (ok_) ::pthread_setaffinity_np(::pthread_self(), sizeof old_, &old_);
  }
  bool join() const { return ok_ && ::pthread_setaffinity_np(::pthread_self(), sizeof one_, &one_) == 0; }
  static bool idle_priority() {
    const sched_param p{};
    return ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &p) == 0;
  }

 private:
  cpu_set_t old_{};
  cpu_set_t one_{};
  bool ok_ = false;
};

// Until when a SIGUSR1 handler holds its thread (see the I4 race test).
std::atomic<steady::rep> hold_b_until{0};

double ms_since(steady::time_point t0) { return std::chrono::duration<double, std::milli>(steady::now() - t0).count(); }

}  // namespace

// ----------------------------------------------------------------------------------------------
TEST_SUITE("basics") {
  TEST_CASE("lock, unlock and try_lock on a free mutex") {
    mutex m;
    CHECK_FALSE(m.held_by_caller());
    m.lock();
    CHECK(m.held_by_caller());
    m.unlock();
    CHECK_FALSE(m.held_by_caller());
    REQUIRE(m.try_lock());
    CHECK(m.held_by_caller());
    m.unlock();
    CHECK_FALSE(m.held_by_caller());
    global_mutex.lock();  // constinit: usable before main and without construction order
    CHECK(global_mutex.held_by_caller());
    global_mutex.unlock();
  }

  TEST_CASE("try_lock fails while another thread holds the mutex, and while the caller does") {
    mutex m;
    {
      held_elsewhere h(m);
      CHECK_FALSE(m.try_lock());
      CHECK_FALSE(m.held_by_caller());
    }
    REQUIRE(m.try_lock());
    CHECK_FALSE(m.try_lock());  // never recursive
    CHECK(m.held_by_caller());
    m.unlock();
    CHECK(m.try_lock());  // the failed attempt changed nothing
    m.unlock();
  }

  TEST_CASE("the layout a shared mapping relies on: the word, then glibc's robust-list node") {
    CHECK(sizeof(interprocess_mutex) == 40);
    CHECK(alignof(interprocess_mutex) == 8);
    CHECK(sizeof(mutex) == 4);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("futex syscalls") {
  TEST_CASE("uncontended lock, try_lock, timed lock and unlock make no futex syscall") {
    mutex m;
    interprocess_mutex pm;
    futex_calls calls;
    for (int i = 0; i < 1000; ++i) {
      m.lock();
      m.unlock();
      REQUIRE(m.try_lock());
      m.unlock();
      REQUIRE(m.try_lock_for(1s));
      m.unlock();
      REQUIRE_FALSE(m.lock_checked(seam::now() + 1s));
      REQUIRE_FALSE(m.unlock_checked());
      pm.lock();
      pm.unlock();
    }
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }

  TEST_CASE("a contender polls a bounded number of times, backing off, then sleeps (S1)") {
    // Held elsewhere for longer than any polling: the contender pauses 1 + 2 + 4 + 8 times,
    // yields backoff_yields times, then sleeps. A second contender finds WAITERS set: it sleeps at
    // once, without a pause or a yield.
    mutex m;
    held_elsewhere h(m);
    futex_calls calls;
    lockstep::test::spin_steps spins;
    const auto yields0 = seam::yield_calls.load();
    std::thread first([&] {
      m.lock();
      m.unlock();
    });
    REQUIRE(someone_sleeps(calls));
    CHECK(spins.count() == 15);
    CHECK(seam::yield_calls.load() - yields0 == std::uint64_t(seam::backoff_yields));
    lockstep::test::spin_steps spins2;
    const auto yields2 = seam::yield_calls.load();
    std::thread second([&] {
      m.lock();
      m.unlock();
    });
    CHECK(eventually([&] { return calls.waits() >= 2; }));
    CHECK(spins2.count() == 0);
    CHECK(seam::yield_calls.load() == yields2);
    h.release();
    first.join();
    second.join();
  }

  TEST_CASE("failed try_locks and a hand-off with nobody asleep make no futex syscall") {
    mutex m;
    futex_calls calls;
    {
      held_elsewhere h(m);
      for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(m.try_lock());
    }  // its unlock finds nobody asleep: no wake
    REQUIRE(m.try_lock());
    m.unlock();
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }

  TEST_CASE("a contended hand-off wakes the sleeper once, and the sleeper's unlock wakes once more (I4)") {
    mutex m;
    held_elsewhere h(m);
    futex_calls calls;
    std::latch got{1}, go{1};
    std::thread waiter([&] {
      m.lock();
      got.count_down();
      go.wait();
      m.unlock();
    });
    REQUIRE(someone_sleeps(calls));  // the waiter set WAITERS and sleeps
    CHECK(calls.wakes() == 0);
    h.release();  // the holder's unlock sees WAITERS: store 0, wake one
    got.wait();
    CHECK(calls.wakes() == 1);
    // The woken thread took the lock as me|WAITERS (another sleeper could exist), so its own
    // unlock wakes again, a spare wake here since nobody else waits.
    go.count_down();
    waiter.join();
    CHECK(calls.wakes() == 2);
    CHECK(h.still_owned_at_release());
    futex_calls after;
    m.lock();  // and the word is back to plain 0: fast paths again
    m.unlock();
    CHECK(after.waits() + after.wakes() == 0);
  }

  TEST_CASE("a sleeper interrupted by signals goes back to sleep and still gets the lock") {
    signal_handler on_usr1(SIGUSR1, [](int) {});
    mutex m;
    held_elsewhere h(m);
    futex_calls calls;
    std::atomic<bool> got{false};
    std::thread waiter([&] {
      m.lock();
      got = true;
      m.unlock();
    });
    for (std::uint64_t k = 1; k <= 5; ++k) {
      CHECK(eventually([&] { return calls.waits() >= k; }));  // asleep (again)
      ::pthread_kill(waiter.native_handle(), SIGUSR1);
    }
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(got.load());  // an interruption is not a hand-off
    h.release();
    waiter.join();
    CHECK(got.load());
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("ownership") {
  TEST_CASE("unlock_checked by a non-owner returns EPERM and changes nothing") {
    mutex m;
    held_elsewhere h(m);
    CHECK(m.unlock_checked() == errc::operation_not_permitted);
    CHECK(m.unlock_checked() == errc::operation_not_permitted);
    CHECK_FALSE(m.try_lock());  // still held
    CHECK(m.lock_checked(seam::now() + 10ms) == errc::timed_out);
    h.release();
    CHECK(h.still_owned_at_release());  // the owner still owned it, and its unlock worked
    CHECK(m.try_lock());
    m.unlock();
  }

  TEST_CASE("unlock_checked of a free mutex returns EPERM and leaves it free") {
    mutex m;
    CHECK(m.unlock_checked() == errc::operation_not_permitted);
    CHECK(m.try_lock());
    CHECK_FALSE(m.unlock_checked());
    CHECK(m.unlock_checked() == errc::operation_not_permitted);  // a second unlock is not the owner's
  }

  TEST_CASE("relocking by the owner is refused instead of deadlocking") {
    mutex m;
    m.lock();
    futex_calls calls;
    CHECK(m.lock_checked() == errc::resource_deadlock_would_occur);
    CHECK(m.lock_checked(seam::now() + 1h) == errc::resource_deadlock_would_occur);
    auto throws_edeadlk = [](auto&& op) {
      try {
        op();
      } catch (const std::system_error& e) {
        return e.code() == std::errc::resource_deadlock_would_occur;
      }
      return false;
    };
    CHECK(throws_edeadlk([&] { m.lock(); }));
    CHECK(throws_edeadlk([&] { (void)m.try_lock_for(10ms); }));
    CHECK(throws_edeadlk([&] { (void)m.try_lock_for(0s); }));
    CHECK(throws_edeadlk([&] { (void)m.try_lock_until(steady::now() + 10ms); }));
    CHECK(throws_edeadlk([&] { (void)m.try_lock_until(sys::now() + 10ms); }));
    CHECK_FALSE(m.try_lock());
    CHECK(calls.waits() == 0);  // refused up front, never slept
    CHECK(m.held_by_caller());
    m.unlock();  // one unlock frees it: the refusals counted nothing
    CHECK_FALSE(m.held_by_caller());
    CHECK(m.unlock_checked() == errc::operation_not_permitted);
  }

  TEST_CASE("unlock() by a non-owner prints why on stderr and aborts") {
    const auto d = lockstep::test::run_in_child([] {
      mutex m;
      held_elsewhere h(m);
      m.unlock();  // not ours: must abort here
      ::_exit(0);  // it returned: leave before h's own unlock could abort for another reason
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.killed_by(SIGABRT));
    CHECK(d.stderr_text.find("lockstep::mutex::unlock() called by a thread that does not own the mutex") !=
          std::string::npos);
  }

  TEST_CASE("unlock() of a free mutex aborts too") {
    const auto d = lockstep::test::run_in_child([] {
      mutex m;
      m.unlock();
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.killed_by(SIGABRT));
    CHECK(d.stderr_text.find("does not own the mutex") != std::string::npos);
  }

  TEST_CASE("held_by_caller is exact: only the owning thread sees it") {
    mutex m;
    m.lock();
    bool other_sees = true;
    std::thread([&] { other_sees = m.held_by_caller(); }).join();
    CHECK_FALSE(other_sees);
    CHECK(m.held_by_caller());
    m.unlock();
    CHECK_FALSE(m.held_by_caller());
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("timeouts") {
  TEST_CASE("try_lock_for and try_lock_until time out on a held mutex, no earlier than asked") {
    mutex m;
    held_elsewhere h(m);
    auto t0 = steady::now();
    CHECK_FALSE(m.try_lock_for(50ms));
    CHECK(ms_since(t0) >= 50.0);
    t0 = steady::now();
    CHECK_FALSE(m.try_lock_until(t0 + 50ms));
    CHECK(steady::now() >= t0 + 50ms);
    CHECK_FALSE(m.held_by_caller());
  }

  TEST_CASE("lock_checked with a deadline returns timed_out and leaves the caller without the lock") {
    mutex m;
    held_elsewhere h(m);
    const auto t0 = steady::now();
    CHECK(m.lock_checked(seam::now() + 30ms) == errc::timed_out);
    CHECK(ms_since(t0) >= 30.0);
    CHECK_FALSE(m.held_by_caller());
    h.release();
    CHECK(h.still_owned_at_release());
  }

  TEST_CASE("a zero or negative timeout, or a past deadline, neither spins nor sleeps but takes a free mutex") {
    mutex m;
    auto takes = [&](bool got) {
      const bool held = got && m.held_by_caller();
      if (got) m.unlock();
      return held;
    };
    futex_calls calls;
    lockstep::test::spin_steps spins;
    CHECK(takes(m.try_lock_for(0s)));
    CHECK(takes(m.try_lock_for(-1s)));
    CHECK(takes(m.try_lock_for(std::chrono::hours::min())));
    CHECK(takes(m.try_lock_until(steady::now() - 1h)));
    CHECK(takes(m.try_lock_until(steady::time_point::min())));
    CHECK(takes(m.try_lock_until(sys::now() - 1h)));
    CHECK(takes(!m.lock_checked(seam::now() - 1s)));
    CHECK(takes(!m.lock_checked(seam::deadline{})));
    {
      held_elsewhere h(m);
      CHECK_FALSE(m.try_lock_for(0s));
      CHECK_FALSE(m.try_lock_for(-1h));
      CHECK_FALSE(m.try_lock_until(steady::now() - 1s));
      CHECK_FALSE(m.try_lock_until(steady::time_point::min()));
      CHECK_FALSE(m.try_lock_until(sys::now() - 1s));
      CHECK(m.lock_checked(seam::now() - 1s) == errc::timed_out);
    }
    // One attempt each (deadline.hpp D1): no spin step, no WAITERS bit, no syscall at all.
    CHECK(spins.count() == 0);
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }

  TEST_CASE("a system_clock deadline times out by that clock, and takes a mutex freed in time") {
    mutex m;
    {
      held_elsewhere h(m);
      const auto t = sys::now() + 50ms;
      CHECK_FALSE(m.try_lock_until(t));
      CHECK(sys::now() >= t);  // re-checked on its own clock: never early by it
    }
    held_elsewhere h(m);
    h.release_after(20ms);
    CHECK(m.try_lock_until(sys::now() + 1h));
    m.unlock();
  }

  TEST_CASE("huge timeouts mean 'no deadline', not an overflow into the past") {
    mutex m;
    auto freed_soon = [&](auto attempt) {
      held_elsewhere h(m);
      h.release_after(20ms);
      const bool got = attempt();
      if (got) m.unlock();
      return got;
    };
    CHECK(freed_soon([&] { return m.try_lock_for(std::chrono::hours::max()); }));
    CHECK(freed_soon([&] { return m.try_lock_for(std::chrono::nanoseconds::max()); }));
    CHECK(freed_soon([&] { return m.try_lock_for(std::chrono::duration<double>(1e300)); }));
    CHECK(freed_soon([&] { return m.try_lock_until(steady::time_point::max()); }));
    CHECK(freed_soon([&] { return m.try_lock_until(sys::time_point::max()); }));
    CHECK(freed_soon([&] { return m.try_lock_until(steady::now() + std::chrono::hours(24 * 365 * 200)); }));
    CHECK(freed_soon([&] { return !m.lock_checked(seam::no_deadline); }));
  }

  TEST_CASE("a timed-out waiter leaves no trace beyond a benign WAITERS bit") {
    mutex m;
    held_elsewhere h(m);
    futex_calls calls;
    CHECK_FALSE(m.try_lock_for(30ms));
    const bool slept = calls.waits() > 0;  // it set WAITERS, unless 30 ms passed while it spun
    futex_calls unlock_calls;
    h.release();
    // The holder's unlock finds the WAITERS bit the timed-out thread left and makes one spare
    // wake; that unlock clears the word, so the next lock and unlock are fast paths again.
    CHECK(unlock_calls.wakes() == (slept ? 1u : 0u));
    futex_calls after;
    m.lock();
    m.unlock();
    CHECK(after.waits() + after.wakes() == 0);
  }

  // The race behind I4's second sentence. Sleepers B (timed) and then A; the unlock wakes B
  // (futex wakes are FIFO among equal priorities). Between B's wake-up and its next look at the
  // word, the holder takes the lock again (as plain tid: nobody announced since) and B's
  // deadline passes. B consumed the only wake A had coming: if it simply left, the holder's next
  // unlock would take the fast path and A would sleep forever. To open that window every time,
  // B shares the holder's CPU at SCHED_IDLE (so its wake-up cannot preempt the holder, which
  // relocks first), and a signal sent before B runs holds B in its handler until its deadline
  // has passed. (Where pinning is refused, or under TSan, which defers the handler, the window
  // may be missed and B may take the lock; the check on A holds either way.)
  TEST_CASE("a waiter woken just before its deadline does not strand the sleeper behind it (I4)") {
    signal_handler on_usr1(SIGUSR1, [](int) {
      const timespec ms{0, 1'000'000};
      while (steady::now().time_since_epoch().count() < hold_b_until.load()) ::nanosleep(&ms, nullptr);
    });
    pinned_to_one_cpu pin;
    mutex m;
    m.lock();
    futex_calls calls;
    const auto b_deadline = steady::now() + 300ms;
    hold_b_until = b_deadline.time_since_epoch().count();
    bool b_got = true, a_got = false, b_idle = false;
    std::thread b([&] {
      b_idle = pin.join() && pin.idle_priority();
      b_got = m.try_lock_until(b_deadline);
      if (b_got) m.unlock();
    });
    REQUIRE(eventually([&] { return calls.waits() >= 1; }));
    std::thread a([&] {
      a_got = m.try_lock_for(10s);  // with the bug, A sleeps out these 10 s
      if (a_got) m.unlock();
    });
    REQUIRE(eventually([&] { return calls.waits() >= 2; }));
    m.unlock();  // wakes B, which cannot run yet
    ::pthread_kill(b.native_handle(), SIGUSR1);
    m.lock();  // before B looks again: the word is plain tid
    b.join();
    m.unlock();  // must wake A: B left WAITERS set
    a.join();
    CHECK(a_got);
    // Not a failure, but the test proved less than it should: say so.
    if (b_got) MESSAGE("B took the lock: the race window was missed (B at idle priority on the holder's CPU: ", b_idle, ")");
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("std interop") {
  TEST_CASE("std::lock_guard") {
    mutex m;
    {
      std::lock_guard g(m);
      CHECK(m.held_by_caller());
    }
    CHECK_FALSE(m.held_by_caller());
  }

  TEST_CASE("std::unique_lock: plain, try_to_lock, defer_lock and the timed constructors") {
    mutex m;
    {
      std::unique_lock l(m);
      CHECK(l.owns_lock());
      l.unlock();
      CHECK_FALSE(m.held_by_caller());
      l.lock();
      CHECK(m.held_by_caller());
    }
    {
      std::unique_lock l(m, std::try_to_lock);
      CHECK(l.owns_lock());
    }
    {
      std::unique_lock l(m, std::defer_lock);
      CHECK_FALSE(m.held_by_caller());
      CHECK(l.try_lock_for(10ms));
    }
    {
      std::unique_lock l(m, 10ms);
      CHECK(l.owns_lock());
    }
    {
      std::unique_lock l(m, sys::now() + 10ms);
      CHECK(l.owns_lock());
    }
    held_elsewhere h(m);
    {
      std::unique_lock l(m, std::try_to_lock);
      CHECK_FALSE(l.owns_lock());
    }
    {
      std::unique_lock l(m, 10ms);
      CHECK_FALSE(l.owns_lock());
    }
    {
      std::unique_lock l(m, steady::now() + 10ms);
      CHECK_FALSE(l.owns_lock());
    }
    h.release();
    CHECK(h.still_owned_at_release());
  }

  TEST_CASE("std::scoped_lock on two mutexes, taken in opposite orders by two threads, never deadlocks") {
    mutex a, b;
    long count = 0;  // plain: both locks guard it
    constexpr int rounds = 20000;
    lockstep::test::start_line start{2};  // or the first thread may finish before the second starts
    std::thread t1([&] {
      start.arrive_and_wait();
      for (int i = 0; i < rounds; ++i) {
        std::scoped_lock l(a, b);
        ++count;
      }
    });
    std::thread t2([&] {
      start.arrive_and_wait();
      for (int i = 0; i < rounds; ++i) {
        std::scoped_lock l(b, a);
        ++count;
      }
    });
    t1.join();
    t2.join();
    CHECK(count == 2 * rounds);
    CHECK(a.try_lock());
    CHECK(b.try_lock());
    a.unlock();
    b.unlock();
  }

  TEST_CASE("std::condition_variable_any: wait with a predicate, notify, and a timed wait") {
    mutex m;
    std::condition_variable_any cv;
    int turn = 0;  // guarded by m: even = ping's turn, odd = pong's
    constexpr int rounds = 1000;
    auto player = [&](int parity) {
      for (int i = 0; i < rounds; ++i) {
        std::unique_lock l(m);
        cv.wait(l, [&] { return turn % 2 == parity; });
        CHECK(m.held_by_caller());
        ++turn;
        cv.notify_all();
      }
    };
    std::thread ping(player, 0), pong(player, 1);
    ping.join();
    pong.join();
    CHECK(turn == 2 * rounds);
    std::unique_lock l(m);
    CHECK_FALSE(cv.wait_for(l, 10ms, [] { return false; }));  // nobody notifies: times out
    CHECK(m.held_by_caller());                                 // and gives the lock back
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("concurrency") {
  TEST_CASE("4 threads x 100k increments under the lock: exact count") {
    mutex m;
    long count = 0;  // plain: only the mutex orders its accesses (TSan checks that too)
    constexpr int threads = 4, per_thread = 100000;
    lockstep::test::start_line start{threads};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] {
        start.arrive_and_wait();
        for (int i = 0; i < per_thread; ++i) {
          std::lock_guard g(m);
          ++count;
        }
      });
    for (auto& t : ts) t.join();
    CHECK(count == long(threads) * per_thread);
  }

  TEST_CASE("try_lock racing lock: every success is one critical section") {
    mutex m;
    long count = 0;
    std::atomic<long> taken{0};
    constexpr int per_thread = 50000;
    lockstep::test::start_line start{3};
    auto locker = [&] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        std::lock_guard g(m);
        ++count;
      }
      taken += per_thread;
    };
    auto trier = [&] {
      start.arrive_and_wait();
      long mine = 0;
      for (int i = 0; i < per_thread; ++i)
        if (m.try_lock()) {
          ++count;
          ++mine;
          m.unlock();
        }
      taken += mine;
    };
    std::thread a(locker), b(trier), c(trier);
    a.join();
    b.join();
    c.join();
    CHECK(count == taken.load());
  }
}

// ----------------------------------------------------------------------------------------------
// Across fork. Each fork happens while this process is single-threaded (every earlier test
// joined its threads). The children report by exit status: 0 passed, k = check k failed.
TEST_SUITE("processes") {
  TEST_CASE("interprocess_mutex in a MAP_SHARED mapping: parent and child increments add up exactly") {
    struct shared {
      interprocess_mutex m;
      long count = 0;
      lockstep::test::start_line start{2};
    };
    lockstep::test::shared_object<shared> s;
    constexpr int n = 100000;
    auto work = [&] {
      s->start.arrive_and_wait();
      for (int i = 0; i < n; ++i) {
        std::lock_guard g(s->m);
        ++s->count;
      }
    };
    const pid_t child = lockstep::test::fork_child([&] {
      work();
      return 0;
    });
    work();
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(s->count == 2L * n);
  }

  TEST_CASE("a child process can neither unlock nor take the lock its parent holds") {
    lockstep::test::shared_object<interprocess_mutex> m;
    m->lock();
    const pid_t child = lockstep::test::fork_child([&] {
      if (m->held_by_caller()) return 1;
      if (m->unlock_checked() != errc::operation_not_permitted) return 2;
      if (m->try_lock()) return 3;
      if (m->lock_checked(seam::now() + 10ms) != errc::timed_out) return 4;  // not EDEADLK
      return 0;
    });
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(m->held_by_caller());  // the child's attempts changed nothing
    CHECK_FALSE(m->unlock_checked());
  }

  TEST_CASE("after fork the child locks with its own thread id, not its parent's") {
    struct shared {
      interprocess_mutex m;
      std::atomic<int> step{0};  // 1: child holds m; 2: parent is done looking
    };
    lockstep::test::shared_object<shared> s;
    s->m.lock();  // the parent held it, and released it, before the fork
    s->m.unlock();
    const pid_t child = lockstep::test::fork_child([&] {
      if (s->m.lock_checked()) return 1;
      if (!s->m.held_by_caller()) return 2;
      s->step.store(1);
      while (s->step.load() != 2) std::this_thread::sleep_for(1ms);
      return s->m.unlock_checked() ? 3 : 0;
    });
    REQUIRE(eventually([&] { return s->step.load() == 1; }));
    // Had the child reused its parent's cached id, the parent would now "own" the child's lock.
    CHECK_FALSE(s->m.held_by_caller());
    CHECK(s->m.unlock_checked() == errc::operation_not_permitted);
    CHECK_FALSE(s->m.try_lock());
    s->step.store(2);
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(s->m.try_lock());
    s->m.unlock();
  }

  TEST_CASE("a private mutex the parent holds at fork is not held by the child's thread") {
    mutex held, released;
    released.lock();
    released.unlock();
    held.lock();
    const auto d = lockstep::test::run_in_child([&] {
      if (held.held_by_caller()) return 1;  // the child's copy names the parent's thread
      if (held.unlock_checked() != errc::operation_not_permitted) return 2;
      if (held.lock_checked(seam::now() + 10ms) != errc::timed_out) return 3;
      if (released.lock_checked()) return 4;
      if (!released.held_by_caller()) return 5;
      if (released.unlock_checked()) return 6;
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
    CHECK(held.held_by_caller());
    held.unlock();
  }
}
