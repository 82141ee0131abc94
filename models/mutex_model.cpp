// models/mutex_model.cpp: Relacy models of <lockstep/mutex.hpp>, the production header itself.
//
// Each suite drives lockstep::mutex through the model seam. Relacy reports a DATA RACE on an
// rl::var when two critical sections are not ordered by happens-before (mutual exclusion or a
// memory order broken), DEADLOCK when every live thread sleeps (a lost wake-up or a stranded
// sleeper), and USER ASSERT FAILED on the explicit checks below.
//
// Bounds: every thread runs at most two critical sections; 2-thread models search all
// interleavings, 3-thread ones are context-bounded, the 4-thread ones sample random schedules.
// These are safety properties plus deadlock freedom on the explored executions, not a proof for
// unbounded threads (docs/mutex.md says what the bound leaves out).
//
// Owner death (interprocess_mutex, mutex.hpp R-states): a thread dies by seam::kill_thread()
// (the kernel's robust-list action, run on the dying thread: seam/model.hpp) or, when made
// mortal, at any crash point of lock and unlock (the model explores dying and not dying at
// each). The 200 ms sleep slice is not modelled (seam::sliced is the identity there), so a
// waiter stranded by a death shows as DEADLOCK: the robust list alone must keep every waiter
// live. Not modelled: a waiter that dies after being woken and before re-taking (production
// relies on the slice for it, docs/fault-tolerance.md).
#include "harness/harness.hpp"

#include <lockstep/mutex.hpp>

namespace {

using lockstep::mutex;

// Mutual exclusion, no deadlock, no lost wake-up: N threads x 2 locked increments of a plain
// counter. The counter is an rl::var: an unordered pair of increments is a data race.
template <unsigned N, int K>
struct exclusion : rl::test_suite<exclusion<N, K>, N> {
  mutex m;
  rl::var<int> counter;

  void before() { counter($) = 0; }
  void thread(unsigned) {
    for (int i = 0; i < K; ++i) {
      m.lock();
      RL_ASSERT(m.held_by_caller());
      counter($) = counter($) + 1;
      m.unlock();
    }
  }
  void after() { RL_ASSERT(counter($) == int(K * N)); }
};

// Hand-off with nobody asleep: the taker only try_locks, so no futex wake can add an ordering
// edge of the model's own. Only the lock's acquire/release orders the data.
struct handoff : rl::test_suite<handoff, 2> {
  mutex m;
  rl::var<int> data;

  void before() { data($) = 0; }
  void thread(unsigned id) {
    if (id == 0) {
      m.lock();
      data($) = data($) + 1;
      m.unlock();
    } else {
      while (!m.try_lock()) rl::yield(1, $);
      data($) = data($) + 1;
      m.unlock();
    }
  }
  void after() { RL_ASSERT(data($) == 2); }
};

// try_lock racing lock: a successful try_lock is a real critical section; a failed one changes
// nothing. Every taken lock is counted once.
struct trylock : rl::test_suite<trylock, 2> {
  mutex m;
  rl::var<int> counter;
  rl::var<int> taken[2];

  void before() {
    counter($) = 0;
    taken[0]($) = 0;
    taken[1]($) = 0;
  }
  void thread(unsigned id) {
    int mine = 0;
    if (m.try_lock()) {
      counter($) = counter($) + 1;
      ++mine;
      m.unlock();
    }
    m.lock();
    counter($) = counter($) + 1;
    ++mine;
    m.unlock();
    taken[id]($) = mine;
  }
  void after() { RL_ASSERT(counter($) == taken[0]($) + taken[1]($)); }
};

// Timed lock racing the holder and other waiters: a timed-out waiter leaves no trace that
// could strand another (it may leave WAITERS set, which costs one spare wake, never a sleeper),
// and the mutex stays fully usable afterwards.
template <unsigned N>
struct timed : rl::test_suite<timed<N>, N> {
  mutex m;
  rl::var<int> counter;
  rl::var<int> taken[N];

  void before() {
    counter($) = 0;
    for (unsigned i = 0; i < N; ++i) taken[i]($) = 0;
  }
  void thread(unsigned id) {
    int mine = 0;
    const std::error_code ec = m.lock_checked(lockstep::seam::now() + std::chrono::seconds(1));
    if (!ec) {
      counter($) = counter($) + 1;
      ++mine;
      m.unlock();
    } else {
      RL_ASSERT(ec == std::errc::timed_out);
      RL_ASSERT(!m.held_by_caller());
    }
    if (id != 0) {
      m.lock();
      counter($) = counter($) + 1;
      ++mine;
      m.unlock();
    }
    taken[id]($) = mine;
  }
  void after() {
    int sum = 0;
    for (unsigned i = 0; i < N; ++i) sum += taken[i]($);
    RL_ASSERT(counter($) == sum);
    RL_ASSERT(sum >= int(N) - 1);
  }
};

// A timed waiter that is woken, finds the lock taken again by a barging thread and then sees
// its deadline pass: it consumed the one FUTEX_WAKE, so it must leave WAITERS set (I4) or the
// other sleeper is stranded. Thread 0 releases and barges back in; 1 waits with a deadline;
// 2 waits without one.
struct timeout_after_wake : rl::test_suite<timeout_after_wake, 3> {
  mutex m;
  rl::var<int> counter;

