// models/message_queue_model.cpp: Relacy models of the message queue protocol,
// <lockstep/ipc/detail/mq_protocol.hpp> (on ring.hpp's cursors and priority_heap.hpp), the
// production headers, with the queue in model memory instead of a mapping.
//
// Every array the protocol touches (free ring, full ring, heap, slot sizes, priorities, bytes)
// is seam::var cells (model_queue below): Relacy reports any access that the rings'
// release/acquire or the locks do not order as a DATA RACE, a sleeper nobody wakes as
// DEADLOCK, and the explicit checks as USER ASSERT FAILED: every message received exactly once
// with its own bytes and priority (nothing lost, duplicated or torn), FIFO within a priority,
// highest priority first among the messages committed before a receive, and the queue empty
// and its slots all free afterwards.
//
// Bounds: one byte per message, capacity 1-3, 2-3 messages per run. Full search does not end
// (a send or receive is some 20 atomic steps; 45 million 2-thread executions were not enough),
// so 2-thread models are bounded to 3 preemptions (0.2-1.7 s each), 3-thread ones to 1 or 2
// (two_receivers at 2 takes 46 s and 4.5 million executions: it runs at 1 plus 200,000 random
// schedules instead).
// The owner-death models (Q6) kill thread 0 before any array or slot access (harness/death.hpp)
// and run at bound 2 (receiver_death_2t: ~60,000 executions) or, with 3 threads, on 100,000
// random schedules; repairer_death_3t kills threads 0 and 1 and runs at bound 1 (72,000
// executions, 1 s; bound 2 passes too, in 12.5 million executions and 170 s). Random schedules
// did not reach its catch: two deaths at two given steps are rarely drawn together.
// Properties of the explored executions, not a proof for unbounded threads, messages or
// capacities (docs/message-queue.md says what the bound leaves out). Trusted base: the seam's
// (Relacy's futex wake adds a happens-before edge the kernel does not promise; the protocol
// re-reads its cursors with acquire after every wait, so it does not rely on it).
#include "harness/death.hpp"
#include "harness/harness.hpp"

#include <lockstep/ipc/detail/mq_protocol.hpp>

namespace {

namespace seam = lockstep::seam;
using lockstep::ipc::detail::heap_entry;
using lockstep::ipc::detail::init_free_ring;
using lockstep::ipc::detail::mq_control;
using lockstep::ipc::detail::mq_protocol;
using lockstep::ipc::detail::ring_status;
using lockstep::ipc::detail::wait_forever;

constexpr unsigned max_size = 1;  // one byte per message: its identity

// The queue's arrays and slots in model memory: every cell a seam::var.
template <unsigned N>
struct model_queue {
  mq_control control;
  seam::var<std::uint32_t> free_ring[N], full_ring[N];
  seam::var<std::uint32_t> heap_priority[N], heap_slot[N];
  seam::var<std::uint64_t> heap_seq[N];
  seam::var<std::uint32_t> size[N], priority[N];
  seam::var<unsigned char> bytes[N];
};

// Owner death (mq_protocol.hpp Q6; harness/death.hpp): a mortal thread may die before any
// access to the queue's arrays and slots, that is between any two steps of a send or receive
// that the journals must cover.
using lockstep::model::crash_here;

// mq_protocol's Storage over model_queue: it only moves data.
template <unsigned N>
class model_storage {
 public:
  explicit model_storage(model_queue<N>& q) : q_(&q) {}
  std::uint32_t read_free(std::uint32_t i) const { return crash_here(), q_->free_ring[i].read(); }
  void write_free(std::uint32_t i, std::uint32_t v) { crash_here(), q_->free_ring[i].write(v); }
  std::uint32_t read_full(std::uint32_t i) const { return crash_here(), q_->full_ring[i].read(); }
  void write_full(std::uint32_t i, std::uint32_t v) { crash_here(), q_->full_ring[i].write(v); }
  heap_entry read_heap(std::uint32_t i) const {
    crash_here();
    return {q_->heap_priority[i].read(), q_->heap_slot[i].read(), q_->heap_seq[i].read()};
  }
  void write_heap(std::uint32_t i, const heap_entry& e) {
    crash_here();
    q_->heap_priority[i].write(e.priority);
    q_->heap_slot[i].write(e.slot);
    q_->heap_seq[i].write(e.seq);
  }
  void write_size(std::uint32_t slot, std::uint32_t n) { crash_here(), q_->size[slot].write(n); }
  std::uint32_t read_size(std::uint32_t slot) const { return crash_here(), q_->size[slot].read(); }
  void write_priority(std::uint32_t slot, std::uint32_t p) { crash_here(), q_->priority[slot].write(p); }
  std::uint32_t read_priority(std::uint32_t slot) const { return crash_here(), q_->priority[slot].read(); }
  void copy_in(std::uint32_t slot, const void* src, std::uint32_t n) {
    crash_here();
    if (n == 1) q_->bytes[slot].write(*static_cast<const unsigned char*>(src));
  }
  void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const {
    crash_here();
    if (n == 1) *static_cast<unsigned char*>(dst) = q_->bytes[slot].read();
  }

