// ipc/tests/message_queue_test.cpp: unit tests of <lockstep/ipc/message_queue.hpp>: every
// behaviour and error its contract names: create / open / open_or_create and their errors,
// attributes, delivery order (priority, FIFO within one), priority and size errors that queue
// or consume nothing, full and empty in try / timed / blocking use (threads and processes),
// span and duration forms, no system call on an uncontended send or receive, inspection, and
// refusal of foreign and corrupt segments, each corruption written through an independent
// mapping as a broken peer would, ending in its documented error and never in a crash or hang.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/message_queue.hpp>

#include "ipc_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using lockstep::ipc::message_queue;
using lockstep::test::error_of;
using lockstep::test::scoped_name;
namespace ipc = lockstep::ipc;
namespace detail = lockstep::ipc::detail;

namespace {

void send_text(message_queue& q, const std::string& s, unsigned prio) { q.send(s.data(), s.size(), prio); }

struct message {
  std::string text;
  unsigned priority;
};

std::optional<message> try_take(message_queue& q) {
  std::vector<char> buf(q.get_max_msg_size());
  std::size_t n = 0;
  unsigned p = 0;
  if (!q.try_receive(buf.data(), buf.size(), n, p)) return std::nullopt;
  return message{std::string(buf.data(), n), p};
}

message take(message_queue& q) {
  std::vector<char> buf(q.get_max_msg_size());
  std::size_t n = 0;
  unsigned p = 0;
  q.receive(buf.data(), buf.size(), n, p);
  return {std::string(buf.data(), n), p};
}

// A second mapping of the queue's segment, the way another process sees it.
struct peer_view {
  ipc::segment seg;
  explicit peer_view(const scoped_name& n) : seg(ipc::open_segment(n.c_str(), detail::message_queue_type)) {}
  detail::mq_control& control() { return *reinterpret_cast<detail::mq_control*>(seg.kind_area()); }
  detail::mapped_queue_storage storage() { return detail::mapped_queue_storage(seg); }
  std::uint32_t* array(std::uint64_t detail::mq_arrays::*which) {
    detail::mq_arrays a{};
    REQUIRE(detail::mq_layout(seg.layout.capacity, a));
    return reinterpret_cast<std::uint32_t*>(seg.kind_area() + a.*which);
  }
  ipc::slot_header& slot(std::uint32_t k) {
    return *reinterpret_cast<ipc::slot_header*>(seg.first_slot() + std::size_t(k) * seg.layout.slot_stride);
  }
};

bool is_corrupt(const std::error_code& ec) { return ec == ipc::errc::corrupt_segment; }

}  // namespace

