// ipc/tests/channel_test.cpp: unit tests of <lockstep/ipc/channel.hpp>: every behaviour and every
// error of the channel's contract.
//
// Construction and attributes; FIFO and exact capacity; the try forms on full and empty (and
// that they wait for a holder of the lock instead of reporting full or empty); oversize sends
// and short receive buffers; zero-length messages; deadlines past and future on steady_clock
// and system_clock; the zero-copy path and its misuse; futex system calls counted (none on a
// send or receive that neither blocks nor wakes); forked processes handing messages over while
// one side sleeps; a foreign or corrupt segment, and cursors and sizes out of range written
// into a live channel: each a clear error, never a crash or a hang.
//
// Timing: a check asserts a lower bound on how long a timed call took (the kernel never times
// out early), never an upper bound. A test that needs a thread asleep waits until the futex
// counter (or, for a child process, /proc/PID/syscall) says so.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/channel.hpp>

#include "ipc_support.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
namespace ipc = lockstep::ipc;
namespace seam = lockstep::seam;
using ipc::channel;
using ipc::create_only;
using ipc::open_only;
using ipc::open_or_create;
using lockstep::test::error_of;
using lockstep::test::eventually;
using lockstep::test::futex_calls;
using lockstep::test::scoped_name;
using lockstep::test::stat_of;
using std::errc;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;

static_assert(!std::is_copy_constructible_v<channel> && std::is_nothrow_move_constructible_v<channel>);
static_assert(!std::is_copy_constructible_v<channel::send_reservation> &&
              std::is_nothrow_move_constructible_v<channel::send_reservation>);
static_assert(!std::is_copy_constructible_v<channel::received_message> &&
              std::is_nothrow_move_constructible_v<channel::received_message>);

namespace {

bool send_text(channel& c, const std::string& s) { return c.try_send(s.data(), s.size()); }

// The next message as text, or "<empty>".
std::string receive_text(channel& c) {
  std::string buf(c.get_max_msg_size(), '\0');
  std::size_t n = 0;
  if (!c.try_receive(buf.data(), buf.size(), n)) return "<empty>";
  buf.resize(n);
  return buf;
}

// The live control block of a channel, through a second mapping (as another process sees it).
struct live_control {
  ipc::shared_memory memory;
  explicit live_control(const scoped_name& n) : memory(open_only, n.c_str()) {}
  ipc::detail::channel_control& c() const {
    return *reinterpret_cast<ipc::detail::channel_control*>(memory.data() + sizeof(ipc::segment_header));
  }
  ipc::slot_header& slot(std::uint32_t k) const {
    const auto& h = *reinterpret_cast<const ipc::segment_header*>(memory.data());
    return *reinterpret_cast<ipc::slot_header*>(memory.data() + h.header_size + std::size_t(k) * h.slot_stride);
  }
};

}  // namespace