 private:
  model_queue<N>* q_;
};

// The common part of every suite: the queue, its protocol, and send/receive that assert the
// protocol's own result.
template <unsigned N>
struct queue_fixture {
  model_queue<N> q;

  mq_protocol<model_storage<N>> protocol() { return {q.control, model_storage<N>(q), N, max_size}; }
  void init() {
    model_storage<N> s(q);
    init_free_ring(q.control, s, N);
  }
  void send(unsigned char id, std::uint32_t priority) {
    RL_ASSERT(protocol().send(&id, 1, priority, wait_forever) == ring_status::ok);
  }
  struct message {
    unsigned char id;
    std::uint32_t priority;
  };
  message receive() {
    unsigned char b = 0;
    std::uint32_t size = 0, priority = 0;
    RL_ASSERT(protocol().receive(&b, max_size, size, priority, wait_forever) == ring_status::ok);
    RL_ASSERT(size == 1);
    return {b, priority};
  }
  // Afterwards: nothing left, every slot back in the free ring.
  void assert_empty() {
    RL_ASSERT(protocol().num_msg() == 0);
    unsigned char b = 0;
    std::uint32_t size = 0, priority = 0;
    RL_ASSERT(protocol().receive(&b, max_size, size, priority, lockstep::ipc::detail::wait_never) ==
              ring_status::would_block);
  }
};

// Capacity 1, two messages of one priority: the sender finds the queue full and waits on the
// free ring while the receiver may itself wait on the full ring. The slot is reused: the
// receiver's copy-out must happen before the sender's overwrite (Q2; DATA RACE otherwise).
struct reuse : rl::test_suite<reuse, 2>, queue_fixture<1> {
  void before() { init(); }
  void thread(unsigned id) {
    if (id == 0) {
      send(1, 4);
      send(2, 4);
    } else {
      const message a = receive();
      const message b = receive();
      RL_ASSERT(a.id == 1 && a.priority == 4);
      RL_ASSERT(b.id == 2 && b.priority == 4);
    }
  }
  void after() { assert_empty(); }
};

// Priority order (Q3): two messages, the higher second. A receiver that knows both were
// committed before it started (the flag) must get the higher one first; any receiver gets each
// exactly once.
struct priority_order : rl::test_suite<priority_order, 2>, queue_fixture<2> {
  seam::atomic<int> both_sent{0};
  void before() { init(); }
  void thread(unsigned id) {
    if (id == 0) {
      send(1, 1);
      send(2, 2);
      both_sent.store(1, seam::order::release);
    } else {
      const bool after_both = both_sent.load(seam::order::acquire) == 1;
      const message a = receive();
      const message b = receive();
      RL_ASSERT(a.id != b.id && a.id + b.id == 3);
      RL_ASSERT(a.priority == a.id && b.priority == b.id);
      if (after_both) RL_ASSERT(a.id == 2);
    }
  }
  void after() { assert_empty(); }
};

// FIFO within a priority (Q3, H2): three messages of one priority arrive in send order however
// many of them sit in the heap together.
struct fifo : rl::test_suite<fifo, 2>, queue_fixture<3> {
  void before() { init(); }
  void thread(unsigned id) {
    if (id == 0) {
      send(1, 7);
      send(2, 7);
      send(3, 7);
    } else {
      for (unsigned char want = 1; want <= 3; ++want) RL_ASSERT(receive().id == want);
    }
  }
  void after() { assert_empty(); }
};

// Two receivers asleep, two messages (Q4): a receiver woken after the other drained both into
// the heap must take its message from the heap, not sleep again (DEADLOCK otherwise). Each
// message is received exactly once.
struct two_receivers : rl::test_suite<two_receivers, 3>, queue_fixture<2> {
  seam::var<int> got[2];
  void before() { init(); }
  void thread(unsigned id) {
    if (id == 0) {
      send(1, 3);
      send(2, 3);
    } else {
      got[id - 1].write(receive().id);
    }
  }
  void after() {
    RL_ASSERT(got[0].read() + got[1].read() == 3 && got[0].read() != got[1].read());
    assert_empty();
  }
};

// Two senders, capacity 1, one receiver of both: senders wait on the free ring for each other
// and for the receiver; per-sender order is trivially kept, nothing lost or duplicated.
struct two_senders : rl::test_suite<two_senders, 3>, queue_fixture<1> {
  void before() { init(); }
  void thread(unsigned id) {
    if (id < 2) {
      send(static_cast<unsigned char>(id + 1), id);
    } else {
      const message a = receive();
      const message b = receive();
      RL_ASSERT(a.id + b.id == 3 && a.id != b.id);
      RL_ASSERT(a.priority + 1 == a.id && b.priority + 1 == b.id);
    }
  }
  void after() { assert_empty(); }
};

// A timed receive racing the only send: the receiver may take the message at once, after a
// sleep, or time out (the futex model may end any timed wait, and model time may pass at any
// check); a timed-out receive consumed nothing, so the message is still there afterwards.
struct timeout_race : rl::test_suite<timeout_race, 2>, queue_fixture<1> {
  seam::var<int> got;
  void before() {
    init();
    got.write(0);
  }
  void thread(unsigned id) {
    if (id == 0) {
      send(1, 6);
      return;
    }
    unsigned char b = 0;
    std::uint32_t size = 0, priority = 0;
    const ring_status st = protocol().receive(&b, max_size, size, priority,
                                              lockstep::ipc::detail::wait_until(seam::now() + std::chrono::seconds(1)));
    RL_ASSERT(st == ring_status::ok || st == ring_status::timed_out);
    if (st == ring_status::ok) RL_ASSERT(b == 1 && size == 1 && priority == 6);
    got.write(st == ring_status::ok ? 1 : 0);
  }
  void after() {
    if (got.read() == 0) RL_ASSERT(receive().id == 1);  // still queued: nothing lost
    assert_empty();
  }
};

// --- owner death (Q6) --------------------------------------------------------------------------
// Thread 0 is mortal: it may die at any step of its one call. Thread 1 survives: it sends both
// messages (receiver_death) or its own (sender_death), then receives one, blocking; a lock it
// finds held by the dead thread comes with owner_dead and is repaired (Q6). after() drains the
// rest with try-receives and checks: every message delivered at most once; none missing but
// at most the dead thread's own (a receiver's only if it died after giving the slot back);
// then one more message goes through, and all N slots must be back in the free ring (Q1: a
// slot lost by a bad repair shows as num_msg() > 0).
template <unsigned N>
struct death_fixture : queue_fixture<N>, lockstep::model::death_watch {
  seam::var<int> got[2];  // what each thread received: 0 none, else the id