TEST_SUITE("create and open") {
  TEST_CASE("create_only: attributes as given, empty, mode 0600 by default, O_EXCL") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 5, 100);
    CHECK(q.get_max_msg() == 5);
    CHECK(q.get_max_msg_size() == 100);
    CHECK(q.get_num_msg() == 0);
    CHECK((lockstep::test::stat_of(n).st_mode & 0777) == 0600);
    CHECK(error_of([&] { message_queue(ipc::create_only, n.c_str(), 5, 100); }) == std::errc::file_exists);
    CHECK(q.get_max_msg() == 5);  // untouched by the refused create
  }

  TEST_CASE("mode as given") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8, 0640);
    CHECK((lockstep::test::stat_of(n).st_mode & 0777) == 0640);
  }

  TEST_CASE("bad attributes: errc::invalid_argument and nothing created") {
    scoped_name n("mq");
    for (auto [msgs, size] : {std::pair<std::size_t, std::size_t>{0, 8}, {4, 0}, {ipc::mq_max_num_msg + 1, 8},
                              {4, ipc::mq_max_msg_size + 1}}) {
      CAPTURE(msgs);
      CAPTURE(size);
      CHECK(error_of([&] { message_queue(ipc::create_only, n.c_str(), msgs, size); }) == std::errc::invalid_argument);
      CHECK_FALSE(n.exists());
    }
    CHECK(error_of([&] { message_queue(ipc::create_only, n.c_str(), 4, 8, 01777); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { message_queue(ipc::create_only, "a/b", 4, 8); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { message_queue(ipc::open_only, ""); }) == std::errc::invalid_argument);
    CHECK_FALSE(n.exists());
  }

  TEST_CASE("open_only: a missing name is no_such_file_or_directory; an existing queue is the same queue") {
    scoped_name n("mq");
    CHECK(error_of([&] { message_queue(ipc::open_only, n.c_str()); }) == std::errc::no_such_file_or_directory);
    message_queue a(ipc::create_only, n.c_str(), 3, 16);
    message_queue b(ipc::open_only, (std::string("/") + n.c_str()).c_str());
    CHECK(b.get_max_msg() == 3);
    CHECK(b.get_max_msg_size() == 16);
    send_text(a, "x", 1);
    CHECK(b.get_num_msg() == 1);
    CHECK(take(b).text == "x");
  }

  TEST_CASE("open_or_create: creates when missing, else opens with the queue's own attributes") {
    scoped_name n("mq");
    message_queue a(ipc::open_or_create, n.c_str(), 4, 32);
    CHECK(a.get_max_msg() == 4);
    message_queue b(ipc::open_or_create, n.c_str(), 99, 99);
    CHECK(b.get_max_msg() == 4);
    CHECK(b.get_max_msg_size() == 32);
    CHECK(error_of([&] { message_queue(ipc::open_or_create, n.c_str(), 0, 32); }) == std::errc::invalid_argument);
  }

  TEST_CASE("remove: true once, then false; an open queue keeps working") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    CHECK(message_queue::remove(n.c_str()));
    CHECK_FALSE(message_queue::remove(n.c_str()));
    CHECK_FALSE(message_queue::remove("bad/name"));
    send_text(q, "still", 0);
    CHECK(take(q).text == "still");
  }

  TEST_CASE("permission: an unprivileged user cannot open another user's 0600 queue") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    const auto d = lockstep::test::run_in_child([&] {
      if (!lockstep::test::drop_root()) return 1;
      return error_of([&] { message_queue(ipc::open_only, n.c_str()); }) == std::errc::permission_denied ? 0 : 2;
    });
    CHECK(d.status.ok());
  }

  TEST_CASE("foreign segments: a channel-kind segment, a non-lockstep file, a truncated queue") {
    scoped_name n("mq");
    {
      // A lockstep segment of the other kind, with the queue's own layout function.
      const ipc::segment_type channel_like{ipc::segment_kind::channel, detail::mq_layout_version,
                                           detail::message_queue_layout, "a channel"};
      auto s = ipc::create_segment(n.c_str(), channel_like, 4, 8, 0600, [](std::byte*, const ipc::segment_layout&) {});
      CHECK(error_of([&] { message_queue(ipc::open_only, n.c_str()); }) == ipc::errc::foreign_segment);
      CHECK(error_of([&] { message_queue(ipc::open_or_create, n.c_str(), 4, 8); }) == ipc::errc::foreign_segment);
    }
    CHECK(ipc::shared_memory::remove(n.c_str()));
    {
      ipc::shared_memory m(ipc::create_only, n.c_str(), 4096);
      std::memcpy(m.data(), "not lockstep", 12);
      // ready stays 0: the open waits its bound, then says not_ready (a real peer would be slow
      // to publish, not forever); with ready set, the magic is checked.
      m.data()[16] = std::byte{1};
      CHECK(error_of([&] { message_queue(ipc::open_only, n.c_str()); }) == ipc::errc::foreign_segment);
    }
    CHECK(ipc::shared_memory::remove(n.c_str()));
    {
      message_queue q(ipc::create_only, n.c_str(), 4, 8);
      REQUIRE(::truncate(n.path().c_str(), 4096) == 0);
      CHECK(is_corrupt(error_of([&] { message_queue(ipc::open_only, n.c_str()); })));
    }
  }
}

