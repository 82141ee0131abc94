// models/harness/death.hpp: owner death for the ipc model clients (channel, message_queue): a
// mortal thread that may die before any access its client routes through crash_here().
//
// It dies as the kernel kills a thread: seam::kill_thread() runs the robust-list walk (its
// locks marked OWNER_DIED, a waiter woken), then the exception `killed` unwinds the dead
// thread's stack, so nothing of it runs afterwards. Mortality is kept here, not with
// seam::set_mortal, which also arms the mutex's own crash points: those are the mutex model's,
// and a thread dead inside lock() still returns into the algorithm. So a client's death points
// are exactly the accesses it calls crash_here() from (its slots, rings and heap).
#pragma once

#include <lockstep/seam.hpp>

namespace lockstep::model {

struct killed {};

// By rl::thread_index(); plain bookkeeping outside Relacy, as seam's robust lists are.
inline bool mortal[8];

inline void crash_here() {
  bool& m = mortal[rl::thread_index()];
  if (!m || rl::rand(2) == 0) return;
  m = false;
  seam::kill_thread();
  throw killed{};
}

// A suite's death bookkeeping: thread 0 is the mortal one. reset() in before(); the thread
// body runs between start(id) and finish(id), inside a try that catches `killed`.
struct death_watch {
  seam::var<int> died;  // whether thread 0 died (written by thread 0 only)

  void reset() {
    seam::robust_reset();
    died.write(0);
  }
  void start(unsigned id) { mortal[id] = id == 0; }
  void finish(unsigned id) {
    if (id != 0) return;
    died.write(seam::is_dead() ? 1 : 0);
    mortal[0] = false;  // after() must not die
  }
  // Runs body(), a thread's work; a death ends it.
  template <class Body>
  void run(unsigned id, Body body) {
    start(id);
    try {
      body();
    } catch (const killed&) {
    }
    finish(id);
  }
};

}  // namespace lockstep::model
