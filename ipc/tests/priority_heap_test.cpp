// ipc/tests/priority_heap_test.cpp: unit tests of <lockstep/ipc/detail/priority_heap.hpp>: the
// delivery order (priority descending, seq ascending) against a sorted reference for random
// mixes of pushes and pops, the heap property after every step, and the O(log n) bound on the
// entries one push or pop touches at depth 10,000.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/detail/priority_heap.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <tuple>
#include <vector>

using lockstep::ipc::detail::before;
using lockstep::ipc::detail::heap_entry;
using lockstep::ipc::detail::heap_pop;
using lockstep::ipc::detail::heap_push;

namespace {

struct vector_heap {
  std::vector<heap_entry> e;
  mutable std::uint64_t touched = 0;  // reads + writes
  heap_entry read_heap(std::uint32_t i) const {
    ++touched;
    return e.at(i);
  }
  void write_heap(std::uint32_t i, const heap_entry& x) {
    ++touched;
    e.at(i) = x;
  }
};

// The reference order: a set sorted by (priority descending, seq ascending).
struct ref_less {
  bool operator()(const heap_entry& a, const heap_entry& b) const {
    return std::tuple(~a.priority, a.seq) < std::tuple(~b.priority, b.seq);
  }
};

bool heap_ordered(const vector_heap& h, std::uint32_t n) {
  for (std::uint32_t i = 1; i < n; ++i)
    if (before(h.e[i], h.e[(i - 1) / 2])) return false;
  return true;
}

}  // namespace

TEST_CASE("before: higher priority first, then lower seq; strict") {
  CHECK(before({5, 0, 9}, {4, 1, 1}));
  CHECK_FALSE(before({4, 1, 1}, {5, 0, 9}));
  CHECK(before({3, 0, 1}, {3, 1, 2}));
  CHECK_FALSE(before({3, 1, 2}, {3, 0, 1}));
  CHECK_FALSE(before({3, 0, 1}, {3, 0, 1}));
}

TEST_CASE("random pushes and pops deliver exactly the reference order, heap property after each step") {
  for (const std::uint32_t priorities : {1u, 3u, 32768u}) {
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
      CAPTURE(priorities);
      CAPTURE(seed);
      std::mt19937 rng(seed);
      const std::uint32_t cap = 1 + rng() % 64;
      vector_heap h;
      h.e.resize(cap);
      std::set<heap_entry, ref_less> ref;
      std::uint32_t n = 0;
      std::uint64_t seq = 0;
      for (int step = 0; step < 2000; ++step) {
        if (n < cap && (n == 0 || rng() % 2 == 0)) {
          const heap_entry x{static_cast<std::uint32_t>(rng() % priorities), n, seq++};
          heap_push(h, n, x);
          ++n;
          ref.insert(x);
        } else {
          const heap_entry top = h.e[0];
          REQUIRE(top.priority == ref.begin()->priority);
          REQUIRE(top.seq == ref.begin()->seq);
          ref.erase(ref.begin());
          heap_pop(h, n);
          --n;
        }
        REQUIRE(heap_ordered(h, n));
      }
    }
  }
}

TEST_CASE("O(log n): one push or pop at depth 10,000 touches at most 3 log2(n) + 2 entries (two reads and a write per level)") {
  vector_heap h;
  const std::uint32_t cap = 10000;
  h.e.resize(cap + 1);
  std::mt19937 rng(7);
  std::uint32_t n = 0;
  for (; n < cap; ++n) heap_push(h, n, {static_cast<std::uint32_t>(rng() % 32768), 0, n});
  std::uint64_t worst = 0;
  for (int i = 0; i < 1000; ++i) {
    h.touched = 0;
    heap_push(h, n, {static_cast<std::uint32_t>(rng() % 32768), 0, cap + static_cast<std::uint32_t>(i)});
    worst = std::max(worst, h.touched);
    h.touched = 0;
    heap_pop(h, n + 1);
    worst = std::max(worst, h.touched);
  }
  CHECK(worst <= 3 * 14 + 2);  // log2(10001) < 14
}

TEST_CASE("a single entry, and pops down to empty") {
  vector_heap h;
  h.e.resize(1);
  heap_push(h, 0, {1, 0, 0});
  CHECK(h.e[0].priority == 1);
  heap_pop(h, 1);  // leaves nothing to restore
}