TEST_SUITE("order") {
  TEST_CASE("highest priority first, FIFO within a priority") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 8, 16);
    send_text(q, "a1", 1);
    send_text(q, "b5", 5);
    send_text(q, "c1", 1);
    send_text(q, "d0", 0);
    send_text(q, "e5", 5);
    send_text(q, "f32767", 32767);
    CHECK(q.get_num_msg() == 6);
    std::vector<std::string> got;
    while (auto m = try_take(q)) got.push_back(m->text);
    CHECK(got == std::vector<std::string>{"f32767", "b5", "e5", "a1", "c1", "d0"});
    CHECK(q.get_num_msg() == 0);
  }

  TEST_CASE("a message's bytes, size and priority arrive exactly; 0-byte messages are messages") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 64);
    std::vector<unsigned char> bytes(64);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(255 - i);
    q.send(bytes.data(), 64, 3);
    q.send(nullptr, 0, 2);
    std::vector<unsigned char> buf(100, 0xee);
    std::size_t got = 0;
    unsigned p = 0;
    q.receive(buf.data(), buf.size(), got, p);
    CHECK(got == 64);
    CHECK(p == 3);
    CHECK(std::equal(bytes.begin(), bytes.end(), buf.begin()));
    CHECK(buf[64] == 0xee);  // nothing written past the message
    q.receive(buf.data(), buf.size(), got, p);
    CHECK(got == 0);
    CHECK(p == 2);
  }

  TEST_CASE("depth 10,000 with random priorities: exact POSIX order (the heap, not a scan)") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 10000, 8);
    std::mt19937 rng(11);
    std::vector<std::pair<unsigned, std::uint32_t>> sent;  // (priority, index)
    for (std::uint32_t i = 0; i < 10000; ++i) {
      const unsigned p = rng() % 300;
      q.send(&i, sizeof i, p);
      sent.emplace_back(p, i);
    }
    CHECK_FALSE(q.try_send("x", 1, 0));
    std::stable_sort(sent.begin(), sent.end(), [](auto& a, auto& b) { return a.first > b.first; });
    bool in_order = true;
    for (const auto& [p, i] : sent) {
      std::uint64_t buf = 0;
      std::size_t got = 0;
      unsigned prio = 0;
      q.receive(&buf, sizeof buf, got, prio);
      in_order = in_order && got == 4 && prio == p && static_cast<std::uint32_t>(buf) == i;
    }
    CHECK(in_order);
    CHECK(q.get_num_msg() == 0);
  }

  TEST_CASE("priority_counts: per-priority counts of the queued messages, delivery order unchanged") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 8, 8);
    send_text(q, "a", 2);
    send_text(q, "b", 7);
    send_text(q, "c", 2);
    const auto counts = q.priority_counts();
    CHECK(counts == std::map<unsigned, std::size_t>{{2, 2}, {7, 1}});
    CHECK(take(q).text == "b");
    CHECK(take(q).text == "a");
    CHECK(take(q).text == "c");
    CHECK(q.priority_counts().empty());
  }
}

TEST_SUITE("errors lose nothing") {
  TEST_CASE("priority >= 32768: invalid_argument, nothing queued") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    CHECK(error_of([&] { q.send("x", 1, 32768); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { (void)q.try_send("x", 1, ~0u); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { (void)q.send_for("x", 1, 40000, 1ms); }) == std::errc::invalid_argument);
    CHECK(q.get_num_msg() == 0);
  }

  TEST_CASE("a message longer than max: message_size, nothing queued, in every form") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    const char nine[9] = {};
    CHECK(error_of([&] { q.send(nine, 9, 0); }) == std::errc::message_size);
    CHECK(error_of([&] { (void)q.try_send(nine, 9, 0); }) == std::errc::message_size);
    CHECK(error_of([&] { (void)q.timed_send(nine, 9, 0, std::chrono::steady_clock::now() + 1s); }) ==
          std::errc::message_size);
    CHECK(q.get_num_msg() == 0);
    CHECK_FALSE(try_take(q));
  }

  TEST_CASE("a receive buffer shorter than max: message_size, the message stays queued") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    send_text(q, "abc", 4);
    char small[7];
    std::size_t got = 99;
    unsigned p = 99;
    CHECK(error_of([&] { q.receive(small, sizeof small, got, p); }) == std::errc::message_size);
    CHECK(error_of([&] { (void)q.try_receive(small, sizeof small, got, p); }) == std::errc::message_size);
    CHECK(error_of([&] { (void)q.receive_for(std::span<std::byte>(reinterpret_cast<std::byte*>(small), 7), 1ms); }) ==
          std::errc::message_size);
    CHECK(got == 99);
    CHECK(p == 99);
    CHECK(q.get_num_msg() == 1);
    const auto m = take(q);
    CHECK(m.text == "abc");
    CHECK(m.priority == 4);
  }
}

