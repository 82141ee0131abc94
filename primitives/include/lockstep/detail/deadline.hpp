// lockstep/detail/deadline.hpp: std::chrono timeouts and time points -> seam::deadline, by one rule.
//
// Every timed operation in lockstep turns its argument into one absolute steady_clock point
// first, so that an interrupted or spuriously woken wait resumes with the time that is left,
// never with the full timeout again. The rule, for every clock, rep and period (signed,
// unsigned, floating, huge, tiny):
//
//   D1 (due)      A deadline at or before now, a timeout <= 0, and a NaN are *due*: the
//                 operation makes one attempt and returns; it never spins and never sleeps.
//   D2 (none)     A deadline at or beyond seam::deadline::max() (steady_clock's last point,
//                 about 292 years after boot) means *no deadline*, not one wrapped into the past.
//   D3 (rounded)  Anything between is rounded up to the next steady_clock tick: never early.
//   D4 (exact)    Nothing overflows. No arithmetic in the caller's rep or period happens before
//                 its range is known: a duration is measured against the room left before
//                 seam::deadline::max() in 128-bit integers (integral reps of up to 64 bits,
//                 which covers every std::chrono alias: exact), or in long double (floating and
//                 wider reps, and the time left until a point on another clock).
//
// Other clocks than steady_clock are converted through the time left until t on that clock,
// read now; the caller re-checks that clock after a timeout with reached(t) (it may have been
// stepped), which follows the same rule.
#pragma once

#include <lockstep/seam.hpp>

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace lockstep::detail {

using ticks = seam::clock::duration;
static_assert(std::is_integral_v<ticks::rep> && sizeof(ticks::rep) <= 8 && std::is_signed_v<ticks::rep>,
              "steady_clock ticks are a signed integer of at most 64 bits");

// How far a timeout reaches, against `room`, the ticks left before seam::deadline::max().
struct reach {
  enum kind_t { due, within, beyond } kind;  // D1, D3, D2
  ticks span;                                 // within: 0 < span <= room, d rounded up
};

template <class Rep, class Period>
constexpr reach measure(const std::chrono::duration<Rep, Period>& d, ticks room) noexcept {
  using std::uint64_t;
  if constexpr (std::is_integral_v<Rep> && sizeof(Rep) <= sizeof(uint64_t)) {
    if (!(d.count() > 0)) return {reach::due, {}};
    // d >= room  <=>  count * R::num >= room * R::den, R = Period / tick reduced. Each side is a
    // product of two numbers below 2^64: exact in 128 bits.
    __extension__ using u128 = unsigned __int128;
    using R = std::ratio_divide<Period, ticks::period>;
    const u128 lhs = u128(uint64_t(d.count())) * u128(uint64_t(R::num));
    const u128 rhs = u128(uint64_t(room.count())) * u128(uint64_t(R::den));
    if (lhs >= rhs) return {reach::beyond, {}};
    // lhs < rhs: the rounded-up quotient is at most room.
    return {reach::within, ticks(ticks::rep((lhs + u128(R::den) - 1) / u128(R::den)))};
  } else {
    const long double x = std::chrono::duration<long double, ticks::period>(d).count();
    if (!(x > 0)) return {reach::due, {}};  // NaN included
    const long double r = static_cast<long double>(room.count());
    if (x >= r) return {reach::beyond, {}};
    // 0 < x < r <= 2^63 - 1: the truncation fits; round up, and never past room (where long
    // double is only a double, r may have been rounded up).
    auto n = static_cast<ticks::rep>(x);
    if (static_cast<long double>(n) < x) ++n;
    return {reach::within, ticks(n < room.count() ? n : room.count())};
  }
}

// now + d by D1..D3: a due timeout gives now (already passed at the next look), one beyond the
// clock's range gives seam::no_deadline.
template <class Rep, class Period>
seam::deadline deadline_after(const std::chrono::duration<Rep, Period>& d) noexcept {
  const seam::deadline now = seam::now();
  const reach r = measure(d, seam::deadline::max() - now);
  switch (r.kind) {
    case reach::due: return now;
    case reach::beyond: return seam::no_deadline;
    case reach::within: break;
  }
  return now + r.span;
}

// The time left until t on t's own clock, read now, in long double ticks: the two readings are
// subtracted only after both are floating, so no rep can overflow or wrap (D4).
template <class Clock, class Duration>
std::chrono::duration<long double, ticks::period> left_until(const std::chrono::time_point<Clock, Duration>& t) {
  using ld = std::chrono::duration<long double, ticks::period>;
  return ld(t.time_since_epoch()) - ld(Clock::now().time_since_epoch());
}

// Whether t's own clock has reached t (D1 on that clock): for the re-check after a timeout.
template <class Clock, class Duration>
bool reached(const std::chrono::time_point<Clock, Duration>& t) {
  return !(left_until(t).count() > 0);
}

// A point on any clock as a steady_clock deadline, by D1..D3.
template <class Clock, class Duration>
seam::deadline to_deadline(const std::chrono::time_point<Clock, Duration>& t) {
  if constexpr (std::is_same_v<Clock, seam::clock>) {
    // Measured from the clock's epoch (boot): at or before it is long past.
    const reach r = measure(t.time_since_epoch(), seam::deadline::max().time_since_epoch());
    switch (r.kind) {
      case reach::due: return seam::deadline{};
      case reach::beyond: return seam::no_deadline;
      case reach::within: break;
    }
    return seam::deadline(r.span);
  } else {
    return deadline_after(left_until(t));
  }
}

// The one loop behind every *_until in lockstep (mutex, semaphores, channel, message queue):
// runs attempt(deadline) until it returns true or t has passed on t's own clock. steady_clock's
// deadline is exact; another clock may have been stepped during the wait, so after a timeout it
// is read again (reached: D1 on that clock, without the overflow of `Clock::now() < t`).
template <class Clock, class Duration, class Attempt>
bool until(const std::chrono::time_point<Clock, Duration>& t, Attempt attempt) {
  for (;;) {
    if (attempt(to_deadline(t))) return true;
    if (std::is_same_v<Clock, seam::clock> || reached(t)) return false;
  }
}

}  // namespace lockstep::detail
