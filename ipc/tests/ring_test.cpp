// ipc/tests/ring_test.cpp: unit tests of the channel protocol, <lockstep/ipc/detail/ring.hpp>,
// on a control block and slots in this process's memory: what the channel's API cannot reach
// directly. Positions wrapping around 2^31, the cursor caches (I4) holding garbage, counts and
// sizes out of range (I1, I7), the lock left released after every failure, reservations used
// wrongly, and sleeping while holding the other end's lock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/detail/ring.hpp>
#include <lockstep/ipc/segment.hpp>

#include "support.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace seam = lockstep::seam;
using lockstep::ipc::mapped_slots;
using lockstep::ipc::detail::channel_control;
using lockstep::ipc::detail::message_ring;
using lockstep::ipc::detail::ring_status;
using lockstep::ipc::detail::wait_forever;
using lockstep::ipc::detail::wait_never;
using lockstep::ipc::detail::wait_until;
using lockstep::test::futex_calls;

namespace {

// A ring in ordinary memory: `capacity` slots of `max` bytes, stride 64 per 56 bytes.
struct test_ring {
  static constexpr std::uint32_t stride = 128;
  std::uint32_t capacity;
  std::uint32_t max;
  std::unique_ptr<channel_control> control = std::make_unique<channel_control>();
  std::vector<std::byte> storage;
  message_ring<mapped_slots> ring;

  explicit test_ring(std::uint32_t cap, std::uint32_t max_size = 100, std::uint32_t start = 0)
      : capacity(cap), max(max_size), storage(std::size_t(cap) * stride),
        ring(*control, mapped_slots(storage.data(), stride), cap, max_size) {
    control->tail.store(start, seam::order::relaxed);
    control->head.store(start, seam::order::relaxed);
    control->head_seen.write(start);
    control->tail_seen.write(start);
  }

  ring_status send(const std::string& s, lockstep::ipc::detail::ring_wait how = wait_never) {
    return ring.send(s.data(), std::uint32_t(s.size()), how);
  }
  // The next message, or "<status N>" if none could be received.
  std::string receive(lockstep::ipc::detail::ring_wait how = wait_never) {
    std::string buf(max, '\0');
    std::uint32_t n = 0;
    const ring_status st = ring.receive(buf.data(), max, n, how);
    if (st != ring_status::ok) return "<status " + std::to_string(int(st)) + ">";
    buf.resize(n);
    return buf;
  }
  // Neither lock is left held by anyone.
  bool unlocked() {
    if (!control->send_lock.try_lock()) return false;
    control->send_lock.unlock();
    if (!control->receive_lock.try_lock()) return false;
    control->receive_lock.unlock();
    return true;
  }
};

const std::string would_block = "<status " + std::to_string(int(ring_status::would_block)) + ">";
const std::string corrupt = "<status " + std::to_string(int(ring_status::corrupt)) + ">";

}  // namespace

TEST_CASE("exact capacity, FIFO, full and empty reported by the try forms, lock released after each") {
  test_ring r(3);
  CHECK(r.receive() == would_block);
  CHECK(r.send("a") == ring_status::ok);
  CHECK(r.send("bb") == ring_status::ok);
  CHECK(r.send("") == ring_status::ok);
  CHECK(r.ring.num_msg() == 3);
  CHECK(r.send("x") == ring_status::would_block);
  CHECK(r.unlocked());
  CHECK(r.receive() == "a");
  CHECK(r.send("ccc") == ring_status::ok);
  CHECK(r.receive() == "bb");
  CHECK(r.receive() == "");
  CHECK(r.receive() == "ccc");
  CHECK(r.receive() == would_block);
  CHECK(r.ring.num_msg() == 0);
  CHECK(r.unlocked());
}

