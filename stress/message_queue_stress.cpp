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
// Checks, exact, per phase (stress/ipc_soak.hpp, shared with the channel's soak, which also
// holds the message format): lost, duplicated, corrupt (size, fields, priority or checksum
// wrong) all 0; received = sent; per-producer FIFO within each priority as each consumer saw
// it; the queue empty afterwards.
//
// Defaults: --iterations 350000 (1,050,000 messages in the 3x2 phase, 1.4 million in all) in
// plain builds; under a sanitizer 100000 (TSan runs the process phases at ~50,000 messages/s),
// to keep tools/test within its budget.
// Exit 0 when every check held, 1 otherwise, 2 for bad arguments.
#include "ipc_soak.hpp"

#include <lockstep/ipc/message_queue.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

namespace {

using namespace lockstep::stress;
using namespace lockstep::stress::soak;
namespace ipc = lockstep::ipc;

constexpr unsigned producers = 3;
constexpr std::size_t capacity = 64;
constexpr std::size_t max_size = 256;
constexpr unsigned priorities[] = {0, 1, 2, 3, 5, 8, 100, 32767};

// Message `seq` of `producer`: its priority and size (24..256) come from its random word.
std::size_t make_message(unsigned char* buf, std::uint32_t producer, std::uint32_t seq, unsigned& prio) {
  const std::uint64_t r = choice(producer, seq);
  prio = priorities[r % 8];
  const std::size_t size = sizeof(header) + (r >> 8) % (max_size - sizeof(header) + 1);
  fill(buf, size, producer, seq, prio);
  return size;
}

void produce(const char* name, std::uint32_t id, unsigned long count, tally& t) {
  ipc::message_queue q(ipc::open_only, name);
  unsigned char buf[max_size];
  for (std::uint32_t seq = 0; seq < count; ++seq) {
    unsigned prio = 0;
    const std::size_t n = make_message(buf, id, seq, prio);
    switch (mix(seq * 7 + id) % 4) {
      case 0:
        while (!q.try_send(buf, n, prio)) std::this_thread::yield();
        break;
      case 1:
        while (!q.send_for(buf, n, prio, std::chrono::milliseconds(1))) t.timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      default: q.send(buf, n, prio);
    }
    t.on_sent(n);
  }
  t.sent.fetch_add(count, std::memory_order_relaxed);
}

void consume(const char* name, tally& t) {
  ipc::message_queue q(ipc::open_only, name);
  unsigned char buf[max_size];
  order o;  // FIFO within each (producer, priority)
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
    // The priority it came with must be the one it was sent with, and one of the eight.
    unsigned k_prio = 8;
    for (unsigned i = 0; i < 8; ++i)
      if (priorities[i] == prio) k_prio = i;
    header h{};
    if (n >= sizeof h) std::memcpy(&h, buf, sizeof h);
    if (n < sizeof h || (h.producer != stop_producer && (k_prio == 8 || h.tag != prio))) {
      t.corrupt.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (t.on_received(buf, n, k_prio, o) == inspected::stop) return;
  }
}

void send_stops(const char* name, unsigned consumers) {
  ipc::message_queue q(ipc::open_only, name);
  const header h = stop_message();
  for (unsigned i = 0; i < consumers; ++i) q.send(&h, sizeof h, 0);  // priority 0: after every data message
}

bool phase(const char* title, unsigned consumers, unsigned long per_producer, bool processes) {
  const std::string name = "lockstep-stress-mq-" + std::to_string(::getpid()) + (processes ? "" : "-t");
  ipc::message_queue::remove(name.c_str());
  ipc::message_queue q(ipc::create_only, name.c_str(), capacity, max_size);
  const bool ok = run_phase(
      {title, producers, consumers, per_producer, processes},
      [&](std::uint32_t id, tally& t) { produce(name.c_str(), id, per_producer, t); },
      [&](tally& t) { consume(name.c_str(), t); }, [&](unsigned n) { send_stops(name.c_str(), n); },
      [&] { return q.get_num_msg(); });
  ipc::message_queue::remove(name.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  return soak::main(argc, argv, producers, 10, [](unsigned long iterations) {
    std::printf("message_queue soak: %u producers, capacity %zu, sizes %zu..%zu, 8 priorities, %lu messages per producer\n",
                    producers, capacity, sizeof(header), max_size, iterations);
  }, phase);
}
