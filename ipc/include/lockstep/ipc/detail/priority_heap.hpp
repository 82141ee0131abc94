// lockstep/ipc/detail/priority_heap.hpp: the message queue's receive order: a binary max-heap of
// {priority, slot, seq} entries, highest priority first, FIFO (lowest seq) within a priority.
//
// An algorithm header like ring.hpp: compiled by production (the heap is an array in the
// queue's segment) and by the Relacy model (the entries are seam::var cells, so that the model
// reports any heap access the receive lock fails to order). It touches the entries only through
// an accessor, so it knows neither memory:
//   heap_entry read_heap(std::uint32_t i) const;       // i < n
//   void write_heap(std::uint32_t i, const heap_entry& e);
//
// Layout of one entry (16 bytes, fixed width):
//
//   | offset | size | field    | meaning                                                  |
//   |--------|------|----------|----------------------------------------------------------|
//   | 0      | 4    | priority | the message's priority, < mq_prio_max                    |
//   | 4      | 4    | slot     | the slot that holds the message, < capacity              |
//   | 8      | 8    | seq      | the message's rank in commit order (never wraps: 2^64)   |
//
// Invariants (n = the number of entries, kept by the caller):
//   H1 (heap order)  For every 0 < i < n: !before(e[i], e[(i - 1) / 2]): a parent is never
//                    after its children, so e[0] is the first message to deliver.
//   H2 (total order) before() is a strict total order on entries with distinct seq: priority
//                    descending, then seq ascending. seq is unique per message (the caller
//                    assigns it from one counter, in commit order), so the order of delivery is
//                    exactly POSIX's: highest priority first, FIFO within a priority.
//
// Why a heap (docs/message-queue.md): push and pop are O(log n) at any depth and any priority
// mix, in one flat array of n entries. Per-priority FIFO lists would make push and pop O(1) but
// need mq_prio_max (32768) list heads per queue, or a bitmap over them; Boost's message_queue
// keeps a sorted array and inserts with a memmove, O(n); the kernel keeps a red-black tree of
// per-priority lists. With seq in the key a heap needs no stability of its own.
//
// Source: J. W. J. Williams, "Algorithm 232: Heapsort", CACM 7(6), 1964 (sift-up, sift-down).
// Shared memory is untrusted: a heap a peer scrambled can only yield a wrong order; every index
// used here is < n, which the caller checked against its local capacity, and the entry the
// caller takes (top) is checked by it before use.
#pragma once

#include <lockstep/seam.hpp>

#include <cstdint>

namespace lockstep::ipc::detail {

struct heap_entry {
  std::uint32_t priority;
  std::uint32_t slot;
  std::uint64_t seq;
};
static_assert(sizeof(heap_entry) == 16 && alignof(heap_entry) == 8, "fixed layout in shared memory");

// Whether a is delivered before b (H2).
constexpr bool before(const heap_entry& a, const heap_entry& b) noexcept {
  if (a.priority != b.priority) return a.priority > b.priority;
  if (seam::mutant("message_queue.heap_ignores_seq")) return false;
  return a.seq < b.seq;
}

// Adds e to the heap of n entries (the accessor has room for n + 1). Restores H1 by moving e
// up from the new leaf: at most log2(n + 1) parent reads and writes.
template <class Access>
void heap_push(Access& a, std::uint32_t n, const heap_entry& e) {
  std::uint32_t i = n;
  while (i > 0) {
    const std::uint32_t parent = (i - 1) / 2;
    const heap_entry p = a.read_heap(parent);
    if (!before(e, p)) break;  // H1 holds at i
    a.write_heap(i, p);
    i = parent;
  }
  a.write_heap(i, e);
}

// Removes the first entry (e[0]) of the heap of n > 0 entries. Restores H1 by moving the last
// entry down from the root: at most 2 log2(n) reads.
template <class Access>
void heap_pop(Access& a, std::uint32_t n) {
  if (--n == 0) return;
  const heap_entry last = a.read_heap(n);
  std::uint32_t i = 0;
  for (;;) {
    const std::uint32_t left = 2 * i + 1;  // n <= 2^30 (the caller's capacity): no overflow
    if (left >= n) break;
    std::uint32_t child = left;
    heap_entry c = a.read_heap(left);
    if (left + 1 < n) {
      const heap_entry r = a.read_heap(left + 1);
      if (before(r, c)) {
        child = left + 1;
        c = r;
      }
    }
    if (!before(c, last)) break;  // H1 holds at i
    a.write_heap(i, c);
    i = child;
  }
  a.write_heap(i, last);
}

}  // namespace lockstep::ipc::detail
