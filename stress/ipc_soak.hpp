// stress/ipc_soak.hpp: what the IPC soaks (channel_stress.cpp, message_queue_stress.cpp) share:
// the message format and its checksum, the shared tally that counts every message, the
// per-producer order check, the verdict line, and one phase run by forked processes or by
// threads of this process.
//
// A message is (producer, seq, tag): `tag` is a class within which a producer's messages must
// stay in order (the message queue's priority; 0 for the channel). A message of at least
// sizeof(header) bytes carries
//
//   | offset | field    | type | meaning                                                        |
//   |--------|----------|------|----------------------------------------------------------------|
//   | 0      | producer | u32  | 0..producers-1; stop_producer in a stop message                |
//   | 4      | seq      | u32  | its number within its producer's messages: 0, 1, 2, ...        |
//   | 8      | tag      | u32  | the order class (priority)                                     |
//   | 12     | size     | u32  | the whole message's length                                     |
//   | 16     | checksum | u64  | FNV-1a of the header (checksum read as 0) and the payload      |
//   | 24     | payload  |      | bytes derived from (producer, seq): a misplaced byte shows     |
//
// A shorter message (0..23 bytes) has no room for its identity: its bytes are a pattern of its
// length, and it is counted per length (sent by producers, received by consumers); a lost or
// duplicated short message shows as a count mismatch of its length, a damaged one as corrupt.
// Its order is not checked (it has no sequence number).
//
// The checks, exact, per phase: every producer sent its count; lost (a (producer, seq) nobody
// received, or a short length received fewer times than sent) = 0; duplicated (received twice:
// a shared bitmap, fetch_or; or a short length received more often than sent) = 0; corrupt
// (size, fields, checksum or pattern wrong) = 0; reordered (a consumer saw a producer's seq
// not above the last it saw from that producer in that tag) = 0; the queue empty afterwards.
// With two consumers each consumer's messages are a subsequence of the one delivery order, so
// per-producer order must hold for each of them; with one consumer it is the whole order.
#pragma once

#include "common.hpp"

#include <lockstep/seam.hpp>  // LOCKSTEP_TSAN: a ThreadSanitizer build

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>