TEST_SUITE("construction") {
  TEST_CASE("create, open, open_or_create: attributes are the creator's") {
    scoped_name n("attrs");
    channel a(create_only, n.c_str(), 5, 100);
    CHECK(a.get_max_msg() == 5);
    CHECK(a.get_max_msg_size() == 100);
    CHECK(a.get_num_msg() == 0);
    CHECK((stat_of(n).st_mode & 07777) == 0600);
    CHECK(stat_of(n).st_size == 320 + 5 * 128);
    channel b(open_only, n.c_str());
    CHECK(b.get_max_msg() == 5);
    CHECK(b.get_max_msg_size() == 100);
    channel c(open_or_create, n.c_str(), 7, 7);
    CHECK(c.get_max_msg() == 5);
    CHECK(c.get_max_msg_size() == 100);
    CHECK(send_text(a, "x"));
    CHECK(c.get_num_msg() == 1);
    CHECK(receive_text(b) == "x");

    scoped_name m("attrs-ooc");
    channel d(open_or_create, m.c_str(), 3, 0, 0640);
    CHECK(d.get_max_msg() == 3);
    CHECK(d.get_max_msg_size() == 0);
    CHECK((stat_of(m).st_mode & 07777) == 0640);
  }

  TEST_CASE("bad sizes and names: invalid_argument, nothing created") {
    scoped_name n("bad");
    CHECK(error_of([&] { channel c(create_only, n.c_str(), 0, 10); }) == errc::invalid_argument);
    CHECK(error_of([&] { channel c(create_only, n.c_str(), (1u << 30) + 1, 10); }) == errc::invalid_argument);
    CHECK(error_of([&] { channel c(create_only, n.c_str(), 1, (std::size_t{1} << 30) + 1); }) == errc::invalid_argument);
    CHECK(error_of([&] { channel c(create_only, n.c_str(), ~std::size_t{0}, 10); }) == errc::invalid_argument);
    CHECK(error_of([&] { channel c(open_or_create, n.c_str(), 0, 10); }) == errc::invalid_argument);
    CHECK(error_of([&] { channel c(create_only, n.c_str(), 1, 1, 01600); }) == errc::invalid_argument);
    CHECK_FALSE(n.exists());
    for (const char* bad : {"", "/", "a/b", "..", "//x"}) {
      INFO("name \"", bad, "\"");
      CHECK(error_of([&] { channel c(create_only, bad, 1, 1); }) == errc::invalid_argument);
      CHECK(error_of([&] { channel c(open_only, bad); }) == errc::invalid_argument);
      CHECK(error_of([&] { channel c(open_or_create, bad, 1, 1); }) == errc::invalid_argument);
    }
    CHECK(error_of([&] { channel c(open_only, nullptr); }) == errc::invalid_argument);
  }

  TEST_CASE("exists and missing: file_exists, no_such_file_or_directory") {
    scoped_name n("exists");
    CHECK(error_of([&] { channel c(open_only, n.c_str()); }) == errc::no_such_file_or_directory);
    channel a(create_only, n.c_str(), 1, 1);
    CHECK(error_of([&] { channel c(create_only, n.c_str(), 1, 1); }) == errc::file_exists);
  }

  TEST_CASE("permission: another user cannot open a 0600 channel; its owner cannot open a 0400 one") {
    REQUIRE(::geteuid() == 0);
    scoped_name root_owned("perm");
    scoped_name own("perm-own");
    channel a(create_only, root_owned.c_str(), 1, 1);
    const auto d = lockstep::test::run_in_child([&]() -> int {
      if (!lockstep::test::drop_root()) return 1;
      if (error_of([&] { channel c(open_only, root_owned.c_str()); }) != errc::permission_denied) return 2;
      if (error_of([&] { channel c(open_or_create, root_owned.c_str(), 1, 1); }) != errc::permission_denied) return 3;
      try {
        channel mine(create_only, own.c_str(), 1, 1, 0400);
      } catch (...) {
        return 4;
      }
      if (error_of([&] { channel c(open_only, own.c_str()); }) != errc::permission_denied) return 5;
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
  }

  TEST_CASE("remove: the name goes, open channels keep working, a new create is a new channel") {
    scoped_name n("remove");
    channel a(create_only, n.c_str(), 2, 8);
    channel b(open_only, n.c_str());
    CHECK(channel::remove(n.c_str()));
    CHECK_FALSE(channel::remove(n.c_str()));
    CHECK(error_of([&] { channel c(open_only, n.c_str()); }) == errc::no_such_file_or_directory);
    CHECK(send_text(a, "still"));
    CHECK(receive_text(b) == "still");
    channel c(create_only, n.c_str(), 2, 8);
    CHECK(send_text(c, "new"));
    CHECK(receive_text(b) == "<empty>");
    CHECK(c.get_num_msg() == 1);
  }

  TEST_CASE("move: the channel keeps working in its new object") {
    scoped_name n("move");
    channel a(create_only, n.c_str(), 2, 8);
    CHECK(send_text(a, "m"));
    channel b(std::move(a));
    CHECK(receive_text(b) == "m");
    scoped_name n2("move-2");
    channel c(create_only, n2.c_str(), 1, 1);
    c = std::move(b);
    CHECK(c.get_max_msg() == 2);
    CHECK(send_text(c, "n"));
    CHECK(receive_text(c) == "n");
  }
}

TEST_SUITE("messages") {
  TEST_CASE("FIFO, exact capacity: try_send fails only when full, try_receive only when empty") {
    scoped_name n("fifo");
    channel c(create_only, n.c_str(), 4, 16);
    CHECK(receive_text(c) == "<empty>");
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 4; ++i) CHECK(send_text(c, "m" + std::to_string(round * 4 + i)));
      CHECK(c.get_num_msg() == 4);
      CHECK_FALSE(send_text(c, "overflow"));
      CHECK(c.get_num_msg() == 4);
      for (int i = 0; i < 4; ++i) CHECK(receive_text(c) == "m" + std::to_string(round * 4 + i));
      CHECK(receive_text(c) == "<empty>");
      CHECK(c.get_num_msg() == 0);
    }
  }

  TEST_CASE("every size from 0 to max_msg_size arrives byte for byte") {
    scoped_name n("sizes");
    constexpr std::size_t max = 300;
    channel c(create_only, n.c_str(), 3, max);
    std::vector<unsigned char> out(max);
    std::vector<unsigned char> in(max);
    for (std::size_t size = 0; size <= max; ++size) {
      for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<unsigned char>(size * 31 + i);
      c.send(out.data(), size);
      std::size_t got = 12345;
      c.receive(in.data(), in.size(), got);
      REQUIRE(got == size);
      REQUIRE(std::equal(out.begin(), out.begin() + long(size), in.begin()));
    }
  }

  TEST_CASE("zero-length messages: sent, counted and received as messages; a null buffer is fine for them") {
    scoped_name n("empty-msgs");
    channel c(create_only, n.c_str(), 2, 0);
    c.send(nullptr, 0);
    CHECK(c.try_send(nullptr, 0));
    CHECK_FALSE(c.try_send(nullptr, 0));
    CHECK(c.get_num_msg() == 2);
    std::size_t got = 99;
    c.receive(nullptr, 0, got);
    CHECK(got == 0);
    CHECK(c.try_receive(nullptr, 0, got));
    CHECK_FALSE(c.try_receive(nullptr, 0, got));
  }

  TEST_CASE("a message longer than max_msg_size: message_size, nothing queued, every send form") {
    scoped_name n("oversize");
    channel c(create_only, n.c_str(), 2, 4);
    const char text[] = "12345";
    CHECK(error_of([&] { c.send(text, 5); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.try_send(text, 5); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.timed_send(text, 5, steady::now() + 1s); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.send_for(text, 5, 1s); }) == errc::message_size);
    // Through a pointer the compiler cannot follow: it would otherwise warn (-Warray-bounds)
    // about the copy that the size check is there to prevent.
    const char* volatile opaque = text;
    CHECK(error_of([&] { (void)c.send(opaque, ~std::size_t{0}); }) == errc::message_size);
    CHECK(c.get_num_msg() == 0);
    c.send(text, 4);
    CHECK(receive_text(c) == "1234");
  }

  TEST_CASE("a receive buffer shorter than max_msg_size: message_size, and the message stays queued") {
    scoped_name n("short-buffer");
    channel c(create_only, n.c_str(), 2, 8);
    CHECK(send_text(c, "ab"));  // even a message that would fit: POSIX mq_receive's rule
    char small[7];
    std::size_t got = 0;
    CHECK(error_of([&] { c.receive(small, sizeof small, got); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.try_receive(small, sizeof small, got); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.timed_receive(small, sizeof small, got, sys::now() + 1s); }) == errc::message_size);
    CHECK(error_of([&] { (void)c.receive_for(small, sizeof small, got, 1s); }) == errc::message_size);
    CHECK(c.get_num_msg() == 1);
    CHECK(receive_text(c) == "ab");
  }

  TEST_CASE("a null buffer with a nonzero size: invalid_argument, nothing changed") {
    scoped_name n("null");
    channel c(create_only, n.c_str(), 2, 8);
    std::size_t got = 0;
    CHECK(error_of([&] { c.send(nullptr, 1); }) == errc::invalid_argument);
    CHECK(send_text(c, "x"));
    CHECK(error_of([&] { c.receive(nullptr, 8, got); }) == errc::invalid_argument);
    CHECK(c.get_num_msg() == 1);
  }

  TEST_CASE("span overloads") {
    scoped_name n("span");
    channel c(create_only, n.c_str(), 4, 8);
    const std::array<std::byte, 3> msg{std::byte{1}, std::byte{2}, std::byte{3}};
    c.send(std::span<const std::byte>(msg));
    CHECK(c.try_send(std::span<const std::byte>(msg).first(1)));
    CHECK(c.timed_send(std::span<const std::byte>(msg), steady::now() + 1s));
    CHECK(c.send_for(std::span<const std::byte>(msg), 1s));
    std::array<std::byte, 8> buf{};
    std::size_t got = 0;
    c.receive(std::span<std::byte>(buf), got);
    CHECK(got == 3);
    CHECK(buf[2] == std::byte{3});
    CHECK(c.try_receive(std::span<std::byte>(buf), got));
    CHECK(got == 1);
    CHECK(c.timed_receive(std::span<std::byte>(buf), got, sys::now() + 1s));
    CHECK(c.receive_for(std::span<std::byte>(buf), got, 1s));
    CHECK_FALSE(c.try_receive(std::span<std::byte>(buf), got));
    CHECK(error_of([&] { c.receive(std::span<std::byte>(buf).first(7), got); }) == errc::message_size);
  }
}

