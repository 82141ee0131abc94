// primitives/tests/signal_test.cpp: signals against blocking waits (docs/fault-tolerance.md,
// "Signals").
//
// A blocking lock or acquire interrupted by a signal handler (futex_wait returns EINTR: the
// handler is installed without SA_RESTART) resumes sleeping and still succeeds, never returns
// early. A signal handler may release() a semaphore (async-signal-safe: a CAS loop and the
// futex_wake syscall) and that wakes the waiter. Each case runs for the mutex and semaphore of
// both scopes. Every test takes well under a second.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include "support.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <pthread.h>
#include <signal.h>

using namespace std::chrono_literals;
namespace seam = lockstep::seam;
using lockstep::test::eventually;
using lockstep::test::futex_calls;

namespace {

std::atomic<int> handled{0};
void* handler_target = nullptr;                 // a semaphore for the releasing handler
void (*handler_action)(void*) = nullptr;        // what the handler does besides counting

extern "C" void on_signal(int) {
  handled.fetch_add(1, std::memory_order_relaxed);
  if (handler_action != nullptr) handler_action(handler_target);
}

// SIGUSR1 runs on_signal, without SA_RESTART: a sleeping futex_wait returns EINTR.
struct signal_handler {
  signal_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGUSR1, &sa, &old_);
    handled = 0;
  }
  ~signal_handler() {
    ::sigaction(SIGUSR1, &old_, nullptr);
    handler_action = nullptr;
    handler_target = nullptr;
  }
  struct sigaction old_ {};
};

// Interrupts `t`, asleep in a futex_wait, `n` times: each signal must be handled and the
// thread must go back to sleep (one more futex_wait) before the next.
void interrupt(std::thread& t, const futex_calls& calls, int n) {
  for (int i = 0; i < n; ++i) {
    const auto waits = calls.waits();
    const int before = handled.load();
    ::pthread_kill(t.native_handle(), SIGUSR1);
    REQUIRE(eventually([&] { return handled.load() > before; }));
    REQUIRE(eventually([&] { return calls.waits() > waits; }));  // slept again
  }
}

// A thread blocks in wait(), is interrupted five times, and must return only after give().
template <class Wait, class Give>
void wait_survives_signals(Wait wait, Give give) {
  signal_handler h;
  futex_calls calls;
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    wait();
    got = true;
  });
  REQUIRE(eventually([&] { return calls.waits() > 0; }));
  interrupt(waiter, calls, 5);
  CHECK_FALSE(got.load());  // never returned early
  give();
  waiter.join();
  CHECK(got.load());
  CHECK(handled.load() == 5);
}

template <class M>
void lock_survives_signals() {
  M m;
  m.lock();
  wait_survives_signals(
      [&] {
        m.lock();
        m.unlock();
      },
      [&] { m.unlock(); });
}

template <class S>
void acquire_survives_signals() {
  S s(0);
  wait_survives_signals([&] { s.acquire(); }, [&] { s.release(); });
  CHECK(s.value() == 0);
}

template <class S>
void handler_release_wakes_waiter() {
  signal_handler h;
  S s(0);
  handler_target = &s;
  handler_action = [](void* p) { static_cast<S*>(p)->release(); };
  futex_calls calls;
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    s.acquire();
    got = true;
  });
  REQUIRE(eventually([&] { return calls.waits() > 0; }));
  ::raise(SIGUSR1);  // the handler runs on this thread and releases
  CHECK(handled.load() == 1);
  REQUIRE(eventually([&] { return got.load(); }));  // woken by the handler's release
  waiter.join();
  CHECK(s.value() == 0);
  // Also from the waiter's own thread: the handler releases while its thread sleeps in acquire.
  got = false;
  std::thread self_waiter([&] {
    s.acquire();
    got = true;
  });
  REQUIRE(eventually([&] { return calls.waits() > 1; }));
  ::pthread_kill(self_waiter.native_handle(), SIGUSR1);
  self_waiter.join();
  CHECK(got.load());
  CHECK(s.value() == 0);
}

}  // namespace

TEST_SUITE("signals") {
  TEST_CASE("a blocking lock interrupted by signals resumes and succeeds") {
    SUBCASE("mutex") { lock_survives_signals<lockstep::mutex>(); }
    SUBCASE("interprocess_mutex") { lock_survives_signals<lockstep::interprocess_mutex>(); }
  }
  TEST_CASE("a blocking acquire interrupted by signals resumes and succeeds") {
    SUBCASE("counting_semaphore") { acquire_survives_signals<lockstep::counting_semaphore<>>(); }
    SUBCASE("interprocess_binary_semaphore") { acquire_survives_signals<lockstep::interprocess_binary_semaphore>(); }
  }
  TEST_CASE("a signal handler's release() wakes the waiter") {
    SUBCASE("binary_semaphore") { handler_release_wakes_waiter<lockstep::binary_semaphore>(); }
    SUBCASE("interprocess_counting_semaphore") {
      handler_release_wakes_waiter<lockstep::interprocess_counting_semaphore<>>();
    }
  }
}
