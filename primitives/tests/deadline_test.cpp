// primitives/tests/deadline_test.cpp: the one deadline rule (detail/deadline.hpp D1..D4) for
// every clock, rep and period, in tables; then the same tables through the primitives.
//
// Built in the asan preset with UBSan, fatal (-fno-sanitize-recover=all, and
// float-cast-overflow, which -fsanitize=undefined leaves out in GCC): any overflow in a
// conversion ends the run. The last case checks that UBSan really is fatal in such a build.
//
// Through the primitives (a binary_semaphore{0}, a mutex held by another thread): a due
// deadline returns false after one attempt with no spin step and no futex wait (counted, not
// timed); a deadline beyond steady_clock's range waits until the other thread gives way, which
// it does only once the futex counter says the caller sleeps, and then returns true.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/detail/deadline.hpp>
#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include "death.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <limits>
#include <ratio>
#include <string>
#include <thread>
#include <tuple>

using namespace std::chrono_literals;
using lockstep::binary_semaphore;
using lockstep::mutex;
using lockstep::detail::reach;
namespace seam = lockstep::seam;
namespace detail = lockstep::detail;
using lockstep::test::eventually;
using lockstep::test::futex_calls;
using lockstep::test::spin_steps;
using std::chrono::duration;
using std::chrono::time_point;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
using ticks = detail::ticks;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
using years = duration<long long, std::ratio<31556952>>;

// A table row: a name for the failure message, and a value of any type.
template <class T>
struct row {
  const char* name;
  T value;
};
template <class T>
row(const char*, T) -> row<T>;

template <class Table, class Fn>
void for_each_row(const Table& table, Fn fn) {
  std::apply([&](const auto&... r) { (fn(r), ...); }, table);
}

// A clock of another kind: unsigned years since year 0, now is 2026.
struct year_clock {
  using rep = unsigned;
  using period = std::ratio<31556952>;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<year_clock>;
  static constexpr bool is_steady = false;
  static time_point now() noexcept { return time_point(duration(2026)); }
};

// Two seconds ago on the system clock, as unsigned seconds: far from 0, but in the past.
template <class Duration>
time_point<sys, Duration> sys_ago(sys::duration ago) {
  return time_point<sys, Duration>(std::chrono::floor<Duration>(sys::now().time_since_epoch() - ago));
}

// Deadlines that are due (D1): at or before now, on every kind of clock and representation.
auto due_points() {
  return std::make_tuple(
      row{"system_clock::time_point::min()", sys::time_point::min()},
      row{"system_clock, seconds: min()", time_point<sys, std::chrono::seconds>::min()},
      row{"system_clock, unsigned long long seconds, 2 s ago", sys_ago<duration<unsigned long long>>(2s)},
      row{"system_clock, unsigned long long ns, 2 s ago", sys_ago<duration<unsigned long long, std::nano>>(2s)},
      row{"system_clock, unsigned seconds: 0 (1970)", time_point<sys, duration<unsigned>>{}},
      row{"system_clock, double seconds, 2 s ago", time_point<sys, duration<double>>(sys::now() - 2s)},
      row{"system_clock, double: -inf", time_point<sys, duration<double>>(duration<double>(-inf))},
      row{"system_clock, double: NaN", time_point<sys, duration<double>>(duration<double>(not_a_number))},
      row{"system_clock, years: min()", time_point<sys, years>::min()},
      row{"steady_clock::time_point::min()", steady::time_point::min()},
      row{"steady_clock, seconds: min()", time_point<steady, std::chrono::seconds>::min()},
      row{"steady_clock, unsigned long long seconds, 2 s ago",
          time_point<steady, duration<unsigned long long>>(std::chrono::floor<std::chrono::seconds>(steady::now().time_since_epoch() - 2s))},
      row{"steady_clock: epoch", steady::time_point{}},
      row{"steady_clock: now - 1 ns", steady::now() - 1ns},
      row{"steady_clock, float hours: -1", time_point<steady, duration<float, std::ratio<3600>>>(duration<float, std::ratio<3600>>(-1))},
      row{"year_clock: year 0", year_clock::time_point{}},
      row{"year_clock: now", year_clock::now()});
}