TEST_SUITE("deadlines") {
  TEST_CASE("a deadline already past, or a timeout <= 0, still sends and receives when it can, and never sleeps") {
    scoped_name n("past-ok");
    channel c(create_only, n.c_str(), 1, 8);
    const futex_calls calls;
    CHECK(c.timed_send("a", 1, steady::now() - 1h));
    CHECK(receive_text(c) == "a");
    CHECK(c.timed_send("b", 1, sys::now() - 1h));
    char buf[8];
    std::size_t got = 0;
    CHECK(c.timed_receive(buf, 8, got, sys::time_point{}));  // the epoch
    CHECK(c.send_for("c", 1, 0s));
    CHECK(c.receive_for(buf, 8, got, -5s));
    CHECK(c.send_for("d", 1, -1ms));
    CHECK(c.timed_receive(buf, 8, got, steady::time_point::min()));
    CHECK(calls.waits() == 0);
  }

  TEST_CASE("a deadline already past on a full or empty channel: false at once, without sleeping") {
    scoped_name n("past-fail");
    channel c(create_only, n.c_str(), 1, 8);
    char buf[8];
    std::size_t got = 0;
    const futex_calls calls;
    CHECK_FALSE(c.timed_receive(buf, 8, got, steady::now() - 1s));
    CHECK_FALSE(c.timed_receive(buf, 8, got, sys::now() - 1s));
    CHECK_FALSE(c.receive_for(buf, 8, got, 0s));
    CHECK(send_text(c, "x"));
    CHECK_FALSE(c.timed_send("y", 1, steady::now() - 1s));
    CHECK_FALSE(c.timed_send("y", 1, sys::now() - 1s));
    CHECK_FALSE(c.send_for("y", 1, -1s));
    CHECK(calls.waits() == 0);
    CHECK(c.get_num_msg() == 1);
  }

  TEST_CASE("a future deadline on a full or empty channel: false, not before the deadline (steady and system clocks)") {
    scoped_name n("future");
    channel c(create_only, n.c_str(), 1, 8);
    char buf[8];
    std::size_t got = 0;
    auto t0 = steady::now();
    CHECK_FALSE(c.timed_receive(buf, 8, got, steady::now() + 30ms));
    CHECK(steady::now() - t0 >= 30ms);
    const auto s0 = sys::now();
    CHECK_FALSE(c.timed_receive(buf, 8, got, sys::now() + 30ms));
    CHECK(sys::now() - s0 >= 30ms);
    t0 = steady::now();
    CHECK_FALSE(c.receive_for(buf, 8, got, 30ms));
    CHECK(steady::now() - t0 >= 30ms);
    CHECK(send_text(c, "x"));
    t0 = steady::now();
    CHECK_FALSE(c.timed_send("y", 1, steady::now() + 30ms));
    CHECK(steady::now() - t0 >= 30ms);
    const auto s1 = sys::now();
    CHECK_FALSE(c.timed_send("y", 1, sys::now() + 30ms));
    CHECK(sys::now() - s1 >= 30ms);
    t0 = steady::now();
    CHECK_FALSE(c.send_for("y", 1, 30ms));
    CHECK(steady::now() - t0 >= 30ms);
    CHECK(c.get_num_msg() == 1);
    CHECK(receive_text(c) == "x");
  }

  TEST_CASE("a timed call that sleeps is woken by the other side before its deadline") {
    scoped_name n("timed-wake");
    channel c(create_only, n.c_str(), 1, 8);
    const futex_calls calls;
    bool received = false;
    std::string text;
    std::thread rx([&] {
      char buf[8];
      std::size_t got = 0;
      received = c.timed_receive(buf, 8, got, sys::now() + 1h);
      text.assign(buf, got);
    });
    REQUIRE(eventually([&] { return calls.waits() > 0; }));
    CHECK(send_text(c, "late"));
    rx.join();
    CHECK(received);
    CHECK(text == "late");
  }
}

