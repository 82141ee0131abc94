// models/channel_model.cpp: Relacy models of the channel protocol, <lockstep/ipc/detail/ring.hpp>,
// the production header, with the ring in model memory instead of a mapping.
//
// The control block (two lockstep mutexes, two futex cursors, two caches) is the production
// struct compiled against the model seam; the slots are seam::var cells (model_slots below), so
// Relacy reports any access to a slot's size or bytes that the protocol's release/acquire pairs
// do not order as a DATA RACE (a write after an unordered read too), a sleeper that nobody wakes
// as DEADLOCK, and the explicit checks as USER ASSERT FAILED: every message received exactly
// once, with its bytes, in its producer's order; try_* report full/empty only when the channel
// is; a timed-out call changes nothing; the ring is consistent at the end.
//
// Bounds (each model's own line in the table below says what it proves):
//   - every thread makes at most two calls, and a channel holds 1 or 2 messages of 1-2 bytes;
//   - 2-thread models explore every schedule with at most 3 preemptions (bound 3; timed_2t at
//     most 1, plus 200,000 random schedules: each of its deadline checks and timed waits
//     doubles the executions), the 3-thread one too, the 4-thread ones (2 producers x
//     2 consumers) sample 100,000 random schedules each (a full search of even the 2-thread,
//     2-message models did not end within minutes);
//   - the model seam spins 2 steps before sleeping, and Relacy's futex may wake spuriously and
//     time out any timed wait, so every path (won at once, while spinning, after sleeping,
//     timed out) is explored.
//   - the owner-death models kill thread 0 before any slot access (harness/death.hpp), at
//     bound 2.
// These are properties of the explored executions, not a proof for unbounded threads, calls or
// capacities (docs/channel.md says what the bound leaves out).
//
// The trusted base: Relacy's FUTEX_WAKE gives the woken thread a happens-before edge from the
// waker, and its FUTEX_WAIT does a seq_cst fence and an acquire load of the word; Linux promises
// neither. The protocol never relies on them (a woken waiter re-locks and re-reads with acquire),
// but they can hide a weakened order on a path through futex_wait, so the ordering mutants are
// caught by awake_2t and count_3t, where nobody ever sleeps.
#include "harness/death.hpp"
#include "harness/harness.hpp"

#include <lockstep/ipc/detail/ring.hpp>

namespace {

namespace seam = lockstep::seam;
using lockstep::ipc::detail::channel_control;
using lockstep::ipc::detail::message_ring;
using lockstep::ipc::detail::ring_status;
using lockstep::ipc::detail::ring_wait;
using lockstep::ipc::detail::wait_forever;
using lockstep::ipc::detail::wait_never;
using lockstep::ipc::detail::wait_until;

// Models' messages have the full max_msg_size, at most this many bytes.
constexpr unsigned max_model_size = 4;

// The slot array in model memory: every size and byte a seam::var.
template <unsigned Capacity, unsigned MaxSize>
struct model_slots {
  seam::var<std::uint32_t> size[Capacity];
  seam::var<unsigned char> bytes[Capacity][MaxSize];
};

// Owner death (ring.hpp I9; harness/death.hpp): a mortal thread may die before any slot
// access: so inside a reservation, between writing a message and publishing it, and between
// reading one and releasing it.
using lockstep::model::crash_here;

// The ring's Slots policy over model_slots: it only copies, byte by byte. The zero-copy path
// (a producer writing into its reservation, a consumer reading a message in place) is the same
// per-byte access to the slot, so models use copy_in/copy_out for it too.
template <unsigned Capacity, unsigned MaxSize>
class model_slot_view {
 public:
  explicit model_slot_view(model_slots<Capacity, MaxSize>& s) : s_(&s) {}
  void write_size(std::uint32_t slot, std::uint32_t n) const { crash_here(), s_->size[slot].write(n); }
  std::uint32_t read_size(std::uint32_t slot) const { return crash_here(), s_->size[slot].read(); }
  void copy_in(std::uint32_t slot, const void* src, std::uint32_t n) const {
    seam::var<unsigned char>* payload = s_->bytes[slot];
    for (std::uint32_t i = 0; i < n; ++i) crash_here(), payload[i].write(static_cast<const unsigned char*>(src)[i]);
  }
  void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const {
    const seam::var<unsigned char>* payload = s_->bytes[slot];
    for (std::uint32_t i = 0; i < n; ++i) crash_here(), static_cast<unsigned char*>(dst)[i] = payload[i].read();
  }

