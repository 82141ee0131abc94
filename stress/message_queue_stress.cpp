// stress/message_queue_stress.cpp: the message queue's soak: producers and consumers in
// separate processes (and, for TSan, threads) through one named lockstep::ipc::message_queue,
// every message accounted for exactly.
//
// Each message carries its producer, its sequence number within that producer, its priority,
// its size and a checksum of all of it; sizes (24..256 bytes) and priorities (eight values from
// 0 to 32767) vary per message, and so do the calls (send / try_send retried / send_for;
// receive / try_receive retried / receive_for). Each round runs three phases:
//   processes 3x2  3 producer processes x --iterations messages, 2 consumer processes
//   processes 3x1  the same with 1 consumer (a third of the messages)
//   threads 3x2    3 producer and 2 consumer threads of this process (a tenth of the messages)
// After the producers finish, the parent sends one stop message per consumer at priority 0:
// POSIX order delivers it after every data message, so a consumer that receives it is done.
//
// Checks, exact, per phase: lost (a sequence number nobody received), duplicated (received
// twice: a shared bitmap, fetch_or), corrupt (size, fields or checksum wrong) all 0; received
// = sent; and per-producer FIFO within each priority as each consumer saw it (with one
// consumer that is the whole order; with two, each consumer's messages are a subsequence of
// the one delivery order, so it must hold for each of them too); the queue empty afterwards.
//
// Defaults: --iterations 350000 (1,050,000 messages in the 3x2 phase, 1.4 million in all) in
// plain builds; under a sanitizer 100000 (TSan runs the process phases at ~50,000 messages/s),
// to keep tools/test within its budget.
// Exit 0 when every check held, 1 otherwise, 2 for bad arguments.
#include "common.hpp"

#include <lockstep/ipc/message_queue.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace lockstep::stress;
namespace ipc = lockstep::ipc;

constexpr unsigned producers = 3;
constexpr std::size_t capacity = 64;
constexpr std::size_t max_size = 256;
constexpr unsigned priorities[] = {0, 1, 2, 3, 5, 8, 100, 32767};
constexpr std::uint32_t stop_producer = 0xffff'ffff;

struct header {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t priority;
  std::uint32_t size;
  std::uint64_t checksum;  // FNV-1a of the header (checksum 0) and the payload
};
static_assert(sizeof(header) == 24);