// Deadlines beyond steady_clock's range (D2): no deadline.
auto beyond_points() {
  return std::make_tuple(
      row{"system_clock, seconds: max()", time_point<sys, std::chrono::seconds>::max()},
      row{"system_clock, unsigned long long seconds: max()", time_point<sys, duration<unsigned long long>>::max()},
      row{"system_clock, unsigned long long ns: max()", time_point<sys, duration<unsigned long long, std::nano>>::max()},
      row{"system_clock, double: +inf", time_point<sys, duration<double>>(duration<double>(inf))},
      row{"system_clock, double: max()", time_point<sys, duration<double>>::max()},
      row{"system_clock, years: max()", time_point<sys, years>::max()},
      row{"steady_clock::time_point::max()", steady::time_point::max()},
      row{"steady_clock, seconds: max()", time_point<steady, std::chrono::seconds>::max()},
      row{"steady_clock, unsigned long long seconds: max()", time_point<steady, duration<unsigned long long>>::max()},
      row{"steady_clock, long double: max()", time_point<steady, duration<long double>>::max()},
      row{"steady_clock, now + 300 years", time_point<steady, years>(std::chrono::ceil<years>(steady::now().time_since_epoch()) + years(300))},
      row{"year_clock: max()", year_clock::time_point::max()});
}

// Deadlines in range (D3) but centuries away: the caller waits as if there were none.
auto far_points() {
  return std::make_tuple(
      row{"system_clock::time_point::max() (the year 2262)", sys::time_point::max()},
      row{"steady_clock, pico: max() (106 days after boot)", time_point<steady, duration<long long, std::pico>>::max()},
      row{"steady_clock, now + 200 years", steady::now() + years(200)});
}

// Timeouts that are due (D1) and beyond (D2).
auto due_timeouts() {
  return std::make_tuple(
      row{"0 ns", 0ns}, row{"-1 ns", -1ns}, row{"0 s", 0s}, row{"-1 h", -1h},
      row{"nanoseconds::min()", std::chrono::nanoseconds::min()}, row{"hours::min()", std::chrono::hours::min()},
      row{"unsigned: 0", duration<unsigned>(0)}, row{"unsigned long long ns: 0", duration<unsigned long long, std::nano>(0)},
      row{"double: 0", duration<double>(0)}, row{"double: -0", duration<double>(-0.0)},
      row{"double: -1e300", duration<double>(-1e300)}, row{"double: -inf", duration<double>(-inf)},
      row{"double: NaN", duration<double>(not_a_number)}, row{"float ms: -0.5", duration<float, std::milli>(-0.5f)},
      row{"years::min()", years::min()}, row{"signed char hours: -128", duration<signed char, std::ratio<3600>>(-128)});
}

auto beyond_timeouts() {
  return std::make_tuple(
      row{"nanoseconds::max()", std::chrono::nanoseconds::max()}, row{"hours::max()", std::chrono::hours::max()},
      row{"seconds::max()", std::chrono::seconds::max()}, row{"years::max()", years::max()},
      row{"unsigned long long s: max()", duration<unsigned long long>::max()},
      row{"unsigned long long ns: max() (584 years)", duration<unsigned long long, std::nano>::max()},
      row{"double: 1e300", duration<double>(1e300)}, row{"double: +inf", duration<double>(inf)},
      row{"double: max()", duration<double>::max()}, row{"long double: max()", duration<long double>::max()},
      row{"float hours: max()", duration<float, std::ratio<3600>>::max()}, row{"300 years", years(300)});
}

// ---- through the primitives ----------------------------------------------------------------

