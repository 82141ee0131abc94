// lockstep/seam.hpp: the one header an algorithm includes.
//
// It selects the platform: the Linux kernel (std::atomic + the futex syscall) in production, or
// the Relacy model checker when LOCKSTEP_MODEL is defined. Both sides provide, in namespace
// lockstep::seam, exactly the same names with the same signatures:
//
//   atomic<T>            load / store / exchange / compare_exchange_{strong,weak} /
//                        fetch_{add,sub,or,and}, each taking an explicit seam::order
//   futex_word           atomic<std::uint32_t>: the 32-bit word futex_wait/futex_wake act on
//   var<T>               a plain (non-atomic) shared variable: read() / write(v); the model
//                        reports any access not ordered by happens-before as a data race
//   futex_wait(w, expected, scope, deadline) -> wait_result
//   futex_wake(w, count, scope) -> number woken
//   now()                the current time on the deadline clock (fixed in the model)
//   spin_pause()         one step of a bounded spin (PAUSE; a yield point in the model)
//   max_spins            how many spin steps an algorithm may take before it sleeps
//   yield_cpu()          sched_yield (a yield point in the model); yield_every, max_yields
//   backoff_pauses       the mutex's polling: after 1, 2, 4 .. backoff_pauses PAUSEs, then
//   backoff_yields       after a yield each, backoff_yields times
//   thread_id()          the caller's nonzero id, < 2^30, unique among live threads (and, in
//                        production, among processes of one PID namespace: it is the kernel tid,
//                        exact in every fork child, _Fork's included: seam/linux.hpp T1..T3)
//   fatal(msg)           report a broken contract and stop (abort / a failed model)
//   mutant(name)         whether the mutation point `name` is switched on: a compile-time false
//                        in production, the mutant named on a model binary's command line in a
//                        model (see seam/common.hpp)
//   tsan::*              ThreadSanitizer mutex annotations (no-ops elsewhere)
//   robust_link<scope>   what a mutex carries for the kernel's robust futex list: lock_begin /
//                        lock_end / unlock_begin / unlock_end bracket its steps (seam/linux.hpp
//                        R1..R4); empty for process_private
//   sliced(d, scope)     the deadline of one sleep: at most shared_wait_slice ahead for
//                        process_shared words in production; d itself in the model
//   crash_point(name)    where a model may kill the calling thread: a compile-time false in
//                        production (like mutant)
// Production adds robust_available() and shared_wait_slice; the model adds kill_thread(),
// set_mortal(), is_dead(), died_holding() and robust_reset() for model clients.
//
// The model side adds a call-site argument to every operation (defaulted, so algorithm source
// is unchanged) so that model traces name the algorithm's line, not the seam's.
#pragma once

#include <lockstep/seam/common.hpp>

#if defined(LOCKSTEP_MODEL)
#include <lockstep/seam/model.hpp>
#else
#include <lockstep/seam/linux.hpp>
#endif