  void prepare() {  // each suite's before()
    death_watch::reset();
    this->init();
    got[0].write(0);
    got[1].write(0);
  }
  // Drains what is left; returns a bitmask of ids delivered, and asserts none twice.
  unsigned all_delivered() {
    unsigned seen = 0;
    auto add = [&](int id) {
      if (id == 0) return;
      RL_ASSERT((seen & (1u << id)) == 0);  // no duplicate
      seen |= 1u << id;
    };
    add(got[0].read());
    add(got[1].read());
    for (;;) {
      unsigned char b = 0;
      std::uint32_t size = 0, priority = 0;
      const ring_status st =
          this->protocol().receive(&b, max_size, size, priority, lockstep::ipc::detail::wait_never);
      if (st == ring_status::would_block) break;
      RL_ASSERT(st == ring_status::ok && size == 1);
      add(b);
    }
    // One more message through the queue (a slot a dead sender held is filled by the next send,
    // Q6), then every slot must be free again (Q1).
    this->send(3, 0);
    RL_ASSERT(this->receive().id == 3);
    RL_ASSERT(this->protocol().num_msg() == 0);
    return seen;
  }
};

// The receiver dies anywhere in a drain (heap push), a pop, the copy-out or the free push.
struct receiver_death : rl::test_suite<receiver_death, 2>, death_fixture<2> {
  void before() { prepare(); }
  void thread(unsigned id) {
    run(id, [&] {
      if (id == 1) {
        send(1, 1);
        send(2, 5);  // higher: its drain moves the heap's root (H3)
      }
      got[id].write(receive().id);
    });
  }
  void after() {
    const unsigned seen = all_delivered();
    if (died.read() == 0) RL_ASSERT(seen == 6);  // both, once each
    else RL_ASSERT(seen == 6 || seen == 2 || seen == 4);  // at most the dead receiver's one lost
  }
};

// The sender dies anywhere in its send: after the pop its slot is in its hands (Q6).
struct sender_death : rl::test_suite<sender_death, 2>, death_fixture<2> {
  void before() { prepare(); }
  void thread(unsigned id) {
    run(id, [&] {
      if (id == 0) {
        send(1, 3);
      } else {
        send(2, 3);
        got[1].write(receive().id);
      }
    });
  }
  void after() {
    const unsigned seen = all_delivered();
    RL_ASSERT((seen & 4) != 0);  // the survivor's message, once
    if (died.read() == 0) RL_ASSERT(seen == 6);
  }
};

// A sender asleep on a full queue while another sender dies holding the queue's only slot
// (capacity 1): the sleeper's relock repairs the journal and must fill the kept slot, not
// wait for the free ring, which stays empty (DEADLOCK otherwise: the receiver waits for it).
// Thread 0 (mortal) sends 1; thread 1 sends 2 and 3; thread 2 receives two.
struct sender_death_waiter : rl::test_suite<sender_death_waiter, 3>, queue_fixture<1>, lockstep::model::death_watch {
  seam::var<int> got[2];
  void before() {
    death_watch::reset();
    init();
  }
  void thread(unsigned id) {
    run(id, [&] {
      if (id == 0) send(1, 0);
      if (id == 1) {
        send(2, 0);
        send(3, 0);
      }
      if (id == 2) {
        got[0].write(receive().id);
        got[1].write(receive().id);
      }
    });
  }
  void after() {
    unsigned seen = (1u << got[0].read()) | (1u << got[1].read());
    RL_ASSERT(got[0].read() != got[1].read());
    for (;;) {
      unsigned char b = 0;
      std::uint32_t size = 0, priority = 0;
      if (protocol().receive(&b, max_size, size, priority, lockstep::ipc::detail::wait_never) != ring_status::ok) break;
      RL_ASSERT((seen & (1u << b)) == 0);
      seen |= 1u << b;
    }
    RL_ASSERT((seen & 12) == 12);  // the survivor's two, once each
    if (died.read() == 0) RL_ASSERT(seen == 14);
    send(4, 0);  // the kept slot, if any, filled
    RL_ASSERT(receive().id == 4);
    RL_ASSERT(protocol().num_msg() == 0);
  }
};

using lockstep::model::bounded;
using lockstep::model::random;
// A repairer dies too (priority_heap.hpp H4). Three messages are queued before the threads
// start (priorities 1, 5, 3: the drain's pushes move the heap's root). Threads 0 and 1 each
// receive one and may die at any step, thread 1 also in its repair of what thread 0 left
// (heap_restore, heap_order's sift-downs and their journal); thread 2 survives and receives one,
// repairing what the others left. after() drains the rest and checks: no message twice, at most
// one lost per dead receiver; then one more message through, and every slot free (Q1).
struct repairer_death : rl::test_suite<repairer_death, 3>, queue_fixture<3> {
  seam::var<int> got[3];
  seam::var<int> died[2];