TEST_SUITE("blocking and system calls") {
  TEST_CASE("no futex system call on a send or receive that neither blocks nor wakes") {
    scoped_name n("no-syscall");
    channel c(create_only, n.c_str(), 4, 64);
    char buf[64];
    std::size_t got = 0;
    const futex_calls calls;
    for (int i = 0; i < 1000; ++i) {
      c.send("0123456789", 10);
      CHECK(c.try_send("abc", 3));
      c.receive(buf, sizeof buf, got);
      CHECK(c.try_receive(buf, sizeof buf, got));
      CHECK(c.timed_send("x", 1, steady::now() + 1s));
      CHECK(c.receive_for(buf, sizeof buf, got, 1s));
      auto r = c.reserve();
      r.commit(1);
      auto m = c.receive_in_place();
      m.release();
    }
    CHECK_FALSE(c.try_receive(buf, sizeof buf, got));  // empty: still no call
    CHECK(calls.waits() == 0);
    CHECK(calls.wakes() == 0);
  }

  TEST_CASE("a receiver asleep on an empty channel is woken by one send: one futex_wake") {
    scoped_name n("wake-rx");
    channel c(create_only, n.c_str(), 2, 8);
    const futex_calls calls;
    std::string got;
    std::thread rx([&] {
      char buf[8];
      std::size_t k = 0;
      c.receive(buf, sizeof buf, k);
      got.assign(buf, k);
    });
    REQUIRE(eventually([&] { return calls.waits() > 0; }));
    c.send("hello", 5);
    rx.join();
    CHECK(got == "hello");
    CHECK(calls.wakes() == 1);
    // The WAITERS bit was cleared by that send: the next one makes no call.
    c.send("x", 1);
    CHECK(calls.wakes() == 1);
  }

  TEST_CASE("a sender asleep on a full channel is woken by one receive") {
    scoped_name n("wake-tx");
    channel c(create_only, n.c_str(), 1, 8);
    CHECK(send_text(c, "first"));
    const futex_calls calls;
    std::thread tx([&] { c.send("second", 6); });
    REQUIRE(eventually([&] { return calls.waits() > 0; }));
    CHECK(receive_text(c) == "first");
    tx.join();
    CHECK(calls.wakes() == 1);
    CHECK(receive_text(c) == "second");
  }

  TEST_CASE("try_* wait for a sender or receiver mid-operation instead of reporting full or empty") {
    scoped_name n("mid-op");
    channel c(create_only, n.c_str(), 2, 8);
    // A reservation holds the send lock: a try_send meanwhile must not say "full". It waits
    // for the lock: it spins, then sleeps in the mutex (the futex counter shows when).
    auto r = c.reserve();
    std::atomic<int> result{-1};
    const futex_calls calls;
    std::thread tx([&] { result = c.try_send("b", 1) ? 1 : 0; });
    REQUIRE(eventually([&] { return calls.waits() > 0; }));
    CHECK(result.load() == -1);
    std::memcpy(r.buffer().data(), "a", 1);
    r.commit(1);
    tx.join();
    CHECK(result.load() == 1);
    // An in-place message holds the receive lock: a try_receive meanwhile must not say "empty".
    auto m = c.receive_in_place();
    std::atomic<bool> done{false};
    std::string got;
    const futex_calls calls2;
    std::thread rx([&] {
      got = receive_text(c);
      done = true;
    });
    REQUIRE(eventually([&] { return calls2.waits() > 0; }));
    CHECK_FALSE(done.load());
    m.release();
    rx.join();
    CHECK(got == "b");
  }

  TEST_CASE("many producers and consumers in threads: every message once, FIFO per producer") {
    scoped_name n("mpmc");
    channel c(create_only, n.c_str(), 8, 16);
    constexpr int producers = 3;
    constexpr int consumers = 2;
    constexpr int per_producer = 5000;
    std::vector<std::vector<int>> seen(producers, std::vector<int>(per_producer, 0));
    std::atomic<int> out_of_order{0};
    std::atomic<int> taken{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&, p] {
        for (int i = 0; i < per_producer; ++i) {
          const int msg[2] = {p, i};
          c.send(msg, sizeof msg);
        }
      });
    for (int k = 0; k < consumers; ++k)
      threads.emplace_back([&] {
        std::vector<int> last(producers, -1);
        int msg[4];
        std::size_t got = 0;
        while (taken.fetch_add(1) < producers * per_producer) {
          c.receive(msg, sizeof msg, got);
          if (got != 2 * sizeof(int) || msg[0] < 0 || msg[0] >= producers || msg[1] < 0 || msg[1] >= per_producer) {
            ++out_of_order;
            continue;
          }
          if (msg[1] <= last[std::size_t(msg[0])]) ++out_of_order;
          last[std::size_t(msg[0])] = msg[1];
          ++seen[std::size_t(msg[0])][std::size_t(msg[1])];  // (a slot per message: no two threads share one)
        }
      });
    for (auto& t : threads) t.join();
    CHECK(out_of_order.load() == 0);
    int once = 0;
    for (const auto& v : seen) once += int(std::count(v.begin(), v.end(), 1));
    CHECK(once == producers * per_producer);
    CHECK(c.get_num_msg() == 0);
  }
}

