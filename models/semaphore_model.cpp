// models/semaphore_model.cpp: Relacy models of <lockstep/semaphore.hpp>, the production header.
//
// Each suite drives the semaphore through the model seam. Relacy reports DEADLOCK when every
// live thread sleeps (a lost wake-up: a token released while a sleeper stays asleep), DATA RACE
// on an rl::var that a release/acquire pair fails to order, and USER ASSERT FAILED on the
// explicit checks: tokens conserved (never made, never lost, count never above max) and no
// trace left by a timed-out waiter (the sleeper field back to 0, I2).
//
// Bounds: each thread makes one or two calls. 2-thread models search all interleavings,
// 3-thread ones are preemption-bounded (one preemption: two already take 22 million
// iterations, 45 s, for back_to_back_3t) and sampled on random schedules, the 4-thread one
// samples random schedules. These are
// properties of the explored executions, not a proof for unbounded threads and calls
// (docs/semaphore.md says what the bound leaves out). A deadline is "now + 1 s": time never
// passes in the model, so only the futex model's timeout (explored at every timed wait) ends it.
#include "harness/harness.hpp"

#include <lockstep/semaphore.hpp>

namespace {

using lockstep::binary_semaphore;
using lockstep::counting_semaphore;

constexpr auto one_second = std::chrono::seconds(1);

// Tokens conserved and no trace left, once every thread is done: what was released and not
// taken is still counted, and nobody is registered as a sleeper (I2), unless the sleeper
// field saturated, which is sticky by design (only a one-bit field saturates in these models).
template <class S>
void assert_settled(const S& s, long released, long taken) {
  RL_ASSERT(s.value() == released - taken);
  RL_ASSERT(s.waiting() == 0 || (S::max_waiting() == 1 && s.waiting() == 1));
}

// One release, one acquire; the data written before release() is visible after acquire().
// Awake = false: the taker blocks in acquire(), so it may take the token on the fast path,
// while spinning, or after sleeping (no lost wake-up). Awake = true: the taker only
// try_acquires, so nobody sleeps and no futex wake can add an ordering edge of the model's
// own: only the semaphore's release/acquire orders the data.
template <bool Awake>
struct handoff : rl::test_suite<handoff<Awake>, 2> {
  binary_semaphore s{0};
  rl::var<int> data;

  void before() { data($) = 0; }
  void thread(unsigned id) {
    if (id == 0) {
      data($) = 42;
      s.release();
      return;
    }
    if (Awake)
      while (!s.try_acquire()) rl::yield(1, $);
    else
      s.acquire();
    RL_ASSERT(data($) == 42);
  }
  void after() { assert_settled(s, 1, 1); }
};

// A timed wait racing the release: the token is taken by the waiter or left in the count,
// never lost, and a waiter that timed out leaves no registration behind.
struct timeout_race : rl::test_suite<timeout_race, 2> {
  binary_semaphore s{0};
  rl::var<int> taken;

  void before() { taken($) = 0; }
  void thread(unsigned id) {
    if (id == 0) s.release();
    else taken($) = s.try_acquire_for(one_second) ? 1 : 0;
  }
  void after() { assert_settled(s, 1, taken($)); }
};

// Binary never exceeds 1: two releases race on an empty binary semaphore; exactly one
// succeeds, the other is refused with EOVERFLOW and changes nothing.
struct binary_cap : rl::test_suite<binary_cap, 2> {
  binary_semaphore s{0};
  rl::var<int> refused[2];

  void thread(unsigned id) {
    const std::error_code ec = s.release_checked();
    RL_ASSERT(!ec || ec == std::errc::value_too_large);
    RL_ASSERT(s.value() <= 1);
    refused[id]($) = ec ? 1 : 0;
  }
  void after() {
    RL_ASSERT(refused[0]($) + refused[1]($) == 1);
    assert_settled(s, 1, 0);
  }
};

// Binary never exceeds 1 while an acquirer drains it: every accepted release is either taken
// or still counted.
struct binary_drain : rl::test_suite<binary_drain, 3> {
  binary_semaphore s{0};
  rl::var<int> accepted[2];

  void thread(unsigned id) {
    if (id == 2) {
      s.acquire();
      return;
    }
    const std::error_code ec = s.release_checked();
    RL_ASSERT(!ec || ec == std::errc::value_too_large);
    RL_ASSERT(s.value() <= 1);
    accepted[id]($) = ec ? 0 : 1;
  }
  void after() { assert_settled(s, accepted[0]($) + accepted[1]($), 1); }
};

// release(n) wakes n: two threads may both be asleep when one release(2) comes.
template <class S>
struct release_n : rl::test_suite<release_n<S>, 3> {
  S s{0};

  void thread(unsigned id) {
    if (id == 0) s.release(2);
    else s.acquire();
  }
  void after() { assert_settled(s, 2, 2); }
};

// Two releases back to back while two threads sleep: the second must wake although the first
// left count > 0 (the libstdc++/libc++ lost wake-up, GCC PR 104928, LLVM #46357).
// Instantiated for the default semaphore and for Max = 2^31 - 1, whose one sleeper bit
// saturates (SAT) with the first sleeper.
template <class S>
struct back_to_back : rl::test_suite<back_to_back<S>, 3> {
  S s{0};

