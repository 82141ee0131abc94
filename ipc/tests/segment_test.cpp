// ipc/tests/segment_test.cpp: unit tests of <lockstep/ipc/segment.hpp>: the layout arithmetic,
// create / open / open_or_create, publication (ready) with its bounded wait, and validation of
// every header field against the file's real size: foreign, wrong kind, wrong version,
// truncated, extended, sizes out of range or overflowing, inconsistent fields, never ready.
//
// Corruptions are written through a second, independent mapping of the same name, as a
// foreign or broken peer would; each must end in its documented error code, never in a crash
// or a hang.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/segment.hpp>

#include "ipc_support.hpp"

#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using lockstep::ipc::segment;
using lockstep::ipc::segment_header;
using lockstep::ipc::segment_kind;
using lockstep::ipc::segment_layout;
using lockstep::ipc::segment_type;
using lockstep::ipc::shared_memory;
using lockstep::ipc::slot_array_layout;
using lockstep::test::error_of;
using lockstep::test::scoped_name;
namespace ipc = lockstep::ipc;
namespace seam = lockstep::seam;
using steady = std::chrono::steady_clock;

namespace {

// A kind for these tests only: 128 header bytes, at most 1024 slots of at most 4096 bytes.
bool test_layout(std::uint64_t capacity, std::uint64_t max_msg_size, segment_layout& out) noexcept {
  return slot_array_layout(capacity, 1024, max_msg_size, 4096, 128, out);
}
constexpr segment_type test_type{segment_kind::channel, 0x7e57, test_layout, "test segment"};
constexpr segment_type test_type_v2{segment_kind::channel, 0x7e58, test_layout, "test segment"};
constexpr segment_type queue_type{segment_kind::message_queue, 0x7e57, test_layout, "test queue"};

void no_init(std::byte*, const segment_layout&) {}

segment create(const scoped_name& n, std::uint64_t capacity = 4, std::uint64_t max = 100) {
  return ipc::create_segment(n.c_str(), test_type, capacity, max, 0600, no_init);
}

std::error_code open_error(const scoped_name& n, const segment_type& t = test_type,
                           std::chrono::nanoseconds bound = ipc::default_ready_timeout) {
  return error_of([&] { (void)ipc::open_segment(n.c_str(), t, bound); });
}

// A second mapping of `n`, the way another process would see it; `edit` changes its header.
void corrupt(const scoped_name& n, const std::function<void(segment_header&)>& edit) {
  shared_memory m(ipc::open_only, n.c_str());
  edit(*reinterpret_cast<segment_header*>(m.data()));
}

void resize_file(const scoped_name& n, off_t size) {
  const int fd = ::shm_open(n.c_str(), O_RDWR, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, size) == 0);
  ::close(fd);
}

}  // namespace