  void before() { counter($) = 0; }
  void thread(unsigned id) {
    if (id == 0) {
      for (int i = 0; i < 2; ++i) {
        m.lock();
        counter($) = counter($) + 1;
        m.unlock();
      }
    } else if (id == 1) {
      if (!m.lock_checked(lockstep::seam::now() + std::chrono::seconds(1))) {
        counter($) = counter($) + 1;
        m.unlock();
      }
    } else {
      m.lock();
      counter($) = counter($) + 1;
      m.unlock();
    }
  }
};

// Ownership, as the definition of a mutex demands: a non-owner's unlock is refused and changes
// nothing; the owner's relock is refused instead of deadlocking.
struct ownership : rl::test_suite<ownership, 2> {
  mutex m;
  rl::atomic<int> step;
  rl::var<int> data;

  void before() {
    step($).store(0, rl::mo_relaxed);
    data($) = 0;
  }
  void thread(unsigned id) {
    if (id == 0) {
      m.lock();
      RL_ASSERT(m.lock_checked() == std::errc::resource_deadlock_would_occur);
      data($) = 1;
      step($).store(1, rl::mo_release);
      while (step($).load(rl::mo_acquire) != 2) rl::yield(1, $);
      m.unlock();  // still ours: the intruder's unlock changed nothing
    } else {
      while (step($).load(rl::mo_acquire) != 1) rl::yield(1, $);
      RL_ASSERT(m.unlock_checked() == std::errc::operation_not_permitted);
      RL_ASSERT(!m.try_lock());
      step($).store(2, rl::mo_release);
      m.lock();
      RL_ASSERT(data($) == 1);
      m.unlock();
    }
  }
};

// Owner death at any step of the owner's lock/unlock: thread 0 locks first (thread 1 waits
// for that), is mortal at every crash point and may also die holding the lock right after
// taking it. Thread 1's blocking lock_checked must return (never hang: a stranded sleeper is a
// DEADLOCK) with owner_dead exactly when thread 0 died with its id in the word, and then
// see the dead owner's data (ordered by the kernel's OWNER_DIED write), repair it, call
// consistent() and find the mutex ordinary again.
struct owner_death : rl::test_suite<owner_death, 2> {
  lockstep::interprocess_mutex m;
  rl::atomic<int> started;
  rl::var<int> data;
  rl::var<int> died_holding;  // thread 0's own record, read in after()
  rl::var<int> saw_owner_dead;

  void before() {
    lockstep::seam::robust_reset();
    started($).store(0, rl::mo_relaxed);
    data($) = 0;
    died_holding($) = 0;
    saw_owner_dead($) = 0;
  }
  void thread(unsigned id) {
    namespace seam = lockstep::seam;
    if (id == 0) {
      seam::set_mortal(true);
      m.lock();
      started($).store(1, rl::mo_relaxed);
      if (!seam::is_dead()) {
        data($) = 1;
        if (rl::rand(2) == 0)
          seam::kill_thread();  // dies holding it, between lock and unlock
        else
          m.unlock();
      }
      died_holding($) = seam::died_holding() ? 1 : 0;
      seam::set_mortal(false);
      return;
    }
    while (started($).load(rl::mo_relaxed) == 0) rl::yield(1, $);
    const std::error_code ec = m.lock_checked();
    RL_ASSERT(!ec || ec == std::errc::owner_dead);
    if (ec == std::errc::owner_dead) {
      saw_owner_dead($) = 1;
      data($) = 0;  // repair (a race here would mean the dead owner's writes are unordered)
      RL_ASSERT(!m.consistent());
    }
    m.unlock();
    RL_ASSERT(!m.lock_checked());  // ordinary again: owner_dead was reported once
    m.unlock();
  }
  void after() { RL_ASSERT(saw_owner_dead($) == died_holding($)); }
};

// Unlock without consistent(): not recoverable, for everybody, and nobody hangs. Thread 0 dies
// holding the lock; threads 1..N-1 lock_checked. One gets owner_dead and unlocks without
// repairing; it is mortal: it may die still holding it (then the next locker gets owner_dead,
// as POSIX says) or between marking the mutex not recoverable and waking everyone (the kernel
// then wakes one waiter through its pending entry, and each woken waiter passes the wake-up
// on, I7). Every other thread gets state_not_recoverable.
template <unsigned N>
struct not_recoverable : rl::test_suite<not_recoverable<N>, N> {
  lockstep::interprocess_mutex m;
  rl::atomic<int> started;
  rl::atomic<int> owner_dead;
  rl::atomic<int> died_holding;  // an owner_dead taker that died before marking it
  rl::atomic<int> unrecoverable;

