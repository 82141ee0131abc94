// lockstep/detail/deadline.hpp: std::chrono timeouts -> seam::deadline, saturating.
//
// Every timed operation in lockstep turns its argument into one absolute steady_clock point
// first, so that an interrupted or spuriously woken wait resumes with the time that is left,
// never with the full timeout again.
#pragma once

#include <lockstep/seam.hpp>

#include <chrono>
#include <type_traits>

namespace lockstep::detail {

// now + d; a non-positive d means "already due" (try once, never sleep), and a d too large to
// represent (hours::max(), say) means "no deadline" rather than an overflowed one in the past.
template <class Rep, class Period>
seam::deadline deadline_after(const std::chrono::duration<Rep, Period>& d) {
  using namespace std::chrono;
  const seam::deadline now = seam::now();
  if (d <= d.zero()) return now;
  if (duration<double>(d) >= duration<double>(seam::deadline::max() - now)) return seam::no_deadline;
  return now + ceil<seam::clock::duration>(d);
}

// A point on any clock as a steady_clock deadline. Other clocks are converted through the time
// remaining now; callers re-check that clock after a timeout, as it may have been stepped.
template <class Clock, class Duration>
seam::deadline to_deadline(const std::chrono::time_point<Clock, Duration>& t) {
  using namespace std::chrono;
  if constexpr (std::is_same_v<Clock, seam::clock>) {
    if (duration<double>(t.time_since_epoch()) >= duration<double>(seam::deadline::max().time_since_epoch()))
      return seam::no_deadline;
    return ceil<seam::clock::duration>(t);
  } else {
    return deadline_after(t - Clock::now());
  }
}

}  // namespace lockstep::detail