  void thread(unsigned id) {
    if (id == 0) {
      s.release();
      s.release();
    } else {
      s.acquire();
    }
  }
  void after() { assert_settled(s, 2, 2); }
};

// A timed waiter and a blocking one share the tokens of one release(2): the timed one's
// timeout may race the release and the other's wake-up; nothing is lost or left registered.
struct timeout_and_sleeper : rl::test_suite<timeout_and_sleeper, 3> {
  counting_semaphore<> s{0};
  rl::var<int> timed_taken;

  void before() { timed_taken($) = 0; }
  void thread(unsigned id) {
    if (id == 0) s.release(2);
    else if (id == 1) s.acquire();
    else timed_taken($) = s.try_acquire_for(one_second) ? 1 : 0;
  }
  void after() { assert_settled(s, 2, 1 + timed_taken($)); }
};

// One token, a blocking and a timed waiter: the timed one, woken for the token, must take it
// even if its deadline has passed meanwhile (the acquire loop looks at the count before the
// deadline); leaving would strand the token beside the other sleeper. If the timed waiter gets
// the token it hands it on, so the blocking one always finishes. One preemption (bounded
// search) reaches the interesting executions (both asleep, then the release); random
// schedules go deeper (two preemptions do not finish in five minutes).
struct woken_for_the_token : rl::test_suite<woken_for_the_token, 3> {
  binary_semaphore s{0};
  rl::var<int> timed_taken;

  void before() { timed_taken($) = 0; }
  void thread(unsigned id) {
    if (id == 0) {
      s.release();
    } else if (id == 1) {
      s.acquire();
    } else if (s.try_acquire_for(one_second)) {
      timed_taken($) = 1;
      s.release();
    }
  }
  void after() { assert_settled(s, 1 + timed_taken($), 1 + timed_taken($)); }
};

// Two producers, a blocking and a timed consumer, two calls each (random schedules).
struct mixed : rl::test_suite<mixed, 4> {
  counting_semaphore<4> s{0};
  rl::var<int> timed_taken;

  void before() { timed_taken($) = 0; }
  void thread(unsigned id) {
    if (id < 2) {
      s.release();
      s.release();
    } else if (id == 2) {
      s.acquire();
      s.acquire();
    } else {
      int n = 0;
      for (int i = 0; i < 2; ++i) n += s.try_acquire_for(one_second) ? 1 : 0;
      timed_taken($) = n;
    }
    RL_ASSERT(s.value() <= s.max());
  }
  void after() { assert_settled(s, 4, 2 + timed_taken($)); }
};

using lockstep::model::bounded;
using lockstep::model::full;
using lockstep::model::random;
using lockstep::model::simulate;
using saturating = counting_semaphore<0x7fff'ffff>;  // one sleeper bit: SAT = 1

const lockstep::model::model models[] = {
    {"release_acquire_2t", "release data visible after acquire; no lost wake-up; tokens conserved", 2, full(),
     simulate<handoff<false>>},
    {"handoff_awake_2t", "release/acquire order the data with nobody asleep (no futex edge)", 2, full(),
     simulate<handoff<true>>},
    {"timeout_race_2t", "a timeout racing a release loses no token and leaves no registration", 2, full(),
     simulate<timeout_race>},
    {"binary_cap_2t", "binary never exceeds 1: of two racing releases one is refused, nothing changed", 2, full(),
     simulate<binary_cap>},
    {"binary_drain_3t", "binary never exceeds 1 while drained; accepted releases conserved", 3, bounded(1),
     simulate<binary_drain>},
    {"release_n_3t", "release(2) with two sleepers wakes both", 3, bounded(1), simulate<release_n<counting_semaphore<>>>},
    {"back_to_back_3t", "two releases, two sleepers: the second release wakes although count > 0", 3, bounded(1),
     simulate<back_to_back<counting_semaphore<>>>},
    {"saturated_3t", "same with the sleeper field saturated (Max = 2^31 - 1): sticky, no lost wake-up", 3, bounded(1),
     simulate<back_to_back<saturating>>},
    {"timeout_and_sleeper_3t", "a timed and a blocking waiter share release(2): nothing lost, no trace", 3, bounded(1),
     simulate<timeout_and_sleeper>},
    {"back_to_back_3t_random", "back_to_back_3t on random schedules (deeper than one preemption)", 3,
     random(200000), simulate<back_to_back<counting_semaphore<>>>},
    {"timeout_and_sleeper_3t_random", "timeout_and_sleeper_3t on random schedules", 3, random(200000),
     simulate<timeout_and_sleeper>},
    {"woken_for_the_token_3t", "a timed waiter woken for the only token takes it though its deadline passed", 3,
     bounded(1), simulate<woken_for_the_token>},
    {"woken_for_the_token_3t_random", "woken_for_the_token_3t on random schedules", 3, random(1000000),
     simulate<woken_for_the_token>},
    {"mixed_4t", "2 producers x 2, a blocking and a timed consumer: tokens conserved, no deadlock", 4,
     random(200000), simulate<mixed>},
};

}  // namespace

LOCKSTEP_MODEL_MAIN(models)