  void before() {
    lockstep::seam::robust_reset();
    started($).store(0, rl::mo_relaxed);
    owner_dead($).store(0, rl::mo_relaxed);
    died_holding($).store(0, rl::mo_relaxed);
    unrecoverable($).store(0, rl::mo_relaxed);
  }
  void thread(unsigned id) {
    namespace seam = lockstep::seam;
    if (id == 0) {
      m.lock();
      started($).store(1, rl::mo_relaxed);
      seam::kill_thread();
      return;
    }
    while (started($).load(rl::mo_relaxed) == 0) rl::yield(1, $);
    const std::error_code ec = m.lock_checked();
    if (ec == std::errc::owner_dead) {
      owner_dead($).fetch_add(1, rl::mo_relaxed);
      seam::set_mortal(true);
      m.unlock();  // no consistent(): not recoverable
      if (seam::died_holding()) died_holding($).fetch_add(1, rl::mo_relaxed);  // then the next gets owner_dead
      seam::set_mortal(false);
    } else {
      RL_ASSERT(ec == std::errc::state_not_recoverable);
      unrecoverable($).fetch_add(1, rl::mo_relaxed);
      RL_ASSERT(m.try_lock_checked() == std::errc::state_not_recoverable);
    }
  }
  void after() {
    // Every taker got an answer (none hung, none got ok); owner_dead at most once per death of
    // a holder (thread 0's, and any taker's that died holding it), and exactly once per death
    // when the mutex was marked not recoverable in the end (nobody died after the marker).
    const int dead = owner_dead($).load(rl::mo_relaxed);
    const int deaths = 1 + died_holding($).load(rl::mo_relaxed);
    const int unrec = unrecoverable($).load(rl::mo_relaxed);
    RL_ASSERT(dead + unrec == int(N) - 1);
    RL_ASSERT(dead >= 1 && dead <= deaths);
    RL_ASSERT(unrec == 0 || dead == deaths);
  }
};

using lockstep::model::bounded;
using lockstep::model::full;
using lockstep::model::random;
using lockstep::model::simulate;

const lockstep::model::model models[] = {
    {"exclusion_2t", "mutual exclusion; no deadlock or lost wake-up", 2, full(), simulate<exclusion<2, 1>>},
    {"exclusion_2t_x2", "mutual exclusion over two rounds (relock races a waking sleeper)", 2, bounded(3),
     simulate<exclusion<2, 2>>},
    {"handoff_2t", "lock/unlock order the data with nobody asleep", 2, full(), simulate<handoff>},
    {"ownership_2t", "non-owner unlock refused, owner relock refused, state unchanged", 2, bounded(3),
     simulate<ownership>},
    {"trylock_2t", "try_lock racing lock: exclusion, nothing changed on failure", 2, full(), simulate<trylock>},
    {"timed_2t", "timed lock racing the holder: exclusion; a timeout changes nothing", 2, full(),
     simulate<timed<2>>},
    {"exclusion_3t", "mutual exclusion; no stranded sleeper with two sleepers", 3, bounded(3),
     simulate<exclusion<3, 1>>},
    {"timed_3t", "timeouts racing a wake: no stranded sleeper", 3, bounded(2), simulate<timed<3>>},
    {"timeout_after_wake_3t", "a timed waiter woken then timed out strands no other sleeper", 3, random(1000000),
     simulate<timeout_after_wake>},
    {"exclusion_4t", "mutual exclusion; no deadlock (random schedules)", 4, random(200000),
     simulate<exclusion<4, 2>>},
    {"owner_death_2t", "owner killed at any crash point or holding: owner_dead exactly when it died holding, once; "
     "consistent() restores; the waiter never hangs", 2, random(300000), simulate<owner_death>},
    {"not_recoverable_3t", "unlock without consistent(): every other locker gets state_not_recoverable, none hangs",
     3, bounded(2), simulate<not_recoverable<3>>},
    {"not_recoverable_4t", "the same with two sleepers and the marker killed before its wake (pass-on, I7)", 4,
     random(200000), simulate<not_recoverable<4>>},
};

}  // namespace

LOCKSTEP_MODEL_MAIN(models)