 private:
  model_slots<Capacity, MaxSize>* s_;
};

// A channel in model memory: the production control block and ring over model slots.
template <unsigned Capacity, unsigned MaxSize>
struct model_channel {
  static_assert(MaxSize <= max_model_size);
  static constexpr unsigned capacity = Capacity;
  static constexpr unsigned max_size = MaxSize;
  using ring_type = message_ring<model_slot_view<Capacity, MaxSize>>;

  channel_control control;
  model_slots<Capacity, MaxSize> slots;

  // A process-local view, as each process of a real channel has its own.
  ring_type ring() { return {control, model_slot_view<Capacity, MaxSize>(slots), Capacity, MaxSize}; }
};

constexpr auto one_second = std::chrono::seconds(1);

// The message `seq` of producer `id`: one byte that names both (bytes beyond the first repeat it).
constexpr unsigned char stamp(unsigned id, unsigned seq) { return static_cast<unsigned char>(16 * id + seq + 1); }
constexpr unsigned producer_of(unsigned char b) { return (b - 1u) / 16; }
constexpr unsigned seq_of(unsigned char b) { return (b - 1u) % 16; }

template <class Ring>
ring_status send_stamp(Ring& r, unsigned id, unsigned seq, ring_wait how) {
  unsigned char msg[max_model_size];
  for (auto& b : msg) b = stamp(id, seq);
  return r.send(msg, r.max_msg_size(), how);
}

// Receives with `how`; ok: the message's stamp (its bytes all agree and it has the full size).
template <class Ring>
ring_status receive_stamp(Ring& r, ring_wait how, unsigned char& got) {
  unsigned char buf[max_model_size] = {};
  std::uint32_t size = 0;
  const ring_status s = r.receive(buf, r.max_msg_size(), size, how);
  if (s != ring_status::ok) return s;
  RL_ASSERT(size == r.max_msg_size());
  for (std::uint32_t i = 1; i < size; ++i) RL_ASSERT(buf[i] == buf[0]);
  got = buf[0];
  return s;
}

// The zero-copy path: reserve, write in place, commit (after abandoning one reservation when
// `abandon_first`: an abandoned reservation sends nothing and keeps the slot free).
template <class Ring>
ring_status send_in_place(Ring& r, unsigned id, unsigned seq, ring_wait how, bool abandon_first) {
  typename Ring::ticket t;
  ring_status s = r.reserve(how, t);
  if (s != ring_status::ok) return s;
  if (abandon_first) {
    RL_ASSERT(r.abandon(t) == ring_status::ok);
    s = r.reserve(how, t);
    if (s != ring_status::ok) return s;
  }
  unsigned char msg[max_model_size];
  for (auto& b : msg) b = stamp(id, seq);
  r.slots().copy_in(t.slot, msg, r.max_msg_size());
  return r.commit(t, r.max_msg_size());
}

// The zero-copy path: acquire, read in place, release.
template <class Ring>
ring_status receive_in_place(Ring& r, ring_wait how, unsigned char& got) {
  typename Ring::ticket t;
  const ring_status s = r.acquire(how, t);
  if (s != ring_status::ok) return s;
  RL_ASSERT(t.size == r.max_msg_size());
  unsigned char buf[max_model_size] = {};
  r.slots().copy_out(t.slot, buf, t.size);
  for (std::uint32_t i = 1; i < t.size; ++i) RL_ASSERT(buf[i] == buf[0]);
  got = buf[0];
  return r.release(t);
}

// --- awake_2t -------------------------------------------------------------------------------
// One producer, one consumer, capacity 1, two messages, nobody ever sleeps: both only try, and
// retry after a yield. No futex call happens, so no model edge can stand in for the protocol's
// own orders: publish's release -> the consumer's acquire load of tail orders the slot writes
// before the reads, and release's release -> the producer's acquire load of head orders the
// consumer's reads before the producer's second write into the same slot. The first message
// goes by copy (send/receive), the second by the zero-copy path (reserve, with one abandoned
// reservation first; in-place read), so both paths are checked.
struct awake : rl::test_suite<awake, 2> {
  model_channel<1, 1> ch;