TEST_SUITE("zero copy") {
  TEST_CASE("reserve, write in place, commit; receive in place, release") {
    scoped_name n("zc");
    channel c(create_only, n.c_str(), 2, 16);
    {
      channel::send_reservation r = c.reserve();
      REQUIRE(r);
      CHECK(r.buffer().size() == 16);
      std::memcpy(r.buffer().data(), "in place", 8);
      r.commit(8);
      CHECK_FALSE(r);
      CHECK(r.buffer().empty());
    }
    CHECK(c.get_num_msg() == 1);
    {
      channel::received_message m = c.receive_in_place();
      REQUIRE(m);
      CHECK(m.size() == 8);
      CHECK(std::memcmp(m.data().data(), "in place", 8) == 0);
      CHECK(c.get_num_msg() == 1);  // still in the channel until released (I8)
      m.release();
      CHECK_FALSE(m);
      CHECK(m.size() == 0);
    }
    CHECK(c.get_num_msg() == 0);
  }

  TEST_CASE("a reservation destroyed without commit sends nothing; an in-place message destroyed is consumed") {
    scoped_name n("zc-raii");
    channel c(create_only, n.c_str(), 2, 16);
    {
      auto r = c.reserve();
      std::memcpy(r.buffer().data(), "lost", 4);
    }
    CHECK(c.get_num_msg() == 0);
    {
      auto r = c.try_reserve();
      REQUIRE(r);
      r.abandon();
      CHECK_FALSE(r);
    }
    CHECK(c.get_num_msg() == 0);
    CHECK(send_text(c, "gone"));
    { auto m = c.receive_in_place(); }
    CHECK(c.get_num_msg() == 0);
    CHECK(receive_text(c) == "<empty>");
  }

  TEST_CASE("try/timed forms give an empty object on a full or empty channel") {
    scoped_name n("zc-try");
    channel c(create_only, n.c_str(), 1, 4);
    CHECK_FALSE(c.try_receive_in_place());
    CHECK_FALSE(c.timed_receive_in_place(steady::now() - 1s));
    const auto t0 = steady::now();
    CHECK_FALSE(c.receive_in_place_for(20ms));
    CHECK(steady::now() - t0 >= 20ms);
    CHECK(send_text(c, "x"));
    CHECK_FALSE(c.try_reserve());
    CHECK_FALSE(c.timed_reserve(sys::now() - 1s));
    CHECK_FALSE(c.reserve_for(20ms));
    auto m = c.timed_receive_in_place(sys::now() + 1s);
    CHECK(m);
    m.release();
    CHECK(c.reserve_for(1s));
  }

  TEST_CASE("commit longer than the buffer: message_size, the reservation still holds its slot") {
    scoped_name n("zc-long");
    channel c(create_only, n.c_str(), 1, 4);
    auto r = c.reserve();
    CHECK(error_of([&] { r.commit(5); }) == errc::message_size);
    CHECK(r);
    CHECK(c.get_num_msg() == 0);
    std::memcpy(r.buffer().data(), "four", 4);
    r.commit(4);
    CHECK(receive_text(c) == "four");
  }

  TEST_CASE("misuse: a second reservation on one thread, a commit on another, an empty one, sleeping on the other end") {
    scoped_name n("zc-misuse");
    channel c(create_only, n.c_str(), 1, 4);
    {
      auto r = c.reserve();
      CHECK(error_of([&] { (void)c.reserve(); }) == errc::resource_deadlock_would_occur);
      CHECK(error_of([&] { c.send("x", 1); }) == errc::resource_deadlock_would_occur);
      CHECK(error_of([&] { (void)c.try_send("x", 1); }) == errc::resource_deadlock_would_occur);
      // Empty channel, and this thread holds the send lock: a blocking receive would sleep forever.
      char buf[4];
      std::size_t got = 0;
      CHECK(error_of([&] { c.receive(buf, 4, got); }) == errc::resource_deadlock_would_occur);
      std::error_code other;
      std::thread([&] { other = error_of([&] { r.commit(1); }); }).join();
      CHECK(other == errc::operation_not_permitted);
      CHECK(r);
      r.commit(0);
    }
    channel::send_reservation empty;
    CHECK(error_of([&] { empty.commit(0); }) == errc::operation_not_permitted);
    CHECK(error_of([&] { empty.abandon(); }) == errc::operation_not_permitted);
    channel::received_message none;
    CHECK(error_of([&] { none.release(); }) == errc::operation_not_permitted);
    {
      auto m = c.receive_in_place();
      CHECK(error_of([&] { (void)c.try_receive_in_place(); }) == errc::resource_deadlock_would_occur);
      // Full channel, and this thread holds the receive lock: a blocking send would sleep forever.
      CHECK(error_of([&] { c.send("y", 1); }) == errc::resource_deadlock_would_occur);
      std::error_code other;
      std::thread([&] { other = error_of([&] { m.release(); }); }).join();
      CHECK(other == errc::operation_not_permitted);
    }
    CHECK(c.get_num_msg() == 0);
  }

  TEST_CASE("moving a reservation moves the slot; assigning over one abandons it") {
    scoped_name n("zc-move");
    channel c(create_only, n.c_str(), 2, 4);
    auto a = c.reserve();
    std::memcpy(a.buffer().data(), "a", 1);
    channel::send_reservation b(std::move(a));
    CHECK_FALSE(a);
    CHECK(b);
    b.commit(1);
    auto d = c.reserve();
    d = channel::send_reservation();  // abandons
    CHECK_FALSE(d);
    CHECK(c.get_num_msg() == 1);
    auto m = c.receive_in_place();
    channel::received_message m2 = std::move(m);
    CHECK(std::memcmp(m2.data().data(), "a", 1) == 0);
    m2 = channel::received_message();  // releases
    CHECK(c.get_num_msg() == 0);
  }
}

