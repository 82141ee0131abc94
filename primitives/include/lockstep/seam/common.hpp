// lockstep/seam/common.hpp: the vocabulary shared by both sides of the platform seam.
//
// Algorithm headers speak only this vocabulary plus what <lockstep/seam.hpp> provides, so the
// very same source compiles against the kernel (seam/linux.hpp) and against the Relacy model
// checker (seam/model.hpp). Nothing here knows either side.
#pragma once

#include <chrono>
#include <cstdint>

namespace lockstep::seam {

// Every atomic operation names its order; there is no default.
enum class order { relaxed, acquire, release, acq_rel, seq_cst };

// Whether a futex word may be shared with other processes. Process-private words let the kernel
// skip the mm lookup (FUTEX_PRIVATE_FLAG); process-shared words key the wait queue on the
// physical page, so they work in a MAP_SHARED mapping at different addresses.
enum class scope { process_private, process_shared };

// How a futex wait ended. None of them says anything about the word's value: the caller always
// re-reads the word (the kernel does not promise a happens-before edge from waker to waiter).
enum class wait_result {
  woken,          // a futex_wake picked us (or the kernel woke us spuriously)
  value_changed,  // the word did not hold the expected value: we never slept (EAGAIN)
  interrupted,    // a signal handler ran (EINTR)
  timed_out,      // the deadline passed (ETIMEDOUT)
};

// Deadlines are absolute points on the monotonic clock, so a wall-clock step neither shortens
// nor stretches a timed wait.
using clock = std::chrono::steady_clock;
using deadline = clock::time_point;
inline constexpr deadline no_deadline = deadline::max();

// Mutation points. A mutant is a deliberately broken variant of the production source that a
// model must catch. It is a visible, minimal `if (seam::mutant(NAME))` (or a `?:`) at
// the very line it breaks, and each side of the seam defines seam::mutant(name):
//   - production (seam/linux.hpp): a consteval `false`. Every mutation point is a constant the
//     compiler folds away; no macro, flag or input can switch one on, so no mutant can reach a
//     user and none costs anything.
//   - model builds (seam/model.hpp): a run-time comparison with the one mutant the model binary
//     was started with (`model_mutex --mutant mutex.unlock_no_wake`), so one binary per model
//     client runs its clean models and every one of its mutants.

// ThreadSanitizer mutex annotations for builds without TSan (and for the model): no-ops.
namespace tsan_off {
inline constexpr bool enabled = false;
inline constexpr unsigned try_lock = 0;
inline constexpr unsigned try_lock_failed = 0;
inline void pre_lock(void*, unsigned) noexcept {}
inline void post_lock(void*, unsigned) noexcept {}
inline void pre_unlock(void*) noexcept {}
inline void post_unlock(void*) noexcept {}
}  // namespace tsan_off

}  // namespace lockstep::seam