  void thread(unsigned id) {
    auto r = ch.ring();
    if (id == 0) {
      while (send_stamp(r, 0, 0, wait_never) == ring_status::would_block) rl::yield(1, $);
      ring_status s;
      while ((s = send_in_place(r, 0, 1, wait_never, true)) == ring_status::would_block) rl::yield(1, $);
      RL_ASSERT(s == ring_status::ok);
    } else {
      unsigned char got = 0;
      ring_status s;
      while ((s = receive_stamp(r, wait_never, got)) == ring_status::would_block) rl::yield(1, $);
      RL_ASSERT(s == ring_status::ok && got == stamp(0, 0));
      while ((s = receive_in_place(r, wait_never, got)) == ring_status::would_block) rl::yield(1, $);
      RL_ASSERT(s == ring_status::ok && got == stamp(0, 1));
    }
  }
  void after() { RL_ASSERT(ch.ring().num_msg() == 0); }
};

// --- blocking_2t ----------------------------------------------------------------------------
// One producer, one consumer, capacity 1, two messages, both blocking: the consumer may sleep
// on an empty channel and the producer on a full one (its second send), each woken by the
// other's exchange (no lost wake-up on either edge: DEADLOCK otherwise). Bytes and order as sent.
struct blocking : rl::test_suite<blocking, 2> {
  model_channel<1, 1> ch;

  void thread(unsigned id) {
    auto r = ch.ring();
    if (id == 0) {
      for (unsigned i = 0; i < 2; ++i) RL_ASSERT(send_stamp(r, 0, i, wait_forever) == ring_status::ok);
    } else {
      for (unsigned i = 0; i < 2; ++i) {
        unsigned char got = 0;
        RL_ASSERT(receive_stamp(r, wait_forever, got) == ring_status::ok);
        RL_ASSERT(got == stamp(0, i));
      }
    }
  }
  void after() { RL_ASSERT(ch.ring().num_msg() == 0); }
};

// --- try_exact_2t ---------------------------------------------------------------------------
// try_send reports full, and try_receive empty, only when the channel is full or empty (I6):
// the two threads step through a script with an atomic flag (so that what is in the channel
// is known at each call), capacity 1:
//   producer: try_send m0 -> ok (empty)        | consumer: try_receive -> m0 (it is there)
//             try_send m1 -> ok (m0 was taken) |           try_receive -> m1
//             try_send m2 -> would_block (full)|           try_receive -> would_block (empty)
// Each side's first call after the other moved finds its cache stale: it must re-read.
struct try_exact : rl::test_suite<try_exact, 2> {
  model_channel<1, 1> ch;
  rl::atomic<int> step;