TEST_SUITE("errors lose nothing") {
  TEST_CASE("a null buffer: invalid_argument (a 0-byte send from nullptr is fine)") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 2, 8);
    CHECK(error_of([&] { q.send(nullptr, 1, 0); }) == std::errc::invalid_argument);
    CHECK(q.get_num_msg() == 0);
    q.send(nullptr, 0, 0);
    std::size_t got = 0;
    unsigned p = 0;
    CHECK(error_of([&] { q.receive(nullptr, 8, got, p); }) == std::errc::invalid_argument);
    CHECK(q.get_num_msg() == 1);
  }
}

TEST_SUITE("full and empty") {
  TEST_CASE("exact capacity: try_send false when full, try_receive false when empty, outputs untouched") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 3, 8);
    for (int i = 0; i < 3; ++i) CHECK(q.try_send("m", 1, 0));
    CHECK_FALSE(q.try_send("m", 1, 0));
    CHECK(q.get_num_msg() == 3);
    for (int i = 0; i < 3; ++i) CHECK(try_take(q));
    char buf[8];
    std::size_t got = 42;
    unsigned p = 42;
    CHECK_FALSE(q.try_receive(buf, sizeof buf, got, p));
    CHECK(got == 42);
    CHECK(p == 42);
  }

  TEST_CASE("timed forms: false after the deadline on steady_clock, system_clock, and as durations") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 1, 8);
    char buf[8];
    std::size_t got = 0;
    unsigned p = 0;
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(q.timed_receive(buf, sizeof buf, got, p, t0 + 20ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
    CHECK_FALSE(q.timed_receive(buf, sizeof buf, got, p, std::chrono::system_clock::now() + 5ms));
    CHECK_FALSE(q.receive_for(buf, sizeof buf, got, p, 5ms));
    CHECK_FALSE(q.receive_for(buf, sizeof buf, got, p, -5ms));
    CHECK(q.send_for("a", 1, 0, 0ms));  // a past deadline still sends when there is room
    t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(q.timed_send("b", 1, 0, t0 + 20ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
    CHECK_FALSE(q.timed_send("b", 1, 0, std::chrono::system_clock::now() + 5ms));
    CHECK_FALSE(q.send_for("b", 1, 0, 5ms));
    CHECK(q.timed_receive(buf, sizeof buf, got, p, std::chrono::system_clock::now() - 1s));
    CHECK(got == 1);
  }

  TEST_CASE("blocking receive waits for a send; blocking send waits for a receive (threads)") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 1, 8);
    std::atomic<bool> got{false};
    std::thread r([&] {
      message_queue mine(ipc::open_only, n.c_str());
      CHECK(take(mine).text == "wake");
      got = true;
    });
    std::this_thread::sleep_for(5ms);
    CHECK_FALSE(got.load());
    send_text(q, "wake", 0);
    r.join();
    CHECK(got.load());

    send_text(q, "fill", 0);
    std::atomic<bool> sent{false};
    std::thread s([&] {
      send_text(q, "later", 0);
      sent = true;
    });
    std::this_thread::sleep_for(5ms);
    CHECK_FALSE(sent.load());
    CHECK(take(q).text == "fill");
    s.join();
    CHECK(take(q).text == "later");
  }

  TEST_CASE("processes: a receiver asleep in another process is woken by a send; and the reverse") {
    // Two queues, one per direction: with one, the parent could see its own "ping" still queued
    // (the child not yet running after its wake-up) and take it back, leaving the child asleep.
    scoped_name n("mq"), back("mqback");
    message_queue to_child(ipc::create_only, n.c_str(), 1, 8);
    message_queue q(ipc::create_only, back.c_str(), 1, 8);
    const pid_t pid = lockstep::test::fork_child([&] {
      message_queue in(ipc::open_only, n.c_str()), out(ipc::open_only, back.c_str());
      if (take(in).text != "ping") return 1;
      send_text(out, "pong", 1);   // fills the queue
      send_text(out, "pong2", 2);  // blocks until the parent receives
      return 0;
    });
    REQUIRE(lockstep::test::eventually([&] { return lockstep::test::blocked_in_futex(pid); }));
    send_text(to_child, "ping", 0);
    REQUIRE(lockstep::test::eventually([&] { return q.get_num_msg() == 1; }));  // only the child sends here
    REQUIRE(lockstep::test::eventually([&] { return lockstep::test::blocked_in_futex(pid); }));
    CHECK(take(q).text == "pong");
    CHECK(lockstep::test::wait_child(pid).ok());
    CHECK(take(q).text == "pong2");
  }

  TEST_CASE("two blocked receivers, two sends: both wake (a message drained by the other is seen)") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    std::atomic<int> done{0};
    std::vector<std::thread> rs;
    for (int i = 0; i < 2; ++i)
      rs.emplace_back([&] {
        (void)take(q);
        ++done;
      });
    std::this_thread::sleep_for(5ms);
    send_text(q, "1", 0);
    send_text(q, "2", 0);
    for (auto& t : rs) t.join();
    CHECK(done == 2);
  }
}

