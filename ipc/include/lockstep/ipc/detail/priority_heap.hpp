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
//   H3 (one hole)    (Each write_heap is of a whole entry: production's is one 16-byte store
//                    instruction, message_queue.hpp, so a kill cannot leave half an entry.)
//                    heap_push and heap_pop move one hole: between any two of their writes
//                    the positions they touch hold the old entries plus e (push) or minus the top
//                    (pop), except that one position holds a copy of the entry next to it on the
//                    hole's path (or, before a push's first write, the stale leaf n). So a holder
//                    killed at any instruction leaves a heap that heap_restore can complete from
//                    its journal entry (mq_protocol.hpp Q6). (Mutant message_queue.repair_skips_heap.)
//   H4 (repair is     The repair is heap_restore (one write) then heap_order (sift-downs, each
//       repairable)   announced with the entry it carries). So a repairer killed at any write
//                    also leaves an H3 state, with the announced entry, or the journal's, as the
//                    missing one: the next repairer runs heap_restore with it, then heap_order
//                    again, and ends with the same heap. (A single repair that rebuilt the
//                    heap with unannounced sift-downs, as the first version did, lost the
//                    carried entry and kept a copy of another when killed: a slot then sat in
//                    two places, and the kill soak delivered hundreds of messages twice.)
//
// Why a heap (docs/message-queue.md): push and pop are O(log n) at any depth and any priority
// mix, in one flat array of n entries. Per-priority FIFO lists would make push and pop O(1) but
// need mq_prio_max (32768) list heads per queue, or a bitmap over them; Boost's message_queue
// keeps a sorted array and inserts with a memmove, O(n); the kernel keeps a red-black tree of
// per-priority lists. With seq in the key a heap needs no stability of its own.
//
// Source: J. W. J. Williams, "Algorithm 232: Heapsort", CACM 7(6), 1964 (sift-up, sift-down);
// R. W. Floyd, "Algorithm 245: Treesort 3", CACM 7(12), 1964 (building a heap in O(n)).
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

// Puts e into the hole at i of a heap of n entries (positions [0, n), i < n, H1 holding
// everywhere but at i) by moving the hole down past every child before e: at most 2 log2(n)
// reads.
template <class Access>
void heap_sift_down(Access& a, std::uint32_t n, std::uint32_t i, const heap_entry& e) {
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
    if (!before(c, e)) break;  // H1 holds at i
    a.write_heap(i, c);
    i = child;
  }
  a.write_heap(i, e);
}

// Removes the first entry (e[0]) of the heap of n > 0 entries. Restores H1 by moving the last
// entry down from the root.
template <class Access>
void heap_pop(Access& a, std::uint32_t n) {
  if (--n == 0) return;
  heap_sift_down(a, n, 0, a.read_heap(n));
}

// Repair after a holder killed mid-operation (mq_protocol.hpp Q6) comes in two steps, each safe
// to be killed in itself and run again (H4):
//
// heap_restore: positions [0, n) get exactly the intended n entries, which include e, in some
// order. Precondition (H3, kept by heap_push, heap_pop and heap_sift_down at every write): [0, n)
// holds the intended entries with at most one of them replaced by something else, and then
//   (a) e is missing and one entry sits both at a position and at its parent (the hole of a
//       push's sift-up, or of a pop's or a sift's sift-down, always holds a copy of its
//       neighbour), or
//   (b) e is missing and position n - 1 holds the something else (a push that had not moved
//       yet, n - 1 being the new leaf; a pop that had finished, n - 1 being the old last leaf).
// e goes to the child of the duplicated pair (a; either copy may go), or to n - 1 (b): one
// write, none if e is present. Entries are compared by seq, unique per message (H2). O(n) reads.
template <class Access>
void heap_restore(Access& a, std::uint32_t n, const heap_entry& e) {
  for (std::uint32_t i = 0; i < n; ++i)
    if (a.read_heap(i).seq == e.seq) return;  // present: nothing was lost
  std::uint32_t at = n - 1;  // (b)
  for (std::uint32_t i = 1; i < n; ++i)
    if (a.read_heap(i).seq == a.read_heap((i - 1) / 2).seq) {  // (a): one copy makes room for e
      at = i;
      break;
    }
  a.write_heap(at, e);
}

// Whether [0, n) is in heap order (H1): n - 1 pairs of reads, no write.
template <class Access>
bool heap_in_order(const Access& a, std::uint32_t n) {
  for (std::uint32_t i = 1; i < n; ++i)
    if (before(a.read_heap(i), a.read_heap((i - 1) / 2))) return false;
  return true;
}

// heap_order: H1 for the n entries in [0, n), whatever their order: Floyd's construction, O(n),
// as a sequence of sift-downs. Each moves one hole (H3) and carries one entry, which is in no
// position until the sift ends, so it is announced first: announce(c) before the sift of c and
// done() after it. A repairer killed mid-sift leaves, in the announcement, exactly what
// heap_restore(n, c) needs to put the carried entry back (H4).
template <class Access, class Announce, class Done>
void heap_order(Access& a, std::uint32_t n, Announce&& announce, Done&& done) {
  for (std::uint32_t i = n / 2; i-- > 0;) {
    const heap_entry c = a.read_heap(i);
    if (!seam::mutant("message_queue.order_unannounced")) announce(c);
    heap_sift_down(a, n, i, c);
    done();
  }
}

}  // namespace lockstep::ipc::detail