  void before() { step($).store(0, rl::mo_relaxed); }
  void wait_step(int s) {
    while (step($).load(rl::mo_acquire) != s) rl::yield(1, $);
  }
  void thread(unsigned id) {
    auto r = ch.ring();
    if (id == 0) {
      RL_ASSERT(send_stamp(r, 0, 0, wait_never) == ring_status::ok);
      step($).store(1, rl::mo_release);
      wait_step(2);
      RL_ASSERT(send_stamp(r, 0, 1, wait_never) == ring_status::ok);
      RL_ASSERT(send_stamp(r, 0, 2, wait_never) == ring_status::would_block);
      step($).store(3, rl::mo_release);
    } else {
      unsigned char got = 0;
      wait_step(1);
      RL_ASSERT(receive_stamp(r, wait_never, got) == ring_status::ok && got == stamp(0, 0));
      RL_ASSERT(receive_stamp(r, wait_never, got) == ring_status::would_block);
      step($).store(2, rl::mo_release);
      wait_step(3);
      RL_ASSERT(receive_stamp(r, wait_never, got) == ring_status::ok && got == stamp(0, 1));
      RL_ASSERT(receive_stamp(r, wait_never, got) == ring_status::would_block);
    }
  }
  void after() { RL_ASSERT(ch.ring().num_msg() == 0); }
};

// --- timed_2t -------------------------------------------------------------------------------
// Timed calls on both sides, capacity 1, two messages: each timed_send / timed_receive may
// succeed at once, after spinning or sleeping, or time out (at the deadline check, in the
// futex wait, or re-locking after a wake-up). A timed-out call changes nothing: every message
// sent is received once or still in the channel, in order; and a timeout leaves nothing (a
// WAITERS bit at most) that strands the other side.
struct timed : rl::test_suite<timed, 2> {
  model_channel<1, 1> ch;
  rl::var<int> sent, received;
  rl::var<int> last_seq;

  void before() {
    sent($) = 0;
    received($) = 0;
    last_seq($) = -1;
  }
  void thread(unsigned id) {
    auto r = ch.ring();
    int n = 0;
    for (unsigned i = 0; i < 2; ++i) {
      if (id == 0) {
        const ring_status s = send_stamp(r, 0, i, wait_until(seam::now() + one_second));
        RL_ASSERT(s == ring_status::ok || s == ring_status::timed_out);
        n += s == ring_status::ok;
      } else {
        unsigned char got = 0;
        const ring_status s = receive_stamp(r, wait_until(seam::now() + one_second), got);
        RL_ASSERT(s == ring_status::ok || s == ring_status::timed_out);
        if (s == ring_status::ok) {
          RL_ASSERT(producer_of(got) == 0 && int(seq_of(got)) > last_seq($));  // FIFO
          last_seq($) = int(seq_of(got));
          ++n;
        }
      }
    }
    (id == 0 ? sent : received)($) = n;
  }
  void after() {
    auto r = ch.ring();
    RL_ASSERT(int(r.num_msg()) == sent($) - received($));
    // Whatever is left is the last message sent, and it can still be taken.
    unsigned char got = 0;
    const ring_status s = receive_stamp(r, wait_never, got);
    RL_ASSERT(s == (sent($) > received($) ? ring_status::ok : ring_status::would_block));
  }
};

// --- count_3t -------------------------------------------------------------------------------
// get_num_msg's snapshot stays within what can be in the channel: one message passes from a
// producer to a consumer (both only trying: nobody sleeps) while an observer takes two
// snapshots; each must be 0 or 1. Loading head with acquire before tail is what keeps a
// snapshot from seeing the consumer's head ahead of the producer's tail (clamped, that would
// read as the full capacity, 2).
struct count : rl::test_suite<count, 3> {
  model_channel<2, 1> ch;

  void thread(unsigned id) {
    auto r = ch.ring();
    if (id == 0) {
      RL_ASSERT(send_stamp(r, 0, 0, wait_never) == ring_status::ok);
    } else if (id == 1) {
      unsigned char got = 0;
      while (receive_stamp(r, wait_never, got) == ring_status::would_block) rl::yield(1, $);
      RL_ASSERT(got == stamp(0, 0));
    } else {
      for (int i = 0; i < 2; ++i) RL_ASSERT(r.num_msg() <= 1);
    }
  }
  void after() { RL_ASSERT(ch.ring().num_msg() == 0); }
};

// --- mpmc_4t --------------------------------------------------------------------------------
// Two producers x two consumers, capacity Capacity, two messages per producer, everyone
// blocking (with capacity 1 both sides sleep, several at once: wake-all). Producer 0 sends by
// copy, producer 1 by reservation; consumers read in place and, still holding the message (so
// receive_lock orders the log like the head positions), log its stamp. At the end: four
// messages logged, each exactly once (nothing lost or duplicated), each producer's in the
// order sent (per-producer FIFO), the channel empty.
template <unsigned Capacity>
struct mpmc : rl::test_suite<mpmc<Capacity>, 4> {
  model_channel<Capacity, 1> ch;
  rl::var<int> logged;
  rl::var<unsigned char> log[4];

