// stress/channel_stress.cpp: the channel's soak and thread stress: producers and consumers in
// separate processes, and threads on one mapping, through one named lockstep::ipc::channel,
// every message accounted for exactly (stress/ipc_soak.hpp: format, counts, verdict).
//
// Each message carries its producer, its sequence number within that producer, its size and a
// checksum of all of it; sizes run over 0..256 bytes (0..23: short messages, counted per
// length, see ipc_soak.hpp), and each call is chosen per message among every way in:
//   send / try_send retried / send_for 1 ms / reserve + commit / try_reserve retried +
//   commit / reserve_for 1 ms + commit, and one in 16 reservations abandoned first (nothing
//   may arrive of it) before the message is sent through a second one;
//   receive / try_receive retried / receive_for 1 ms / receive_in_place / try_receive_in_place
//   retried / receive_in_place_for 1 ms (checked in place, then released).
// Each round runs three phases:
//   processes 3x2  3 producer processes x --iterations messages, 2 consumer processes
//   processes 3x1  the same with 1 consumer (a third of the messages): the whole per-producer order
//   threads 3x2    3 producer and 2 consumer threads sharing one channel object (one
//                  mapping), a quarter of the messages: what TSan checks
// After the producers finish, the parent sends one stop message per consumer; FIFO delivers
// it after every data message, so a consumer that receives it is done.
//
// Checks, exact, per phase: lost / duplicated / reordered per producer / corrupt all 0,
// received = sent, the channel empty afterwards. The channel is small (capacity 32) so that
// both full and empty are met often, and so the blocking, timed and try paths all run.
//
// Defaults: --iterations 350000 (1,050,000 messages in the 3x2 phase, 1.66 million in all) in
// plain builds; under a sanitizer 100000, to keep tools/test within its budget.
// Exit 0 when every check held, 1 otherwise, 2 for bad arguments.
#include "ipc_soak.hpp"

#include <lockstep/ipc/channel.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

namespace {

using namespace lockstep::stress;
using namespace lockstep::stress::soak;
namespace ipc = lockstep::ipc;
using std::chrono::milliseconds;

constexpr unsigned producers = 3;
constexpr std::size_t capacity = 32;
constexpr std::size_t max_size = 256;

std::size_t size_of(std::uint32_t producer, std::uint32_t seq) { return (choice(producer, seq) >> 8) % (max_size + 1); }

unsigned char* bytes(std::span<std::byte> s) { return reinterpret_cast<unsigned char*>(s.data()); }

// Sends one message through a reservation, written in place; one in 16 is abandoned first.
template <class Reserve>
void send_in_place(Reserve reserve, std::uint32_t id, std::uint32_t seq, std::size_t n) {
  if (mix(seq ^ 0xabcd) % 16 == 0) {
    ipc::channel::send_reservation r = reserve();
    fill(bytes(r.buffer()), std::min<std::size_t>(n + 1, max_size), id, seq, 0);  // a wrong size: must never arrive
    r.abandon();
  }
  ipc::channel::send_reservation r = reserve();
  fill(bytes(r.buffer()), n, id, seq, 0);
  r.commit(n);
}

void produce(ipc::channel& ch, std::uint32_t id, unsigned long count, tally& t) {
  unsigned char buf[max_size];
  for (std::uint32_t seq = 0; seq < count; ++seq) {
    const std::size_t n = size_of(id, seq);
    const unsigned how = mix(std::uint64_t(seq) * 7 + id) % 6;
    if (how < 3) fill(buf, n, id, seq, 0);
    switch (how) {
      case 0: ch.send(buf, n); break;
      case 1:
        while (!ch.try_send(buf, n)) std::this_thread::yield();
        break;
      case 2:
        while (!ch.send_for(buf, n, milliseconds(1))) t.timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      case 3: send_in_place([&] { return ch.reserve(); }, id, seq, n); break;
      case 4:
        send_in_place([&] {
          for (;;) {
            if (auto r = ch.try_reserve()) return r;
            std::this_thread::yield();
          }
        }, id, seq, n);
        break;
      default:
        send_in_place([&] {
          for (;;) {
            if (auto r = ch.reserve_for(milliseconds(1))) return r;
            t.timeouts.fetch_add(1, std::memory_order_relaxed);
          }
        }, id, seq, n);
    }
    t.on_sent(n);
  }
  t.sent.fetch_add(count, std::memory_order_relaxed);
}

void consume(ipc::channel& ch, tally& t) {
  unsigned char buf[max_size];
  order o;
  for (std::uint64_t k = 0;; ++k) {
    const unsigned how = mix(k) % 6;
    if (how < 3) {
      std::size_t n = 0;
      switch (how) {
        case 0: ch.receive(buf, sizeof buf, n); break;
        case 1:
          while (!ch.try_receive(buf, sizeof buf, n)) std::this_thread::yield();
          break;
        default:
          while (!ch.receive_for(buf, sizeof buf, n, milliseconds(1))) t.timeouts.fetch_add(1, std::memory_order_relaxed);
      }
      if (t.on_received(buf, n, 0, o) == inspected::stop) return;
      continue;
    }
    ipc::channel::received_message m;
    switch (how) {
      case 3: m = ch.receive_in_place(); break;
      case 4:
        while (!(m = ch.try_receive_in_place())) std::this_thread::yield();
        break;
      default:
        while (!(m = ch.receive_in_place_for(milliseconds(1)))) t.timeouts.fetch_add(1, std::memory_order_relaxed);
    }
    // Checked where it lies, in shared memory, before its slot goes back to the producers.
    const auto kind = t.on_received(reinterpret_cast<const unsigned char*>(m.data().data()), m.size(), 0, o);
    m.release();
    if (kind == inspected::stop) return;
  }
}

void send_stops(ipc::channel& ch, unsigned consumers) {
  const header h = stop_message();
  for (unsigned i = 0; i < consumers; ++i) ch.send(&h, sizeof h);
}

bool phase(const char* title, unsigned consumers, unsigned long per_producer, bool processes) {
  const std::string name = "lockstep-stress-channel-" + std::to_string(::getpid()) + (processes ? "" : "-t");
  ipc::channel::remove(name.c_str());
  ipc::channel ch(ipc::create_only, name.c_str(), capacity, max_size);
  // A forked party opens the channel by name, as another program would; threads share `ch`.
  auto with_channel = [&](auto fn) {
    if (!processes) return fn(ch);
    ipc::channel own(ipc::open_only, name.c_str());
    return fn(own);
  };
  const bool ok = run_phase(
      {title, producers, consumers, per_producer, processes},
      [&](std::uint32_t id, tally& t) { with_channel([&](ipc::channel& c) { produce(c, id, per_producer, t); }); },
      [&](tally& t) { with_channel([&](ipc::channel& c) { consume(c, t); }); },
      [&](unsigned n) { send_stops(ch, n); }, [&] { return ch.get_num_msg(); });
  ipc::channel::remove(name.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  return soak::main(argc, argv, producers, 4, [](unsigned long iterations) {
    std::printf("channel soak: %u producers, capacity %zu, sizes 0..%zu, %lu messages per producer\n", producers,
                    capacity, max_size, iterations);
  }, phase);
}