TEST_SUITE("processes") {
  // Each fork happens while this process is single-threaded: every earlier test joined its
  // threads. A child reports through its exit status: 0 passed, k = check k failed.
  TEST_CASE("a child blocks in receive on an empty channel; the parent sends later; the child gets it") {
    scoped_name n("fork-rx");
    channel c(create_only, n.c_str(), 2, 64);
    const pid_t child = lockstep::test::fork_child([&]() -> int {
      channel rx(open_only, n.c_str());
      char buf[64];
      std::size_t got = 0;
      rx.receive(buf, sizeof buf, got);
      if (std::string(buf, got) != "across processes") return 1;
      rx.receive(buf, sizeof buf, got);  // a second sleep, a second wake-up
      return std::string(buf, got) == "twice" ? 0 : 2;
    });
    REQUIRE(eventually([&] { return lockstep::test::blocked_in_futex(child); }));
    c.send("across processes", 16);
    REQUIRE(eventually([&] { return c.get_num_msg() == 0 && lockstep::test::blocked_in_futex(child); }));
    c.send("twice", 5);
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(c.get_num_msg() == 0);
  }

  TEST_CASE("a child blocks in send on a full channel; the parent receives later; the child's message follows") {
    scoped_name n("fork-tx");
    channel c(create_only, n.c_str(), 1, 64);
    CHECK(send_text(c, "first"));
    const pid_t child = lockstep::test::fork_child([&]() -> int {
      channel tx(open_only, n.c_str());
      tx.send("second", 6);
      return 0;
    });
    REQUIRE(eventually([&] { return lockstep::test::blocked_in_futex(child); }));
    CHECK(c.get_num_msg() == 1);
    CHECK(receive_text(c) == "first");
    const auto st = lockstep::test::wait_child(child);
    INFO("child ", st.describe());
    CHECK(st.ok());
    CHECK(receive_text(c) == "second");
  }

  TEST_CASE("processes racing to open_or_create one name all end up on one channel") {
    scoped_name n("race");
    constexpr int children = 4;
    std::vector<pid_t> pids;
    for (int i = 0; i < children; ++i)
      pids.push_back(lockstep::test::fork_child([&, i]() -> int {
        channel c(open_or_create, n.c_str(), 8, 8);
        const char msg = char('a' + i);
        c.send(&msg, 1);
        return 0;
      }));
    CHECK(lockstep::stress::wait_children(pids, "open_or_create race"));
    channel c(open_only, n.c_str());
    std::string all;
    for (std::string m; (m = receive_text(c)) != "<empty>";) all += m;
    std::sort(all.begin(), all.end());
    CHECK(all == "abcd");
  }
}