TEST_SUITE("layout") {
  TEST_CASE("slots are header + payload rounded up to 64 bytes, after header_size bytes") {
    segment_layout l{};
    REQUIRE(test_layout(1, 0, l));
    CHECK(l.slot_stride == 64);
    CHECK(l.total_size == 128 + 64);
    REQUIRE(test_layout(3, 56, l));  // 8 + 56 = 64: still one line
    CHECK(l.slot_stride == 64);
    REQUIRE(test_layout(3, 57, l));
    CHECK(l.slot_stride == 128);
    CHECK(l.header_size == 128);
    CHECK(l.total_size == 128 + 3 * 128);
    CHECK(l.capacity == 3);
    CHECK(l.max_msg_size == 57);
  }

  TEST_CASE("out of range: no slot, too many slots, too large a message, a bad header size") {
    segment_layout l{};
    CHECK_FALSE(test_layout(0, 10, l));
    CHECK_FALSE(test_layout(1025, 10, l));
    CHECK_FALSE(test_layout(1, 4097, l));
    CHECK_FALSE(test_layout(UINT64_MAX, 10, l));
    CHECK_FALSE(slot_array_layout(1, 1, 0, 0, 32, l));   // below the segment header
    CHECK_FALSE(slot_array_layout(1, 1, 0, 0, 100, l));  // not a multiple of 64
    CHECK_FALSE(slot_array_layout(1, 1, UINT32_MAX, UINT64_MAX, 64, l));  // stride would not fit 32 bits
  }

  TEST_CASE("sizes whose arithmetic overflows are refused, not wrapped") {
    segment_layout l{};
    // header_size + slots wraps around 2^64.
    CHECK_FALSE(slot_array_layout(1, 1, 0, 0, 0xffff'ffff'ffff'ffc0ull, l));
    // capacity * stride is near 2^63: beyond ptrdiff_t and off_t.
    CHECK_FALSE(slot_array_layout(UINT32_MAX, UINT64_MAX, 0x8000'0000ull, UINT64_MAX, 64, l));
    // The largest that fits is accepted.
    CHECK(slot_array_layout(UINT32_MAX, UINT64_MAX, 0x7fff'0000ull, UINT64_MAX, 64, l));
    CHECK(l.total_size == 64 + std::uint64_t(UINT32_MAX) * 0x7fff'0040ull);
  }
}

TEST_SUITE("create and open") {
  TEST_CASE("create writes a published header; open finds the same layout") {
    scoped_name n("create");
    segment s = create(n, 5, 200);
    CHECK(s.created);
    CHECK(std::memcmp(s.base(), "lockstep", 8) == 0);
    const auto& h = *reinterpret_cast<const segment_header*>(s.base());
    CHECK(h.kind == std::uint32_t(segment_kind::channel));
    CHECK(h.version == 0x7e57);
    CHECK(h.ready.load(seam::order::relaxed) == 1);
    CHECK(s.memory.size() == s.layout.total_size);
    CHECK(s.kind_area() == s.base() + 64);
    CHECK(s.first_slot() == s.base() + 128);

    segment o = ipc::open_segment(n.c_str(), test_type);
    CHECK_FALSE(o.created);
    CHECK(o.layout.capacity == 5);
    CHECK(o.layout.max_msg_size == 200);
    CHECK(o.layout.slot_stride == s.layout.slot_stride);
    CHECK(o.layout.total_size == s.layout.total_size);
  }

  TEST_CASE("create runs init on the kind's area before publishing; if init throws, the name is removed") {
    scoped_name n("init");
    bool ran = false;
    segment s = ipc::create_segment(n.c_str(), test_type, 2, 8, 0600, [&](std::byte* area, const segment_layout& l) {
      const auto& h = *reinterpret_cast<const segment_header*>(area - 64);
      ran = h.ready.load(seam::order::relaxed) == 0 && l.capacity == 2;
      area[0] = std::byte{0x5a};
    });
    CHECK(ran);
    CHECK(s.kind_area()[0] == std::byte{0x5a});

    scoped_name t("init-throws");
    CHECK_THROWS_AS(ipc::create_segment(t.c_str(), test_type, 2, 8, 0600,
                                        [](std::byte*, const segment_layout&) { throw std::runtime_error("init"); }),
                    std::runtime_error);
    CHECK_FALSE(t.exists());
  }

  TEST_CASE("errors: bad name and sizes (before creating anything), exists, missing") {
    scoped_name n("errors");
    CHECK(error_of([&] { create(n, 0); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { create(n, 1025); }) == std::errc::invalid_argument);
    CHECK(error_of([&] { create(n, 1, 4097); }) == std::errc::invalid_argument);
    CHECK_FALSE(n.exists());
    CHECK(error_of([] { ipc::create_segment("a/b", test_type, 1, 1, 0600, no_init); }) == std::errc::invalid_argument);
    CHECK(open_error(n) == std::errc::no_such_file_or_directory);
    segment s = create(n);
    CHECK(error_of([&] { create(n); }) == std::errc::file_exists);
  }

  TEST_CASE("open_or_create: creates when missing, opens (with the creator's sizes) when present") {
    scoped_name n("ooc");
    segment a = ipc::open_or_create_segment(n.c_str(), test_type, 3, 30, 0600, 1s, no_init);
    CHECK(a.created);
    segment b = ipc::open_or_create_segment(n.c_str(), test_type, 7, 70, 0600, 1s, no_init);
    CHECK_FALSE(b.created);
    CHECK(b.layout.capacity == 3);
    CHECK(b.layout.max_msg_size == 30);
    // Sizes out of range are the caller's error even when the segment exists.
    CHECK(error_of([&] { ipc::open_or_create_segment(n.c_str(), test_type, 0, 30, 0600, 1s, no_init); }) ==
          std::errc::invalid_argument);
    // A segment of another kind under the name is not opened as this one.
    CHECK(error_of([&] { ipc::open_or_create_segment(n.c_str(), queue_type, 3, 30, 0600, 1s, no_init); }) ==
          ipc::errc::foreign_segment);
  }

  TEST_CASE("an opener waits for the creator's ready, and is woken by it") {
    scoped_name n("wait-ready");
    // A creator stopped between sizing the file and publishing it: header written, ready 0.
    segment_layout l{};
    REQUIRE(test_layout(2, 16, l));
    shared_memory raw(ipc::create_only, n.c_str(), l.total_size);
    auto& h = *reinterpret_cast<segment_header*>(raw.data());
    h.magic = ipc::segment_magic;
    h.kind = std::uint32_t(segment_kind::channel);
    h.version = 0x7e57;
    h.capacity = 2;
    h.max_msg_size = 16;
    h.slot_stride = l.slot_stride;
    h.header_size = l.header_size;
    h.total_size = l.total_size;
    const lockstep::test::futex_calls calls;
    std::error_code ec = make_error_code(ipc::errc::not_ready);
    std::thread opener([&] { ec = open_error(n, test_type, 10s); });
    REQUIRE(lockstep::test::eventually([&] { return calls.waits() > 0; }));
    h.ready.store(1, seam::order::release);
    seam::futex_wake(h.ready, INT_MAX, seam::scope::process_shared);
    opener.join();
    CHECK_FALSE(ec);
  }
}

TEST_SUITE("validation") {
  TEST_CASE("not a lockstep segment: wrong magic, or all 0xff -> foreign_segment") {
    scoped_name n("magic");
    segment s = create(n);
    corrupt(n, [](segment_header& h) { h.magic ^= 1; });
    CHECK(open_error(n) == ipc::errc::foreign_segment);
    corrupt(n, [&](segment_header& h) { std::memset(static_cast<void*>(&h), 0xff, sizeof h); });
    // ready reads 0xffffffff: not "ready" (1), not "initializing" (0): corrupt, at once.
    CHECK(open_error(n) == ipc::errc::corrupt_segment);
  }

  TEST_CASE("a lockstep segment of another kind -> foreign_segment") {
    scoped_name n("kind");
    segment s = create(n);
    CHECK(open_error(n, queue_type) == ipc::errc::foreign_segment);
    corrupt(n, [](segment_header& h) { h.kind = 99; });
    CHECK(open_error(n) == ipc::errc::foreign_segment);
  }

  TEST_CASE("another layout version -> version_mismatch") {
    scoped_name n("version");
    segment s = create(n);
    CHECK(open_error(n, test_type_v2) == ipc::errc::version_mismatch);
    corrupt(n, [](segment_header& h) { h.version = 1; });
    CHECK(open_error(n) == ipc::errc::version_mismatch);
  }

  TEST_CASE("sizes out of range or inconsistent with each other -> corrupt_segment") {
    scoped_name n("sizes");
    segment s = create(n, 4, 100);
    std::byte good[sizeof(segment_header)];
    std::memcpy(good, s.base(), sizeof good);
    const std::function<void(segment_header&)> edits[] = {
        [](segment_header& h) { h.capacity = 0; },
        [](segment_header& h) { h.capacity = 1025; },
        [](segment_header& h) { h.capacity = UINT32_MAX; },
        [](segment_header& h) { h.capacity = 5; },  // in range, but the total no longer matches
        [](segment_header& h) { h.max_msg_size = 4097; },
        [](segment_header& h) { h.max_msg_size = UINT32_MAX; },
        [](segment_header& h) { h.max_msg_size = 200; },
        [](segment_header& h) { h.slot_stride = 64; },
        [](segment_header& h) { h.slot_stride = 0; },
        [](segment_header& h) { h.header_size = 64; },
        [](segment_header& h) { h.header_size = 0xffff'ffff'ffff'ffc0ull; },
        [](segment_header& h) { h.total_size += 64; },
        [](segment_header& h) { h.total_size = UINT64_MAX; },
        [](segment_header& h) { h.ready.store(7, seam::order::relaxed); },
    };
    int k = 0;
    for (const auto& edit : edits) {
      INFO("edit ", k++);
      corrupt(n, [&](segment_header& h) {
        std::memcpy(static_cast<void*>(&h), good, sizeof h);
        edit(h);
      });
      CHECK(open_error(n) == ipc::errc::corrupt_segment);
    }
    corrupt(n, [&](segment_header& h) { std::memcpy(static_cast<void*>(&h), good, sizeof h); });
    CHECK_FALSE(open_error(n));  // the control: the untouched header opens
  }

  TEST_CASE("a file truncated or extended behind the header's back -> corrupt_segment") {
    scoped_name n("resize");
    segment s = create(n, 4, 100);
    const auto total = off_t(s.layout.total_size);
    resize_file(n, total + 4096);
    CHECK(open_error(n) == ipc::errc::corrupt_segment);
    resize_file(n, total - 64);  // one slot short
    CHECK(open_error(n) == ipc::errc::corrupt_segment);
    resize_file(n, 100);  // the header is there, the kind's area is not
    CHECK(open_error(n) == ipc::errc::corrupt_segment);
    resize_file(n, 10);  // not even a header
    CHECK(open_error(n) == ipc::errc::corrupt_segment);
    resize_file(n, total);  // the control: the header's first 10 bytes alone are not a segment
    CHECK(open_error(n, test_type, 50ms) == ipc::errc::not_ready);
  }

  TEST_CASE("validate_segment on bytes that are not a mapping of a segment") {
    segment_layout l{};
    CHECK(ipc::validate_segment(nullptr, 0, test_type, l) == ipc::errc::corrupt_segment);
    alignas(64) std::byte bytes[64] = {};
    CHECK(ipc::validate_segment(bytes, 63, test_type, l) == ipc::errc::corrupt_segment);
    CHECK(ipc::validate_segment(bytes, 64, test_type, l) == ipc::errc::foreign_segment);
  }

  TEST_CASE("never ready: not_ready after the bound (a short one here), never a hang") {
    scoped_name n("never-ready");
    segment s = create(n);
    corrupt(n, [](segment_header& h) { h.ready.store(0, seam::order::relaxed); });
    const auto t0 = steady::now();
    CHECK(open_error(n, test_type, 50ms) == ipc::errc::not_ready);
    CHECK(steady::now() - t0 >= 50ms);

    // A name whose creator never even sized the file.
    scoped_name e("never-sized");
    const int fd = ::shm_open(e.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    const auto t1 = steady::now();
    CHECK(open_error(e, test_type, 50ms) == ipc::errc::not_ready);
    CHECK(steady::now() - t1 >= 50ms);
  }

  TEST_CASE("the error category: lockstep.ipc, a message per code, comparable as an enum") {
    const std::error_code ec = ipc::errc::corrupt_segment;
    CHECK(std::string(ec.category().name()) == "lockstep.ipc");
    CHECK(ec == ipc::errc::corrupt_segment);
    CHECK(ec != ipc::errc::foreign_segment);
    CHECK(ec != std::errc::invalid_argument);
    for (const auto e : {ipc::errc::foreign_segment, ipc::errc::version_mismatch, ipc::errc::corrupt_segment,
                         ipc::errc::not_ready})
      CHECK(make_error_code(e).message().find("unknown") == std::string::npos);
  }
}