TEST_CASE("positions wrap at 2 * capacity: FIFO and counts hold across the wrap, whatever the start") {
  for (std::uint32_t cap : {1u, 2u, 3u, 5u}) {
    for (std::uint32_t start = 0; start < 2 * cap; ++start) {
      INFO("capacity ", cap, ", start ", start);
      test_ring r(cap, 100, start);
      int sent = 0;
      int received = 0;
      for (int round = 0; round < 4 * int(cap) + 3; ++round) {
        while (r.send(std::to_string(sent)) == ring_status::ok) ++sent;
        CHECK(r.ring.num_msg() == cap);
        CHECK(r.receive() == std::to_string(received++));
        CHECK(r.ring.num_msg() == cap - 1);
      }
      while (received < sent) CHECK(r.receive() == std::to_string(received++));
      CHECK(r.receive() == would_block);
      CHECK(r.control->tail.load(seam::order::relaxed) == (start + std::uint32_t(sent)) % (2 * cap));
      CHECK(r.control->head.load(seam::order::relaxed) == (start + std::uint32_t(sent)) % (2 * cap));
    }
  }
}

TEST_CASE("capacity 2^30, the largest: positions up to 2^31 - 1, full and empty still told apart at the wrap") {
  // Only the cursors matter here: no slot is touched when the ring says full or empty.
  constexpr std::uint32_t cap = lockstep::ipc::detail::max_ring_capacity;
  constexpr std::uint32_t last = 2 * cap - 1;  // 2^31 - 1
  test_ring r(1, 100, 0);
  message_ring<mapped_slots> big(*r.control, mapped_slots(r.storage.data(), 0), cap, 100);
  r.control->head.store(last, seam::order::relaxed);
  r.control->tail.store(cap - 1, seam::order::relaxed);  // head + cap, wrapped: full
  r.control->head_seen.write(last);
  CHECK(big.send("x", 1, wait_never) == ring_status::would_block);
  CHECK(big.num_msg() == cap);
  r.control->tail.store(last, seam::order::relaxed);  // empty
  r.control->tail_seen.write(last);
  std::uint32_t n = 0;
  char buf[100];
  CHECK(big.receive(buf, 100, n, wait_never) == ring_status::would_block);
  CHECK(big.num_msg() == 0);
}

TEST_CASE("a position at or beyond 2 * capacity is corrupt, in either cursor; in a cache it is only refreshed") {
  test_ring r(3);
  CHECK(r.send("a") == ring_status::ok);
  r.control->tail.store(6, seam::order::relaxed);
  CHECK(r.send("x") == ring_status::corrupt);
  CHECK(r.receive() == corrupt);
  r.control->tail.store(1, seam::order::relaxed);
  r.control->head.store(7, seam::order::relaxed);
  CHECK(r.receive() == corrupt);
  // A producer reads head only when its cache (I4) shows no room: it fills the two slots the
  // cache vouches for, then sees the bad head.
  CHECK(r.send("b") == ring_status::ok);
  CHECK(r.send("c") == ring_status::ok);
  CHECK(r.send("d") == ring_status::corrupt);
  r.control->head.store(0, seam::order::relaxed);
  CHECK(r.receive() == "a");
  r.control->head_seen.write(6);  // caches out of range: refreshed, harmless
  r.control->tail_seen.write(100);
  CHECK(r.send("e") == ring_status::ok);
  CHECK(r.receive() == "b");
  CHECK(r.receive() == "c");
  CHECK(r.receive() == "e");
  CHECK(r.unlocked());
}