  void before() { logged($) = 0; }
  void thread(unsigned id) {
    auto r = ch.ring();
    if (id < 2) {
      for (unsigned i = 0; i < 2; ++i) {
        const ring_status s = id == 0 ? send_stamp(r, id, i, wait_forever) : send_in_place(r, id, i, wait_forever, false);
        RL_ASSERT(s == ring_status::ok);
      }
      return;
    }
    for (int i = 0; i < 2; ++i) {
      typename decltype(ch)::ring_type::ticket t;
      RL_ASSERT(r.acquire(wait_forever, t) == ring_status::ok);
      unsigned char got = 0;
      r.slots().copy_out(t.slot, &got, 1);
      const int n = logged($);
      RL_ASSERT(n < 4);
      log[n]($) = got;
      logged($) = n + 1;
      RL_ASSERT(r.release(t) == ring_status::ok);
    }
  }
  void after() {
    RL_ASSERT(logged($) == 4);
    int next_seq[2] = {0, 0};
    for (int i = 0; i < 4; ++i) {
      const unsigned char m = log[i]($);
      const unsigned p = producer_of(m);
      RL_ASSERT(p < 2);
      RL_ASSERT(int(seq_of(m)) == next_seq[p]);  // once each, in the producer's order
      ++next_seq[p];
    }
    RL_ASSERT(ch.ring().num_msg() == 0);
  }
};

// --- owner death (I9) ----------------------------------------------------------------------
// Thread 0 is mortal: it may die at any step of its one call, holding its end's lock. Thread 1
// survives: its calls find the lock with owner_dead, repair the end (re-validate, consistent())
// and must succeed. after() drains the rest with try-receives and checks: every message at
// most once, with its own bytes (a half-written one is never published); none missing but the
// dead thread's own (a consumer's only if it died after its release); the channel empty.
// Capacity 2, two messages of 2 bytes.
struct death_base : lockstep::model::death_watch {
  model_channel<2, 2> ch;
  seam::var<int> got[2];  // what each thread received: 0 none, else the stamp