// Runs attempt() while another thread stands ready to free the resource with give_way(): as
// soon as the caller sleeps (when `when_asleep`), or after 10 s if the attempt has not returned
// by then, so that a broken build fails instead of hanging. Returns the attempt's result.
template <class Attempt, class GiveWay>
bool attempt_with_rescue(Attempt attempt, GiveWay give_way, bool when_asleep, const futex_calls& calls) {
  std::atomic<bool> done{false};
  std::thread other([&] {
    eventually([&] { return done.load() || (when_asleep && calls.waits() > 0); });
    if (!done.load()) give_way();
  });
  const bool got = attempt();
  done.store(true);
  other.join();
  return got;
}

// A due call on a binary_semaphore{0} / a mutex held by another thread: false, with no spin
// step and no futex wait.
template <class Attempt, class GiveWay>
void due_once(const std::string& what, Attempt attempt, GiveWay give_way) {
  INFO(what);
  futex_calls calls;
  spin_steps spins;
  CHECK_FALSE(attempt_with_rescue(attempt, give_way, false, calls));
  CHECK(spins.count() == 0);
  CHECK(calls.waits() == 0);
}

// A call with no deadline: it sleeps until the other thread gives way, then returns true.
template <class Attempt, class GiveWay>
void waits_then_true(const std::string& what, Attempt attempt, GiveWay give_way) {
  INFO(what);
  futex_calls calls;
  CHECK(attempt_with_rescue(attempt, give_way, true, calls));
  CHECK(calls.waits() > 0);
}

// Another thread holds `m` until release(): the mutex side of the tables.
class held {
 public:
  explicit held(mutex& m) : thread_([&m, this] {
    m.lock();
    locked_.store(true);
    while (!go_.load()) std::this_thread::sleep_for(1ms);
    m.unlock();
  }) {
    while (!locked_.load()) std::this_thread::yield();
  }
  held(const held&) = delete;
  held& operator=(const held&) = delete;
  ~held() { release(); }
  void release() {
    go_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> locked_{false}, go_{false};
  std::thread thread_;
};

}  // namespace