std::uint64_t mix(std::uint64_t x) {  // splitmix64: the per-message choices
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t fnv(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Builds message `seq` of `producer` into buf; returns its size.
std::size_t make_message(unsigned char* buf, std::uint32_t producer, std::uint32_t seq) {
  const std::uint64_t r = mix(std::uint64_t(producer) << 32 | seq);
  header h{producer, seq, priorities[r % 8], std::uint32_t(sizeof(header) + (r >> 8) % (max_size - sizeof(header) + 1)), 0};
  for (std::size_t i = sizeof h; i < h.size; ++i) buf[i] = static_cast<unsigned char>(r >> (i % 56) ^ i);
  std::memcpy(buf, &h, sizeof h);
  h.checksum = fnv(buf, h.size);
  std::memcpy(buf, &h, sizeof h);
  return h.size;
}

// What every party of a phase shares (in a MAP_SHARED mapping for the process phases).
struct tally {
  std::atomic<unsigned long long> sent{0}, received{0}, duplicated{0}, corrupt{0}, out_of_order{0}, timeouts{0};
  std::atomic<std::uint64_t>* seen = nullptr;  // producers x per_producer bits
};

class shared_tally {
 public:
  explicit shared_tally(unsigned long per_producer) : words_((producers * per_producer + 63) / 64) {
    bytes_ = sizeof(tally) + words_ * sizeof(std::uint64_t);
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    t_ = ::new (p) tally();
    t_->seen = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(p) + sizeof(tally));
    for (std::size_t i = 0; i < words_; ++i) ::new (&t_->seen[i]) std::atomic<std::uint64_t>(0);
  }
  ~shared_tally() { ::munmap(t_, bytes_); }
  tally* operator->() const { return t_; }
  std::size_t words() const { return words_; }

 private:
  std::size_t words_, bytes_;
  tally* t_;
};

void produce(const char* name, std::uint32_t id, unsigned long count, tally& t) {
  ipc::message_queue q(ipc::open_only, name);
  unsigned char buf[max_size];
  for (std::uint32_t seq = 0; seq < count; ++seq) {
    const std::size_t n = make_message(buf, id, seq);
    unsigned prio = 0;
    std::memcpy(&prio, buf + offsetof(header, priority), sizeof prio);
    switch (mix(seq * 7 + id) % 4) {
      case 0:
        while (!q.try_send(buf, n, prio)) std::this_thread::yield();
        break;
      case 1:
        while (!q.send_for(buf, n, prio, std::chrono::milliseconds(1))) t.timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      default: q.send(buf, n, prio);
    }
  }
  t.sent.fetch_add(count, std::memory_order_relaxed);
}

void consume(const char* name, unsigned long per_producer, tally& t) {
  ipc::message_queue q(ipc::open_only, name);
  unsigned char buf[max_size];
  // The last sequence number this consumer saw per (producer, priority): FIFO within each.
  std::int64_t last[producers][8];
  for (auto& row : last)
    for (auto& x : row) x = -1;
  for (std::uint64_t k = 0;; ++k) {
    std::size_t n = 0;
    unsigned prio = 0;
    switch (mix(k) % 4) {
      case 0:
        while (!q.try_receive(buf, sizeof buf, n, prio)) std::this_thread::yield();
        break;
      case 1:
        while (!q.receive_for(buf, sizeof buf, n, prio, std::chrono::milliseconds(1)))
          t.timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      default: q.receive(buf, sizeof buf, n, prio);
    }
    header h{};
    if (n >= sizeof h) std::memcpy(&h, buf, sizeof h);
    if (n == sizeof h && h.producer == stop_producer) return;
    const std::uint64_t sum = h.checksum;
    if (n >= sizeof h) std::memset(buf + offsetof(header, checksum), 0, sizeof sum);
    unsigned k_prio = 8;
    for (unsigned i = 0; i < 8; ++i)
      if (priorities[i] == prio) k_prio = i;
    if (n < sizeof h || h.size != n || h.priority != prio || h.producer >= producers || h.seq >= per_producer ||
        k_prio == 8 || fnv(buf, n) != sum) {
      t.corrupt.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    t.received.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t bit = std::uint64_t(h.producer) * per_producer + h.seq;
    if (t.seen[bit / 64].fetch_or(1ull << (bit % 64), std::memory_order_relaxed) & (1ull << (bit % 64)))
      t.duplicated.fetch_add(1, std::memory_order_relaxed);
    if (std::int64_t(h.seq) <= last[h.producer][k_prio]) t.out_of_order.fetch_add(1, std::memory_order_relaxed);
    last[h.producer][k_prio] = h.seq;
  }
}

void send_stops(const char* name, unsigned consumers) {
  ipc::message_queue q(ipc::open_only, name);
  for (unsigned i = 0; i < consumers; ++i) {
    const header h{stop_producer, 0, 0, sizeof(header), 0};
    q.send(&h, sizeof h, 0);
  }
}

bool judge(const char* phase, const shared_tally& t, unsigned long per_producer, std::size_t left, double secs) {
  const unsigned long long expected = 1ull * producers * per_producer;
  unsigned long long distinct = 0;
  for (std::size_t i = 0; i < t.words(); ++i) distinct += std::uint64_t(__builtin_popcountll(t->seen[i].load()));
  const unsigned long long lost = expected - distinct;
  char detail[256];
  std::snprintf(detail, sizeof detail, "sent %llu received %llu lost %llu duplicated %llu corrupt %llu fifo %llu left %zu",
                t->sent.load(), t->received.load(), lost, t->duplicated.load(), t->corrupt.load(),
                t->out_of_order.load(), left);
  report(phase, t->received.load(), secs, detail);
  const bool ok = t->sent.load() == expected && t->received.load() == expected && lost == 0 &&
                  t->duplicated.load() == 0 && t->corrupt.load() == 0 && t->out_of_order.load() == 0 && left == 0;
  if (!ok) std::fprintf(stderr, "%s: FAILED: %s\n", phase, detail);
  return ok;
}

std::string queue_name() { return "lockstep-stress-mq-" + std::to_string(::getpid()); }

bool process_phase(const char* phase, unsigned consumers, unsigned long per_producer) {
  const std::string name = queue_name();
  ipc::message_queue::remove(name.c_str());
  ipc::message_queue q(ipc::create_only, name.c_str(), capacity, max_size);
  shared_tally t(per_producer);
  stopwatch clock;
  std::vector<pid_t> prods, cons;
  for (unsigned c = 0; c < consumers; ++c)
    cons.push_back(fork_child([&] {
      consume(name.c_str(), per_producer, *t.operator->());
      return 0;
    }));
  for (std::uint32_t p = 0; p < producers; ++p)
    prods.push_back(fork_child([&, p] {
      produce(name.c_str(), p, per_producer, *t.operator->());
      return 0;
    }));
  bool ok = wait_children(prods, phase);
  send_stops(name.c_str(), consumers);
  ok = wait_children(cons, phase) && ok;
  const double secs = clock.seconds();
  ok = judge(phase, t, per_producer, q.get_num_msg(), secs) && ok;
  ipc::message_queue::remove(name.c_str());
  return ok;
}

bool thread_phase(const char* phase, unsigned consumers, unsigned long per_producer) {
  const std::string name = queue_name() + "-t";
  ipc::message_queue::remove(name.c_str());
  ipc::message_queue q(ipc::create_only, name.c_str(), capacity, max_size);
  shared_tally t(per_producer);
  stopwatch clock;
  std::vector<std::thread> prods, cons;
  for (unsigned c = 0; c < consumers; ++c) cons.emplace_back([&] { consume(name.c_str(), per_producer, *t.operator->()); });
  for (std::uint32_t p = 0; p < producers; ++p)
    prods.emplace_back([&, p] { produce(name.c_str(), p, per_producer, *t.operator->()); });
  for (auto& th : prods) th.join();
  send_stops(name.c_str(), consumers);
  for (auto& th : cons) th.join();
  const bool ok = judge(phase, t, per_producer, q.get_num_msg(), clock.seconds());
  ipc::message_queue::remove(name.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  options defaults;
#if defined(LOCKSTEP_TSAN) || defined(__SANITIZE_ADDRESS__)
  defaults.iterations = 100000;
#else
  defaults.iterations = 350000;
#endif
  const options o = parse_options(argc, argv, defaults);
  std::printf("message_queue soak: %u producers, capacity %zu, sizes %zu..%zu, 8 priorities, %lu messages per producer\n",
              producers, capacity, sizeof(header), max_size, o.iterations);
  const bool ok = repeat_rounds(o, [&] {
    return process_phase("processes 3x2", 2, o.iterations) &&
           process_phase("processes 3x1", 1, std::max(1ul, o.iterations / 3)) &&
           thread_phase("threads 3x2", 2, std::max(1ul, o.iterations / 10));
  });
  return ok ? 0 : 1;
}