TEST_SUITE("untrusted segment") {
  TEST_CASE("a segment that is not a channel: foreign_segment; a broken one: corrupt_segment; never ready: not_ready") {
    scoped_name n("foreign");
    {
      ipc::shared_memory m(create_only, n.c_str(), 4096);
      std::memset(m.data(), 0xab, m.size());
    }
    CHECK(error_of([&] { channel c(open_only, n.c_str(), 50ms); }) == ipc::errc::corrupt_segment);  // ready reads 0xabababab
    {
      ipc::shared_memory m(open_only, n.c_str());
      reinterpret_cast<ipc::segment_header*>(m.data())->ready.store(1, seam::order::relaxed);
    }
    CHECK(error_of([&] { channel c(open_only, n.c_str(), 50ms); }) == ipc::errc::foreign_segment);
    CHECK(error_of([&] { channel c(open_or_create, n.c_str(), 1, 1); }) == ipc::errc::foreign_segment);

    scoped_name q("queue-kind");
    {
      const ipc::segment_type queue{ipc::segment_kind::message_queue, 1, ipc::detail::channel_layout, "queue"};
      auto s = ipc::create_segment(q.c_str(), queue, 2, 8, 0600, [](std::byte*, const ipc::segment_layout&) {});
    }
    CHECK(error_of([&] { channel c(open_only, q.c_str()); }) == ipc::errc::foreign_segment);

    scoped_name v("version");
    channel a(create_only, v.c_str(), 2, 8);
    {
      ipc::shared_memory m(open_only, v.c_str());
      reinterpret_cast<ipc::segment_header*>(m.data())->version = ipc::detail::channel_layout_version + 1;
    }
    CHECK(error_of([&] { channel c(open_only, v.c_str()); }) == ipc::errc::version_mismatch);

    scoped_name t("truncated");
    channel b(create_only, t.c_str(), 2, 8);
    {
      const int fd = ::shm_open(t.c_str(), O_RDWR, 0);
      REQUIRE(fd >= 0);
      REQUIRE(::ftruncate(fd, 320 + 64) == 0);  // one slot of two
      ::close(fd);
    }
    CHECK(error_of([&] { channel c(open_only, t.c_str()); }) == ipc::errc::corrupt_segment);

    scoped_name r("never-ready");
    {
      channel c(create_only, r.c_str(), 2, 8);
    }
    {
      ipc::shared_memory m(open_only, r.c_str());
      reinterpret_cast<ipc::segment_header*>(m.data())->ready.store(0, seam::order::relaxed);
    }
    const auto t0 = steady::now();
    CHECK(error_of([&] { channel c(open_only, r.c_str(), 50ms); }) == ipc::errc::not_ready);
    CHECK(steady::now() - t0 >= 50ms);
  }

  TEST_CASE("cursors out of range written into a live channel: corrupt_segment from every call, never a crash or hang") {
    scoped_name n("live-cursors");
    channel c(create_only, n.c_str(), 4, 8);
    CHECK(send_text(c, "kept"));
    live_control live(n);
    char buf[8];
    std::size_t got = 0;
    auto every_call_refuses = [&](bool producers_see_it) {
      if (producers_see_it) {
        CHECK(error_of([&] { c.send("x", 1); }) == ipc::errc::corrupt_segment);
        CHECK(error_of([&] { (void)c.try_send("x", 1); }) == ipc::errc::corrupt_segment);
        CHECK(error_of([&] { (void)c.timed_send("x", 1, sys::now() + 1h); }) == ipc::errc::corrupt_segment);
        CHECK(error_of([&] { (void)c.reserve(); }) == ipc::errc::corrupt_segment);
      }
      CHECK(error_of([&] { c.receive(buf, 8, got); }) == ipc::errc::corrupt_segment);
      CHECK(error_of([&] { (void)c.try_receive(buf, 8, got); }) == ipc::errc::corrupt_segment);
      CHECK(error_of([&] { (void)c.receive_for(buf, 8, got, 1h); }) == ipc::errc::corrupt_segment);
      CHECK(error_of([&] { (void)c.receive_in_place(); }) == ipc::errc::corrupt_segment);
      CHECK(c.get_num_msg() <= c.get_max_msg());
    };
    const std::uint32_t good_tail = live.c().tail.load(seam::order::relaxed);
    for (const std::uint32_t bad : {8u, 9u, 0x7fff'ffffu, 0xffff'ffffu, 5u /* count 5 > 4 */}) {
      INFO("tail ", bad);
      live.c().tail.store(bad, seam::order::relaxed);
      live.c().head_seen.write(0);
      every_call_refuses(true);
    }
    live.c().tail.store(good_tail, seam::order::relaxed);
    for (const std::uint32_t bad : {8u, 100u, 0x7fff'ffffu}) {
      INFO("head ", bad);
      live.c().head.store(bad, seam::order::relaxed);
      live.c().tail_seen.write(0);
      every_call_refuses(false);  // producers trust their cache of head until it shows no room (ring.hpp I4)
    }
    live.c().head.store(0, seam::order::relaxed);
    CHECK(receive_text(c) == "kept");  // nothing was lost or consumed
    CHECK(send_text(c, "works"));
    CHECK(receive_text(c) == "works");
  }

  TEST_CASE("a message size out of range written into a live slot: corrupt_segment, the message is not consumed") {
    scoped_name n("live-size");
    channel c(create_only, n.c_str(), 2, 8);
    CHECK(send_text(c, "abc"));
    live_control live(n);
    for (const std::uint32_t bad : {9u, 0x8000'0000u, 0xffff'ffffu}) {
      live.slot(0).size = bad;
      char buf[8];
      std::size_t got = 0;
      CHECK(error_of([&] { c.receive(buf, 8, got); }) == ipc::errc::corrupt_segment);
      CHECK(error_of([&] { (void)c.try_receive_in_place(); }) == ipc::errc::corrupt_segment);
      CHECK(c.get_num_msg() == 1);
    }
    live.slot(0).size = 3;
    CHECK(receive_text(c) == "abc");
  }

  TEST_CASE("a lock word rewritten under a reservation: commit refuses and sends nothing, never an abort") {
    scoped_name n("live-lock");
    channel c(create_only, n.c_str(), 2, 8);
    live_control live(n);
    auto r = c.reserve();
    // Overwrite the send lock (held by us) as a foreign process would: another owner's id.
    auto* word = reinterpret_cast<std::uint32_t*>(&live.c().send_lock);
    const std::uint32_t mine = *word;
    *word = 0x3fff'fffe;
    CHECK(error_of([&] { r.commit(1); }) == errc::operation_not_permitted);  // commit first checks that we hold it
    CHECK(c.get_num_msg() == 0);
    *word = mine;
    r.commit(1);
    CHECK(c.get_num_msg() == 1);
    CHECK(c.timed_send("x", 1, steady::now() + 1s));
    // (A word rewritten between that check and the unlock: ring_test covers the unlock.)
  }

  TEST_CASE("a send lock held forever by a dead or hostile peer: timed calls time out, never hang") {
    scoped_name n("live-held");
    channel c(create_only, n.c_str(), 2, 8);
    live_control live(n);
    auto* word = reinterpret_cast<std::uint32_t*>(&live.c().send_lock);
    *word = 0x3fff'fffe;  // "held" by a thread id nobody has
    const auto t0 = steady::now();
    CHECK_FALSE(c.send_for("x", 1, 30ms));
    CHECK_FALSE(c.timed_send("x", 1, sys::now() + 30ms));
    CHECK_FALSE(c.reserve_for(30ms));
    CHECK(steady::now() - t0 >= 90ms);
    *word = 0;
    CHECK(c.send_for("x", 1, 30ms));
  }
}