// ----------------------------------------------------------------------------------------------
TEST_SUITE("the rule, exactly (detail::measure)") {
  TEST_CASE("integral reps: due at <= 0, rounded up in between, beyond at >= the room") {
    const ticks room(1000);
    auto check = [](auto d, ticks room, reach::kind_t kind, long long span = 0) {
      const reach r = detail::measure(d, room);
      CHECK(r.kind == kind);
      if (kind == reach::within) CHECK(r.span.count() == span);
    };
    check(0ns, room, reach::due);
    check(-1ns, room, reach::due);
    check(std::chrono::nanoseconds::min(), room, reach::due);
    check(std::chrono::hours::min(), room, reach::due);
    check(duration<unsigned>(0), room, reach::due);
    check(1ns, room, reach::within, 1);
    check(999ns, room, reach::within, 999);
    check(1000ns, room, reach::beyond);
    check(1us, room, reach::beyond);
    check(duration<unsigned long long, std::nano>(1001), room, reach::beyond);
    check(duration<long long, std::atto>(1), room, reach::within, 1);  // tiny: rounded up, never 0
    check(duration<long long, std::pico>(999'001), room, reach::within, 1000);
    check(5ns, ticks(0), reach::beyond);
    const ticks all = ticks::max();
    check(duration<long long, std::ratio<1, 3>>(1), all, reach::within, 333'333'334);
    check(duration<unsigned, std::nano>::max(), all, reach::within, 4'294'967'295);
    check(duration<long long, std::pico>::max(), all, reach::within, 9'223'372'036'854'776);
    check(duration<signed char, std::ratio<31556952>>(127), all, reach::within, 127LL * 31'556'952 * 1'000'000'000);
    check(std::chrono::nanoseconds::max(), all, reach::beyond);
    check(std::chrono::nanoseconds::max() - 1ns, all, reach::within, LLONG_MAX - 1);
    check(std::chrono::hours::max(), all, reach::beyond);
    check(duration<unsigned long long>::max(), all, reach::beyond);
    check(duration<unsigned long long, std::nano>::max(), all, reach::beyond);
  }

  TEST_CASE("floating reps: NaN and <= 0 due, infinities and huge values beyond, the rest rounded up") {
    const ticks room(1'000'000'000'000);  // 1000 s
    auto check = [&](auto d, reach::kind_t kind, long long span = 0) {
      const reach r = detail::measure(d, room);
      CHECK(r.kind == kind);
      if (kind == reach::within) CHECK(r.span.count() == span);
    };
    check(duration<double>(0), reach::due);
    check(duration<double>(-0.0), reach::due);
    check(duration<double>(not_a_number), reach::due);
    check(duration<double>(-inf), reach::due);
    check(duration<double>(inf), reach::beyond);
    check(duration<double>(1e300), reach::beyond);
    check(duration<double>::max(), reach::beyond);
    check(duration<long double>::max(), reach::beyond);
    check(duration<double>(1000), reach::beyond);
    check(duration<double, std::nano>(0.25), reach::within, 1);
    check(duration<double>(std::numeric_limits<double>::denorm_min()), reach::within, 1);
    check(duration<double>(1.5), reach::within, 1'500'000'000);
    check(duration<float, std::milli>(2.5f), reach::within, 2'500'000);
    check(duration<double, std::nano>(999'999'999'998.5), reach::within, 999'999'999'999);
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("deadline_after and to_deadline, every clock") {
  TEST_CASE("due timeouts give a deadline already passed; beyond ones give no deadline") {
    for_each_row(due_timeouts(), [](const auto& r) {
      INFO(std::string(r.name));
      const seam::deadline d = detail::deadline_after(r.value);
      CHECK(d <= seam::now());
    });
    for_each_row(beyond_timeouts(), [](const auto& r) {
      INFO(std::string(r.name));
      CHECK(detail::deadline_after(r.value) == seam::no_deadline);
    });
    const auto before = seam::now();
    const auto d = detail::deadline_after(1500ms);
    CHECK(d >= before + 1500ms);
    CHECK(d <= seam::now() + 1500ms);
  }

  TEST_CASE("due points give a deadline already passed and are reached; beyond ones give no deadline") {
    for_each_row(due_points(), [](const auto& r) {
      INFO(std::string(r.name));
      const seam::deadline d = detail::to_deadline(r.value);
      CHECK(d <= seam::now());
      CHECK(detail::reached(r.value));
    });
    for_each_row(beyond_points(), [](const auto& r) {
      INFO(std::string(r.name));
      CHECK(detail::to_deadline(r.value) == seam::no_deadline);
      CHECK_FALSE(detail::reached(r.value));
    });
    for_each_row(far_points(), [](const auto& r) {
      INFO(std::string(r.name));
      const seam::deadline d = detail::to_deadline(r.value);
      CHECK(d != seam::no_deadline);
      CHECK(d > seam::now() + 24h);
      CHECK_FALSE(detail::reached(r.value));
    });
  }

  TEST_CASE("points in range: steady_clock exactly, other clocks through the time left") {
    const auto t = steady::now() + 1234567ns;
    CHECK(detail::to_deadline(t) == t);
    const auto coarse = time_point<steady, duration<long long, std::ratio<1, 3>>>(duration<long long, std::ratio<1, 3>>(1));
    CHECK(detail::to_deadline(coarse).time_since_epoch() == 333'333'334ns);  // rounded up, never early
    const auto before = seam::now();
    const auto d = detail::to_deadline(sys::now() + 2s);
    CHECK(d >= before + 2s - 1ms);  // a system_clock step between the two readings would move it
    CHECK(d <= seam::now() + 2s + 1ms);
    CHECK_FALSE(detail::reached(sys::now() + 1h));
    const auto next_year = detail::to_deadline(year_clock::now() + year_clock::duration(1));
    CHECK(next_year - seam::now() > years(1) - 1s);
    CHECK(next_year - seam::now() <= years(1) + 1ms);  // long double: 2026 years in ns need 66 bits
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("through the primitives") {
  TEST_CASE("binary_semaphore{0}: a due deadline or timeout returns false at once, without spinning") {
    binary_semaphore s{0};
    auto release = [&] { s.release(); };
    for_each_row(due_points(), [&](const auto& r) {
      due_once(std::string("try_acquire_until: ") + r.name, [&] { return s.try_acquire_until(r.value); }, release);
    });
    for_each_row(due_timeouts(), [&](const auto& r) {
      due_once(std::string("try_acquire_for: ") + r.name, [&] { return s.try_acquire_for(r.value); }, release);
    });
    CHECK(s.waiting() == 0);
    CHECK(s.value() == 0);
  }

  TEST_CASE("a mutex held elsewhere: a due deadline or timeout returns false at once, without spinning") {
    mutex m;
    held h(m);
    auto unlock = [&] { h.release(); };
    for_each_row(due_points(), [&](const auto& r) {
      due_once(std::string("try_lock_until: ") + r.name, [&] { return m.try_lock_until(r.value); }, unlock);
    });
    for_each_row(due_timeouts(), [&](const auto& r) {
      due_once(std::string("try_lock_for: ") + r.name, [&] { return m.try_lock_for(r.value); }, unlock);
    });
    due_once("lock_checked(deadline{})", [&] { return !m.lock_checked(seam::deadline{}); }, unlock);
  }

  TEST_CASE("binary_semaphore{0}: a deadline or timeout beyond the clock's range, or centuries away, waits for the release") {
    binary_semaphore s{0};
    auto release = [&] { s.release(); };
    auto until = [&](const auto& r) {
      waits_then_true(std::string("try_acquire_until: ") + r.name, [&] { return s.try_acquire_until(r.value); }, release);
    };
    for_each_row(beyond_points(), until);
    for_each_row(far_points(), until);
    for_each_row(beyond_timeouts(), [&](const auto& r) {
      waits_then_true(std::string("try_acquire_for: ") + r.name, [&] { return s.try_acquire_for(r.value); }, release);
    });
    CHECK(s.value() == 0);
    CHECK(s.waiting() == 0);
  }

  TEST_CASE("a mutex held elsewhere: a deadline or timeout beyond the clock's range, or centuries away, waits for the unlock") {
    mutex m;
    auto run = [&](const std::string& what, auto attempt) {
      held h(m);
      waits_then_true(what, [&] {
        const bool got = attempt();
        if (got) m.unlock();
        return got;
      }, [&] { h.release(); });
    };
    auto until = [&](const auto& r) {
      run(std::string("try_lock_until: ") + r.name, [&] { return m.try_lock_until(r.value); });
    };
    for_each_row(beyond_points(), until);
    for_each_row(far_points(), until);
    for_each_row(beyond_timeouts(), [&](const auto& r) {
      run(std::string("try_lock_for: ") + r.name, [&] { return m.try_lock_for(r.value); });
    });
  }
}

// ----------------------------------------------------------------------------------------------
TEST_SUITE("the sanitizer") {
  // The tables above prove nothing about overflow unless UBSan stops the run at the first one.
  TEST_CASE("UBSan is fatal in this build: a signed overflow ends the process") {
#if defined(LOCKSTEP_TEST_UBSAN)
    const auto d = lockstep::test::run_in_child([] {
      volatile int big = INT_MAX;
      const int wrapped = big + 1;  // undefined: UBSan must stop here
      return wrapped == INT_MIN ? 0 : 1;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK_FALSE(d.status.ok());
    CHECK(d.stderr_text.find("runtime error") != std::string::npos);
#else
    MESSAGE("not a UBSan build: nothing to check");
#endif
  }
}