  void before() {
    for (bool& m : lockstep::model::mortal) m = false;
    seam::robust_reset();
    init();
    for (auto& g : got) g.write(0);
    for (auto& d : died) d.write(0);
    send(1, 1);
    send(2, 5);
    send(3, 3);
  }
  void thread(unsigned id) {
    lockstep::model::mortal[id] = id < 2;
    try {
      got[id].write(receive().id);
    } catch (const lockstep::model::killed&) {
    }
    if (id < 2) {
      died[id].write(seam::is_dead() ? 1 : 0);
      lockstep::model::mortal[id] = false;  // after() must not die
    }
  }
  void after() {
    unsigned seen = 0, count = 0;
    auto add = [&](int id) {
      if (id == 0) return;
      RL_ASSERT((seen & (1u << id)) == 0);  // no duplicate
      seen |= 1u << id;
      ++count;
    };
    for (auto& g : got) add(g.read());
    for (;;) {
      unsigned char b = 0;
      std::uint32_t size = 0, priority = 0;
      const ring_status st = protocol().receive(&b, max_size, size, priority, lockstep::ipc::detail::wait_never);
      if (st == ring_status::would_block) break;
      RL_ASSERT(st == ring_status::ok && size == 1);
      add(b);
    }
    RL_ASSERT(3 - count <= unsigned(died[0].read() + died[1].read()));  // lost: only the dead ones' own
    send(4, 0);
    RL_ASSERT(receive().id == 4);
    RL_ASSERT(protocol().num_msg() == 0);
  }
};

using lockstep::model::simulate;

const lockstep::model::model models[] = {
    {"reuse_2t", "capacity 1, two sends, two blocking receives: slot reuse ordered (no data race), FIFO, no lost wake-up",
     2, bounded(3), simulate<reuse>},
    {"priority_order_2t", "a receive after both commits gets the higher priority first; each message exactly once", 2,
     bounded(3), simulate<priority_order>},
    {"fifo_2t", "three messages of one priority arrive in send order; nothing lost or duplicated", 2, bounded(3),
     simulate<fifo>},
    {"two_receivers_3t", "two sleeping receivers, two sends: both wake and take one each (heap re-checked after a wake)",
     3, bounded(1), simulate<two_receivers>},
    {"receiver_death_2t",
     "a receiver killed at any step (drain, heap push/pop, copy-out, free push): the survivor repairs the journal "
     "(Q6); each message delivered at most once, only the dead one's own lost, every slot free again",
     2, bounded(2), simulate<receiver_death>},
    {"sender_death_2t",
     "a sender killed at any step: its popped slot is kept for the next send (Q6); nothing half-sent delivered, "
     "nothing duplicated, every slot free again",
     2, bounded(2), simulate<sender_death>},
    {"sender_death_waiter_3t",
     "a sender asleep on a full queue while another dies holding its only slot: the relock's repair keeps the slot "
     "and the sleeper fills it (no deadlock); nothing lost but the dead sender's, every slot free again",
     3, random(100000), simulate<sender_death_waiter>},
    {"repairer_death_3t",
     "two receivers killed at any step, the second also in its repair of the first's (H4): the survivor finishes "
     "both; each message delivered at most once, at most one lost per dead receiver, every slot free again",
     3, bounded(1), simulate<repairer_death>},
    {"two_receivers_3t_random", "two_receivers_3t on random schedules (deeper than one preemption)", 3, random(200000),
     simulate<two_receivers>},
    {"two_senders_3t", "two senders on a full queue, one receiver: nothing lost or duplicated, no lost wake-up", 3,
     bounded(2), simulate<two_senders>},
    {"timeout_race_2t", "a timed receive racing the send: it gets the message or times out having consumed nothing", 2,
     bounded(3), simulate<timeout_race>},
};

}  // namespace

LOCKSTEP_MODEL_MAIN(models)