  void prepare() {  // each suite's before()
    death_watch::reset();
    got[0].write(0);
    got[1].write(0);
  }
  void receive_into(unsigned id, bool in_place) {
    auto r = ch.ring();
    unsigned char b = 0;
    RL_ASSERT((in_place ? receive_in_place(r, wait_forever, b) : receive_stamp(r, wait_forever, b)) == ring_status::ok);
    got[id].write(b);
  }
  // Drains the rest; a bitmask of the producers' ids delivered (stamp(id, 0)), none twice.
  unsigned all_delivered() {
    unsigned seen = 0;
    auto add = [&](int b) {
      if (b == 0) return;
      RL_ASSERT(seq_of(static_cast<unsigned char>(b)) == 0);
      const unsigned bit = 1u << producer_of(static_cast<unsigned char>(b));
      RL_ASSERT((seen & bit) == 0);
      seen |= bit;
    };
    add(got[0].read());
    add(got[1].read());
    auto r = ch.ring();
    for (;;) {
      unsigned char b = 0;
      const ring_status st = receive_stamp(r, wait_never, b);
      if (st == ring_status::would_block) break;
      RL_ASSERT(st == ring_status::ok);
      add(b);
    }
    RL_ASSERT(r.num_msg() == 0);
    return seen;
  }
};

// The producer dies anywhere in a reservation (the zero-copy send) or a copying send.
struct producer_death : rl::test_suite<producer_death, 2>, death_base {
  void before() { prepare(); }
  void thread(unsigned id) {
    run(id, [&] {
      auto r = ch.ring();
      if (id == 0) {
        (void)send_in_place(r, 0, 0, wait_forever, false);
      } else {
        RL_ASSERT(send_stamp(r, 1, 0, wait_forever) == ring_status::ok);
        receive_into(1, false);
      }
    });
  }
  void after() {
    const unsigned seen = all_delivered();
    RL_ASSERT((seen & 2) != 0);  // the survivor's message
    if (died.read() == 0) RL_ASSERT(seen == 3);
  }
};

// The consumer dies anywhere in an in-place receive (holding the message) or after it.
struct consumer_death : rl::test_suite<consumer_death, 2>, death_base {
  void before() { prepare(); }
  void thread(unsigned id) {
    run(id, [&] {
      if (id == 1) {
        auto r = ch.ring();
        RL_ASSERT(send_stamp(r, 0, 0, wait_forever) == ring_status::ok);
        RL_ASSERT(send_stamp(r, 1, 0, wait_forever) == ring_status::ok);
      }
      receive_into(id, id == 0);
    });
  }
  void after() {
    const unsigned seen = all_delivered();
    if (died.read() == 0) RL_ASSERT(seen == 3);
    else RL_ASSERT(seen != 0);  // at most the dead consumer's one lost
  }
};

using lockstep::model::bounded;
using lockstep::model::full;
using lockstep::model::random;
using lockstep::model::simulate;

// Cheap models first: a mutant binary stops at the first model that catches it (try_exact_2t
// before awake_2t: a try that trusts a stale cache fails its check there, instead of spinning
// for ever in awake_2t's retry loop).
const lockstep::model::model models[] = {
    {"try_exact_2t", "try_send/try_receive report full/empty only when the channel is full/empty (I6)", 2,
     bounded(3), simulate<try_exact>},
    {"awake_2t",
     "nobody asleep, cap 1, 2 msgs (copy, then reserve/abandon/commit + in-place): the cursors' release/acquire "
     "alone order every slot access (no data race); bytes and order as sent",
     2, bounded(3), simulate<awake>},
    {"blocking_2t", "cap 1, 2 msgs, both sides block: no lost wake-up on empty->non-empty nor full->not-full", 2,
     bounded(3), simulate<blocking>},
    {"count_3t", "get_num_msg stays in [0, messages that can be inside] while one message passes", 3, bounded(3),
     simulate<count>},
    {"producer_death_2t",
     "a producer killed at any step of a reservation: the survivor takes the lock with owner_dead, repairs, "
     "proceeds; nothing half-written delivered, nothing duplicated, the channel empty at the end",
     2, bounded(2), simulate<producer_death>},
    {"consumer_death_2t",
     "a consumer killed at any step of an in-place receive: its message goes to the survivor unless it was "
     "released; nothing duplicated, at most one lost",
     2, bounded(2), simulate<consumer_death>},
    {"timed_2t", "timed send/receive racing: a timeout changes nothing and strands nobody; FIFO", 2, bounded(1),
     simulate<timed>},
    {"timed_2t_random", "timed_2t on random schedules (deeper than one preemption)", 2, random(200000),
     simulate<timed>},
    {"mpmc_4t_cap1",
     "2 producers x 2 consumers, cap 1, all blocking: nothing lost or duplicated, per-producer FIFO, no data race, "
     "no lost wake-up",
     4, random(100000), simulate<mpmc<1>>},
    {"mpmc_4t_cap2", "the same with cap 2 (producers and consumers in different slots at once)", 4, random(100000),
     simulate<mpmc<2>>},
};

}  // namespace

LOCKSTEP_MODEL_MAIN(models)