TEST_SUITE("forms") {
  TEST_CASE("span overloads and move") {
    scoped_name n("mq");
    message_queue a(ipc::create_only, n.c_str(), 2, 8);
    message_queue q(std::move(a));
    const std::byte hello[5] = {std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'}, std::byte{'o'}};
    q.send(std::span<const std::byte>(hello), 9);
    CHECK(q.try_send(std::span<const std::byte>(hello, 1), 1));
    CHECK_FALSE(q.send_for(std::span<const std::byte>(hello), 1, 1ms));
    std::byte buf[8];
    const auto r = q.receive(buf);
    CHECK(r.size == 5);
    CHECK(r.priority == 9);
    CHECK(std::memcmp(buf, hello, 5) == 0);
    const auto r2 = q.try_receive(buf);
    REQUIRE(r2);
    CHECK(r2->size == 1);
    CHECK_FALSE(q.try_receive(buf));
    CHECK_FALSE(q.receive_for(buf, 1ms));
    CHECK_FALSE(q.timed_receive(buf, std::chrono::steady_clock::now()));
    message_queue other(ipc::create_only, (std::string(n.c_str()) + "b").c_str(), 1, 1);
    other = std::move(q);
    CHECK(other.get_max_msg() == 2);
    message_queue::remove((std::string(n.c_str()) + "b").c_str());
  }

  TEST_CASE("a send or receive that neither blocks nor wakes makes no system call") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    lockstep::test::futex_calls calls;
    for (int i = 0; i < 100; ++i) {
      send_text(q, "x", i % 7);
      (void)take(q);
      CHECK(q.try_send("y", 1, 1));
      CHECK(try_take(q));
      CHECK_FALSE(try_take(q));
    }
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }
}