TEST_CASE("garbage in the cursor caches is never trusted beyond the cursors (I4)") {
  test_ring r(2);
  CHECK(r.send("one") == ring_status::ok);
  // A cache claiming more room or more data than there is: re-read and checked.
  r.control->head_seen.write(0x1234'5678u);
  r.control->tail_seen.write(0x0765'4321u);
  CHECK(r.send("two") == ring_status::ok);
  CHECK(r.control->head_seen.read() == 0);  // refreshed from head
  r.control->head_seen.write(0x5555'5555u);
  CHECK(r.send("three") == ring_status::would_block);
  CHECK(r.receive() == "one");
  r.control->tail_seen.write(0x7fff'ffffu);
  CHECK(r.receive() == "two");
  CHECK(r.receive() == would_block);
  CHECK(r.unlocked());
}

TEST_CASE("a count out of range written into the cursors: corrupt for both ends, nothing moved, no lock held (I1)") {
  test_ring r(4);
  CHECK(r.send("keep") == ring_status::ok);
  // head 0: count 5 > capacity 4. (A peer that also rewrote head_seen to agree could make one
  // producer fill a slot, always inside the ring; the consumers then see the count.)
  r.control->tail.store(5, seam::order::relaxed);
  CHECK(r.send("x") == ring_status::corrupt);
  CHECK(r.send("x", wait_forever) == ring_status::corrupt);
  CHECK(r.receive() == corrupt);
  CHECK(r.receive(wait_forever) == corrupt);
  CHECK(r.ring.num_msg() == 4);  // a snapshot is clamped to the capacity
  CHECK(r.control->head.load(seam::order::relaxed) == 0);
  CHECK(r.unlocked());
  r.control->tail.store(0x4000'0000u, seam::order::relaxed);
  CHECK(r.send("x") == ring_status::corrupt);
  CHECK(r.receive() == corrupt);
  // Repaired, the ring works again and the message is still there.
  r.control->tail.store(1, seam::order::relaxed);
  r.control->tail_seen.write(0);
  r.control->head_seen.write(0);
  CHECK(r.receive() == "keep");
}

TEST_CASE("a slot size out of range: corrupt, the message is not consumed (I7)") {
  test_ring r(2, 16);
  CHECK(r.send("abc") == ring_status::ok);
  mapped_slots slots(r.storage.data(), test_ring::stride);
  slots.write_size(0, 17);
  CHECK(r.receive() == corrupt);
  CHECK(r.ring.num_msg() == 1);
  slots.write_size(0, 0xffff'ffffu);
  CHECK(r.receive() == corrupt);
  CHECK(r.unlocked());
  slots.write_size(0, 3);
  CHECK(r.receive() == "abc");
}

TEST_CASE("message_size: a send longer than max queues nothing; a short receive buffer leaves the message") {
  test_ring r(2, 8);
  CHECK(r.send("123456789") == ring_status::message_size);
  CHECK(r.ring.num_msg() == 0);
  CHECK(r.send("12345678") == ring_status::ok);
  char small[7];
  std::uint32_t n = 0;
  CHECK(r.ring.receive(small, 7, n, wait_never) == ring_status::message_size);
  CHECK(r.ring.num_msg() == 1);
  CHECK(r.unlocked());
  CHECK(r.receive() == "12345678");
}

TEST_CASE("reservations: commit, abandon, commit too long, a second reserve on the same thread, another thread's commit") {
  test_ring r(2, 8);
  message_ring<mapped_slots>::ticket t;
  REQUIRE(r.ring.reserve(wait_never, t) == ring_status::ok);
  std::memcpy(r.ring.slots().payload(t.slot), "hi", 2);
  message_ring<mapped_slots>::ticket t2;
  CHECK(r.ring.reserve(wait_never, t2) == ring_status::would_deadlock);
  CHECK(r.ring.commit(t, 9) == ring_status::message_size);  // the reservation stays
  ring_status other = ring_status::ok;
  std::thread([&] { other = r.ring.commit(t, 2); }).join();
  CHECK(other == ring_status::not_owner);
  CHECK(r.ring.num_msg() == 0);
  CHECK(r.ring.commit(t, 2) == ring_status::ok);
  CHECK(r.ring.num_msg() == 1);

  REQUIRE(r.ring.reserve(wait_never, t) == ring_status::ok);
  CHECK(r.ring.abandon(t) == ring_status::ok);
  CHECK(r.ring.abandon(t) == ring_status::not_owner);
  CHECK(r.ring.num_msg() == 1);
  CHECK(r.receive() == "hi");
  CHECK(r.unlocked());
}

TEST_CASE("in-place receive: acquire, read, release; a second acquire on the same thread; another thread's release") {
  test_ring r(2, 8);
  CHECK(r.send("abc") == ring_status::ok);
  message_ring<mapped_slots>::ticket t;
  REQUIRE(r.ring.acquire(wait_never, t) == ring_status::ok);
  CHECK(t.size == 3);
  CHECK(std::memcmp(r.ring.slots().payload(t.slot), "abc", 3) == 0);
  message_ring<mapped_slots>::ticket t2;
  CHECK(r.ring.acquire(wait_never, t2) == ring_status::would_deadlock);
  ring_status other = ring_status::ok;
  std::thread([&] { other = r.ring.release(t); }).join();
  CHECK(other == ring_status::not_owner);
  CHECK(r.ring.num_msg() == 1);
  CHECK(r.ring.release(t) == ring_status::ok);
  CHECK(r.ring.num_msg() == 0);
  CHECK(r.unlocked());
}

TEST_CASE("waiting while holding the other end's lock would be forever: would_deadlock instead of sleeping") {
  test_ring r(1, 8);
  // Holding a reservation (send_lock), a blocking receive on an empty ring.
  message_ring<mapped_slots>::ticket t;
  REQUIRE(r.ring.reserve(wait_never, t) == ring_status::ok);
  CHECK(r.receive(wait_forever) == "<status " + std::to_string(int(ring_status::would_deadlock)) + ">");
  CHECK(r.ring.abandon(t) == ring_status::ok);
  // Holding an in-place message (receive_lock) of a full ring, a blocking send.
  CHECK(r.send("x") == ring_status::ok);
  REQUIRE(r.ring.acquire(wait_never, t) == ring_status::ok);
  CHECK(r.send("y", wait_forever) == ring_status::would_deadlock);
  CHECK(r.ring.release(t) == ring_status::ok);
  CHECK(r.unlocked());
}

TEST_CASE("blocking: a deadline already past never sleeps; a sleeper is woken by the other end") {
  test_ring r(1, 8);
  CHECK(r.send("x") == ring_status::ok);
  {
    const futex_calls calls;
    CHECK(r.send("y", wait_until(seam::now() - 1s)) == ring_status::timed_out);
    CHECK(calls.waits() == 0);
    CHECK(r.unlocked());
  }
  {
    const futex_calls calls;
    ring_status sent = ring_status::would_block;
    std::thread producer([&] { sent = r.send("y", wait_forever); });
    REQUIRE(lockstep::test::eventually([&] { return calls.waits() > 0; }));
    CHECK(r.receive() == "x");  // frees the slot: the exchange sees WAITERS and wakes
    producer.join();
    CHECK(sent == ring_status::ok);
    CHECK(calls.wakes() == 1);
    CHECK(r.receive() == "y");
  }
  {
    const futex_calls calls;
    std::string got;
    std::thread consumer([&] { got = r.receive(wait_forever); });
    REQUIRE(lockstep::test::eventually([&] { return calls.waits() > 0; }));
    CHECK(r.send("z") == ring_status::ok);
    consumer.join();
    CHECK(got == "z");
    CHECK(calls.wakes() == 1);
  }
  CHECK(r.unlocked());
}

TEST_CASE("unlocking a lock whose word someone else rewrote: corrupt, and the word is left alone (no abort)") {
  lockstep::interprocess_mutex m;
  m.lock();
  auto* word = reinterpret_cast<std::uint32_t*>(&m);
  const std::uint32_t mine = *word;
  *word = 0x3fff'fffe;
  CHECK(lockstep::ipc::detail::unlock(m) == ring_status::corrupt);
  CHECK(*word == 0x3fff'fffe);
  *word = mine;
  CHECK(lockstep::ipc::detail::unlock(m) == ring_status::ok);
}