namespace lockstep::stress::soak {

constexpr unsigned max_producers = 8;
constexpr unsigned max_tags = 8;  // tags index the order check: 0..max_tags-1
constexpr std::uint32_t stop_producer = 0xffff'ffff;

struct header {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t tag;
  std::uint32_t size;
  std::uint64_t checksum;
};
static_assert(sizeof(header) == 24 && offsetof(header, checksum) == 16);
constexpr std::size_t short_sizes = sizeof(header);  // lengths 0..23 are short messages

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64: every per-message choice
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The random word of message (producer, seq): sizes, tags and calls are chosen from it.
inline std::uint64_t choice(std::uint32_t producer, std::uint32_t seq) { return mix(std::uint64_t(producer) << 32 | seq); }

inline std::uint64_t fnv(const unsigned char* p, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ull) {
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

inline unsigned char short_byte(std::size_t size, std::size_t i) { return static_cast<unsigned char>(0x5a ^ size * 31 ^ i * 7); }
inline unsigned char payload_byte(std::uint64_t r, std::size_t i) { return static_cast<unsigned char>(r >> (i % 56) ^ i); }

inline std::uint64_t checksum(const header& h, const unsigned char* payload) {
  header z = h;
  z.checksum = 0;
  return fnv(payload, h.size - sizeof h, fnv(reinterpret_cast<const unsigned char*>(&z), sizeof z));
}

// Writes message (producer, seq, tag) of `size` bytes into buf (shared memory for the zero-copy
// paths: it is written once, in place, and never read back).
inline void fill(unsigned char* buf, std::size_t size, std::uint32_t producer, std::uint32_t seq, std::uint32_t tag) {
  if (size < sizeof(header)) {
    for (std::size_t i = 0; i < size; ++i) buf[i] = short_byte(size, i);
    return;
  }
  const std::uint64_t r = choice(producer, seq);
  unsigned char* payload = buf + sizeof(header);
  for (std::size_t i = 0; i < size - sizeof(header); ++i) payload[i] = payload_byte(r, i + sizeof(header));
  header h{producer, seq, tag, std::uint32_t(size), 0};
  h.checksum = checksum(h, payload);
  std::memcpy(buf, &h, sizeof h);
}

inline header stop_message() { return {stop_producer, 0, 0, sizeof(header), 0}; }

// What a consumer makes of a received message. Reads buf (possibly shared memory, in place)
// without writing it.
struct inspected {
  enum kind_t { data, short_data, stop, corrupt } kind;
  header h;
};
inline inspected inspect(const unsigned char* buf, std::size_t n, unsigned producers, unsigned long per_producer) {
  inspected m{inspected::corrupt, {}};
  if (n < sizeof(header)) {
    for (std::size_t i = 0; i < n; ++i)
      if (buf[i] != short_byte(n, i)) return m;
    m.kind = inspected::short_data;
    return m;
  }
  std::memcpy(&m.h, buf, sizeof m.h);
  const header& h = m.h;
  if (n == sizeof h && h.producer == stop_producer) {
    m.kind = inspected::stop;
    return m;
  }
  if (h.size != n || h.producer >= producers || h.seq >= per_producer || h.tag >= 0x1'0000) return m;
  const std::uint64_t r = choice(h.producer, h.seq);
  const unsigned char* payload = buf + sizeof h;
  for (std::size_t i = 0; i < n - sizeof h; ++i)
    if (payload[i] != payload_byte(r, i + sizeof h)) return m;
  if (checksum(h, payload) != h.checksum) return m;
  m.kind = inspected::data;
  return m;
}

// --- counting ----------------------------------------------------------------------------------

// One consumer's view of per-producer order: the last seq it saw of each (producer, tag).
struct order {
  std::int64_t last[max_producers][max_tags];
  order() {
    for (auto& row : last)
      for (auto& x : row) x = -1;
  }
};

// What every party of a phase shares (in a MAP_SHARED mapping, so forked processes count into it).
struct tally {
  std::atomic<unsigned long long> sent{0}, received{0}, duplicated{0}, corrupt{0}, out_of_order{0}, timeouts{0};
  std::atomic<unsigned long long> short_sent[short_sizes]{}, short_received[short_sizes]{};
  unsigned producers = 0;
  unsigned long per_producer = 0;
  std::atomic<std::uint64_t>* seen = nullptr;  // producers x per_producer bits

  // A producer sent message (producer, seq) of `size` bytes.
  void on_sent(std::size_t size) {
    if (size < short_sizes) short_sent[size].fetch_add(1, std::memory_order_relaxed);
  }
  // A consumer received one; returns what it was (stop: the consumer is done).
  inspected::kind_t on_received(const unsigned char* buf, std::size_t n, unsigned tag_index, order& o);
};

// tag_index: where the message's tag sits in the consumer's order table (0..max_tags-1; the
// caller has checked that the tag is one it knows, and counts a message with an unknown one as corrupt).
inline inspected::kind_t tally::on_received(const unsigned char* buf, std::size_t n, unsigned tag_index, order& o) {
  const inspected m = inspect(buf, n, producers, per_producer);
  switch (m.kind) {
    case inspected::stop: return m.kind;
    case inspected::corrupt: corrupt.fetch_add(1, std::memory_order_relaxed); return m.kind;
    case inspected::short_data:
      received.fetch_add(1, std::memory_order_relaxed);
      short_received[n].fetch_add(1, std::memory_order_relaxed);
      return m.kind;
    case inspected::data: break;
  }
  received.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t bit = std::uint64_t(m.h.producer) * per_producer + m.h.seq;
  if (seen[bit / 64].fetch_or(1ull << (bit % 64), std::memory_order_relaxed) & (1ull << (bit % 64)))
    duplicated.fetch_add(1, std::memory_order_relaxed);
  std::int64_t& last = o.last[m.h.producer][tag_index % max_tags];
  if (std::int64_t(m.h.seq) <= last) out_of_order.fetch_add(1, std::memory_order_relaxed);
  last = m.h.seq;
  return m.kind;
}

// A tally and its bitmap in one anonymous MAP_SHARED mapping.
class shared_tally {
 public:
  shared_tally(unsigned producers, unsigned long per_producer) : words_((std::size_t(producers) * per_producer + 63) / 64) {
    if (producers > max_producers) die("too many producers for the soak's order table");
    bytes_ = sizeof(tally) + words_ * sizeof(std::uint64_t);
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    t_ = ::new (p) tally();
    t_->producers = producers;
    t_->per_producer = per_producer;
    t_->seen = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(p) + sizeof(tally));
    for (std::size_t i = 0; i < words_; ++i) ::new (&t_->seen[i]) std::atomic<std::uint64_t>(0);
  }
  shared_tally(const shared_tally&) = delete;
  shared_tally& operator=(const shared_tally&) = delete;
  ~shared_tally() { ::munmap(t_, bytes_); }
  tally& operator*() const { return *t_; }
  tally* operator->() const { return t_; }
  std::size_t words() const { return words_; }

 private:
  std::size_t words_, bytes_;
  tally* t_;
};

// Prints the phase's line and returns whether every count is what it must be. `left`: messages
// still queued afterwards.
inline bool judge(const char* phase, const shared_tally& t, std::size_t left, double secs) {
  const unsigned long long expected = 1ull * t->producers * t->per_producer;
  unsigned long long distinct = 0, short_sent = 0, short_lost = 0, short_dup = 0;
  for (std::size_t i = 0; i < t.words(); ++i) distinct += std::uint64_t(__builtin_popcountll(t->seen[i].load()));
  for (std::size_t n = 0; n < short_sizes; ++n) {
    const unsigned long long s = t->short_sent[n].load(), r = t->short_received[n].load();
    short_sent += s;
    (s > r ? short_lost : short_dup) += s > r ? s - r : r - s;
  }
  const unsigned long long sent = t->sent.load(), full = sent >= short_sent ? sent - short_sent : 0;
  const unsigned long long lost = (full > distinct ? full - distinct : 0) + short_lost;
  const unsigned long long duplicated = t->duplicated.load() + short_dup;
  char detail[320];
  std::snprintf(detail, sizeof detail,
                "sent %llu received %llu (%llu short) lost %llu duplicated %llu reordered %llu corrupt %llu left %zu timeouts %llu",
                sent, t->received.load(), short_sent, lost, duplicated, t->out_of_order.load(), t->corrupt.load(), left,
                t->timeouts.load());
  report(phase, t->received.load(), secs, detail);
  const bool ok = sent == expected && t->received.load() == expected && lost == 0 && duplicated == 0 &&
                  t->corrupt.load() == 0 && t->out_of_order.load() == 0 && left == 0;
  if (!ok) std::fprintf(stderr, "%s: FAILED: %s\n", phase, detail);
  return ok;
}

// --- one phase ---------------------------------------------------------------------------------

struct plan {
  const char* phase;
  unsigned producers, consumers;
  unsigned long per_producer;
  bool processes;  // forked processes, or threads of this process
};

// Runs one phase: consumers, then producers, start together-ish (consumers first, so that
// producers meet both full and empty); when every producer has finished, stop(consumers)
// sends one stop message per consumer, which FIFO delivers after every data message; then
// judges the counts, with left() the messages still queued.
//   produce(id, tally&)  sends producer id's per_producer messages, counting into the tally
//   consume(tally&)      receives until it gets a stop message
// Processes are forked from this (single-threaded) process; a child that fails fails the phase.
template <class Produce, class Consume, class Stop, class Left>
bool run_phase(const plan& p, Produce produce, Consume consume, Stop stop, Left left) {
  shared_tally t(p.producers, p.per_producer);
  stopwatch clock;
  bool ok = true;
  if (p.processes) {
    std::vector<pid_t> prods, cons;
    for (unsigned c = 0; c < p.consumers; ++c) cons.push_back(fork_child([&] { return consume(*t), 0; }));
    for (std::uint32_t id = 0; id < p.producers; ++id) prods.push_back(fork_child([&, id] { return produce(id, *t), 0; }));
    ok = wait_children(prods, p.phase);
    stop(p.consumers);
    ok = wait_children(cons, p.phase) && ok;
  } else {
    std::vector<std::thread> prods, cons;
    for (unsigned c = 0; c < p.consumers; ++c) cons.emplace_back([&] { consume(*t); });
    for (std::uint32_t id = 0; id < p.producers; ++id) prods.emplace_back([&, id] { produce(id, *t); });
    for (auto& th : prods) th.join();
    stop(p.consumers);
    for (auto& th : cons) th.join();
  }
  const double secs = clock.seconds();
  return judge(p.phase, t, left(), secs) && ok;
}

// --- the program ---------------------------------------------------------------------------

// A soak's main: its command line (common.hpp; --iterations defaults to 350000 messages per
// producer, 100000 under a sanitizer, to keep tools/test within its budget), then rounds of
// three phases under the watchdog:
//   processes Nx2  N producer processes x --iterations messages, 2 consumer processes
//   processes Nx1  the same with 1 consumer, a third of the messages (the whole per-producer order)
//   threads Nx2    N producer and 2 consumer threads, --iterations / thread_divisor messages each
// phase(title, consumers, per_producer, processes) runs one (run_phase); banner(iterations)
// prints the soak's first line. Returns main's exit status: 0 when every check held, 1
// otherwise (bad arguments exit 2 in parse_options).
template <class Banner, class Phase>
int main(int argc, char** argv, unsigned producers, unsigned long thread_divisor, Banner banner, Phase phase) {
  options defaults;
#if defined(LOCKSTEP_TSAN) || defined(__SANITIZE_ADDRESS__)
  defaults.iterations = 100000;
#else
  defaults.iterations = 350000;
#endif
  const options o = parse_options(argc, argv, defaults);
  banner(o.iterations);
  const std::string n = std::to_string(producers);
  const std::string titles[] = {"processes " + n + "x2", "processes " + n + "x1", "threads " + n + "x2"};
  const bool ok = repeat_rounds(o, [&] {
    return phase(titles[0].c_str(), 2u, o.iterations, true) &&
           phase(titles[1].c_str(), 1u, std::max(1ul, o.iterations / 3), true) &&
           phase(titles[2].c_str(), 2u, std::max(1ul, o.iterations / thread_divisor), false);
  });
  return ok ? 0 : 1;
}

}  // namespace lockstep::stress::soak