TEST_SUITE("corrupt segments: an error, nothing consumed, nothing outside the mapping") {
  TEST_CASE("a free-ring entry out of range: send reports corrupt_segment") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    peer_view peer(n);
    peer.array(&detail::mq_arrays::free_ring)[0] = 4;
    CHECK(is_corrupt(error_of([&] { send_text(q, "x", 0); })));
    peer.array(&detail::mq_arrays::free_ring)[0] = 0xffff'ffff;
    CHECK(is_corrupt(error_of([&] { (void)q.try_send("x", 1, 0); })));
    peer.array(&detail::mq_arrays::free_ring)[0] = 0;  // repaired: the queue works again
    send_text(q, "ok", 1);
    CHECK(take(q).text == "ok");
  }

  TEST_CASE("a full-ring entry out of range, or a slot priority out of range: receive reports corrupt_segment") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    peer_view peer(n);
    send_text(q, "x", 3);
    const std::uint32_t saved = peer.array(&detail::mq_arrays::full_ring)[0];
    peer.array(&detail::mq_arrays::full_ring)[0] = 1000;
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    peer.array(&detail::mq_arrays::full_ring)[0] = saved;
    peer.slot(saved).tag = 40000;
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    peer.slot(saved).tag = 3;
    const auto m = try_take(q);  // nothing was consumed
    REQUIRE(m);
    CHECK(m->text == "x");
    CHECK(m->priority == 3);
  }

  TEST_CASE("a slot size above max: receive reports corrupt_segment and the message stays") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    peer_view peer(n);
    send_text(q, "abc", 0);
    const std::uint32_t slot = peer.array(&detail::mq_arrays::full_ring)[0];
    peer.slot(slot).size = 9;
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    CHECK(q.get_num_msg() == 1);
    peer.slot(slot).size = 3;
    CHECK(take(q).text == "abc");
  }

  TEST_CASE("heap size or a heap entry out of range, cursors out of range: corrupt_segment") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    peer_view peer(n);
    auto& c = peer.control();
    send_text(q, "a", 0);
    send_text(q, "b", 0);
    CHECK(take(q).text == "a");  // "b" is in the heap now
    c.heap_size.write(5);
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    CHECK(is_corrupt(error_of([&] { (void)q.priority_counts(); })));
    c.heap_size.write(1);
    auto* heap = reinterpret_cast<detail::heap_entry*>(peer.array(&detail::mq_arrays::heap));
    const detail::heap_entry saved = heap[0];
    heap[0].slot = 77;
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    heap[0] = saved;
    heap[0].priority = 1u << 31;
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    heap[0] = saved;
    CHECK(take(q).text == "b");
    // A cursor moved far beyond the capacity (I1 of ring.hpp).
    const std::uint32_t tail = c.full_tail.load(lockstep::seam::order::relaxed);
    c.full_tail.store(tail + 100, lockstep::seam::order::relaxed);
    CHECK(is_corrupt(error_of([&] { (void)try_take(q); })));
    c.full_tail.store(tail, lockstep::seam::order::relaxed);
    // The sender's own cursor: its count against the cached tail is out of range, so the
    // tail is re-read, and the count is still out of range.
    const std::uint32_t fhead = c.free_head.load(lockstep::seam::order::relaxed);
    c.free_head.store(fhead + 100, lockstep::seam::order::relaxed);
    CHECK(is_corrupt(error_of([&] { send_text(q, "c", 0); })));
    c.free_head.store(fhead, lockstep::seam::order::relaxed);
    send_text(q, "c", 0);
    CHECK(take(q).text == "c");
  }

  TEST_CASE("a header field rewritten after open changes nothing here (local copies)") {
    scoped_name n("mq");
    message_queue q(ipc::create_only, n.c_str(), 4, 8);
    peer_view peer(n);
    reinterpret_cast<ipc::segment_header*>(peer.seg.base())->capacity = 1u << 30;
    reinterpret_cast<ipc::segment_header*>(peer.seg.base())->max_msg_size = 1u << 30;
    CHECK(q.get_max_msg() == 4);
    CHECK(q.get_max_msg_size() == 8);
    send_text(q, "fine", 0);
    CHECK(take(q).text == "fine");
    CHECK(is_corrupt(error_of([&] { message_queue(ipc::open_only, n.c_str()); })));
  }
}
