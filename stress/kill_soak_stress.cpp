// stress/kill_soak_stress.cpp: the kill soak (issue 15): producers and consumers in separate
// processes on one lockstep::ipc::channel, then on one lockstep::ipc::message_queue, while a
// supervisor SIGKILLs a random one of them at a random moment, again and again, and restarts it.
// Every message sent must come out exactly once, except at most the one message each killed
// process had in flight (docs/fault-tolerance.md, "Channels and the message queue").
//
// Per run: 2 producer and 2 consumer processes; the supervisor kills one every 5-40 ms (random
// pick, random moment) until it has killed --kills of them (default 120, >= 100 as the issue
// asks) and at least 2 s passed, restarting each at once. A restarted process opens the same
// channel (queue) again by name, open_only: no cleanup, no re-creation. Then producers stop,
// consumers drain until the channel is empty and stop, and the accounting is judged.
//
// Accounting, in a separate shared-memory region (anonymous MAP_SHARED, made before any fork):
//   per producer   next: the seq its next send will use (written before the send, so that a
//                  restarted producer skips the seq its killed predecessor had in flight)
//   per message    attempted (set before the send), sent (set after send() returned),
//                  delivered (incremented by a consumer after receive returned, or after it
//                  released an in-place message)
// Messages carry (producer, seq, size, checksum) in the soak format (ipc_soak.hpp), checked on
// receipt. The verdict, exact:
//   duplicates = 0       no message delivered twice
//   corrupt = 0          no message with a bad checksum, size or identity, none never attempted
//   lost <= consumer kills   a message sent but never delivered: the one a killed consumer
//                        had received (or was returning) when it died, at most one each
//   producer in flight <= producer kills   attempted, send() never returned: delivered 0 or 1
//                        times (published before the kill, or not), never half
//   the channel empty at the end, and no live process without progress for --stall seconds
//   (10 by default: the watchdog; a dead lock holder nobody recovers from shows up here).
// Prints kills, messages, lost-in-flight per run. Exit 0 when every check held, 1 otherwise.
//
// Bounded: ~5-15 s per run on a loaded 2-CPU machine, two runs; under a sanitizer a little
// more. A consumer uses receive_for(100 ms) and the zero-copy path; a producer send, try_send,
// send_for and (channel) reserve + commit, so that a kill lands inside every kind of call.
#include "ipc_soak.hpp"

#include <lockstep/ipc/channel.hpp>
#include <lockstep/ipc/message_queue.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace lockstep::stress;
namespace soak = lockstep::stress::soak;
namespace ipc = lockstep::ipc;
using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

constexpr unsigned producers = 2;
constexpr unsigned consumers = 2;
constexpr unsigned parties = producers + consumers;
constexpr std::uint32_t per_producer = 1u << 20;  // seq space per producer (a producer stops there)
constexpr std::size_t capacity = 16;
constexpr std::size_t max_size = 128;

// The accounting region (see the header comment). Lock-free atomics only: a process killed
// mid-update leaves each one either updated or not.
struct accounts {
  std::atomic<std::uint32_t> next[producers];
  std::atomic<std::uint64_t> progress[parties];  // successful calls of the process in each party slot
  std::atomic<bool> stop_producing, stop_consuming;
  std::atomic<std::uint64_t> corrupt;
  std::atomic<std::uint8_t> attempted[producers][per_producer];
  std::atomic<std::uint8_t> sent[producers][per_producer];
  std::atomic<std::uint8_t> delivered[producers][per_producer];
};

accounts* map_accounts() {
  void* p = ::mmap(nullptr, sizeof(accounts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap accounts");
  return static_cast<accounts*>(p);  // zero-filled: every atomic starts at 0 / false
}

std::size_t size_of(std::uint32_t p, std::uint32_t seq) {
  return sizeof(soak::header) + soak::choice(p, seq) % (max_size - sizeof(soak::header) + 1);
}

// A consumer got n bytes: check them and count the delivery.
void on_delivered(accounts& a, const unsigned char* buf, std::size_t n) {
  const soak::inspected m = soak::inspect(buf, n, producers, per_producer);
  if (m.kind != soak::inspected::data || a.attempted[m.h.producer][m.h.seq].load() == 0) {
    a.corrupt.fetch_add(1);
    return;
  }
  a.delivered[m.h.producer][m.h.seq].fetch_add(1);
}

// What the channel and the queue share: their shape (Boost's).
template <class Handle>
struct ops_base {
  using handle = Handle;
  static handle create(const char* name) { return handle(ipc::create_only, name, capacity, max_size); }
  static handle open(const char* name) { return handle(ipc::open_only, name); }
  static std::size_t left(handle& h) { return h.get_num_msg(); }
};

// What differs between the channel and the queue: how one message goes in and comes out.
struct channel_ops : ops_base<ipc::channel> {
  static constexpr const char* what = "channel";
  static void send(handle& h, std::uint32_t p, std::uint32_t seq, std::size_t n, unsigned how) {
    unsigned char buf[max_size];
    switch (how % 4) {
      case 0: soak::fill(buf, n, p, seq, 0); h.send(buf, n); break;
      case 1:
        soak::fill(buf, n, p, seq, 0);
        while (!h.try_send(buf, n)) std::this_thread::yield();
        break;
      case 2:
        soak::fill(buf, n, p, seq, 0);
        while (!h.send_for(buf, n, milliseconds(50))) {
        }
        break;
      default: {
        ipc::channel::send_reservation r = h.reserve();
        soak::fill(reinterpret_cast<unsigned char*>(r.buffer().data()), n, p, seq, 0);
        r.commit(n);
      }
    }
  }
  // One receive of at most 100 ms; false if nothing came.
  static bool receive(handle& h, accounts& a, unsigned how) {
    if (how % 2 == 0) {
      unsigned char buf[max_size];
      std::size_t n = 0;
      if (!h.receive_for(buf, sizeof buf, n, milliseconds(100))) return false;
      on_delivered(a, buf, n);
      return true;
    }
    // In place: copy out, release, then count: a consumer killed holding it leaves the message
    // to the next consumer (delivered once); one killed after the release loses it (in flight).
    ipc::channel::received_message m = h.receive_in_place_for(milliseconds(100));
    if (!m) return false;
    unsigned char buf[max_size];
    const std::size_t n = m.size();
    std::memcpy(buf, m.data().data(), n);
    m.release();
    on_delivered(a, buf, n);
    return true;
  }
};

struct queue_ops : ops_base<ipc::message_queue> {
  static constexpr const char* what = "message_queue";
  static void send(handle& h, std::uint32_t p, std::uint32_t seq, std::size_t n, unsigned how) {
    unsigned char buf[max_size];
    const unsigned priority = seq % 4;
    soak::fill(buf, n, p, seq, priority);
    switch (how % 3) {
      case 0: h.send(buf, n, priority); break;
      case 1:
        while (!h.try_send(buf, n, priority)) std::this_thread::yield();
        break;
      default:
        while (!h.send_for(buf, n, priority, milliseconds(50))) {
        }
    }
  }
  static bool receive(handle& h, accounts& a, unsigned) {
    unsigned char buf[max_size];
    std::size_t n = 0;
    unsigned priority = 0;
    if (!h.receive_for(buf, sizeof buf, n, priority, milliseconds(100))) return false;
    on_delivered(a, buf, n);
    return true;
  }
};

template <class Ops>
int producer_main(const char* name, accounts& a, std::uint32_t p) {
  typename Ops::handle h = Ops::open(name);  // a restart opens the same one again
  std::mt19937 rng(::getpid());
  while (!a.stop_producing.load()) {
    const std::uint32_t seq = a.next[p].load();
    if (seq >= per_producer) {
      std::this_thread::sleep_for(milliseconds(10));
      continue;
    }
    a.next[p].store(seq + 1);  // before the send: a restart skips this seq (in flight)
    a.attempted[p][seq].store(1);
    Ops::send(h, p, seq, size_of(p, seq), rng());
    a.sent[p][seq].store(1);
    a.progress[p].fetch_add(1);
  }
  return 0;
}

template <class Ops>
int consumer_main(const char* name, accounts& a, unsigned slot) {
  typename Ops::handle h = Ops::open(name);
  std::mt19937 rng(::getpid());
  for (;;) {
    if (Ops::receive(h, a, rng())) {
      a.progress[slot].fetch_add(1);
    } else if (a.stop_consuming.load()) {
      return 0;
    }
  }
}

struct party {
  pid_t pid = -1;
  std::uint64_t seen = 0;
  clock_type::time_point since;
};

template <class Ops>
bool run(const options& o, unsigned kills_wanted) {
  const std::string name = "lockstep-kill-soak-" + std::to_string(::getpid());
  ipc::channel::remove(name.c_str());
  typename Ops::handle h = Ops::create(name.c_str());
  accounts& a = *map_accounts();
  std::mt19937 rng(std::random_device{}());

  auto start = [&](unsigned i) {
    return fork_child([&, i] {
      return i < producers ? producer_main<Ops>(name.c_str(), a, i) : consumer_main<Ops>(name.c_str(), a, i);
    });
  };
  party ps[parties];
  for (unsigned i = 0; i < parties; ++i) ps[i] = {start(i), 0, clock_type::now()};

  bool ok = true;
  // Fails the run if a live process made no progress for o.stall seconds; `waiting` names the
  // parties whose progress counts now.
  auto stalled = [&](unsigned first, unsigned last) {
    const auto now = clock_type::now();
    for (unsigned i = first; i < last; ++i) {
      const std::uint64_t g = a.progress[i].load();
      if (g != ps[i].seen) {
        ps[i].seen = g;
        ps[i].since = now;
      } else if (ps[i].pid > 0 && now - ps[i].since > std::chrono::seconds(o.stall)) {
        std::fprintf(stderr, "kill_soak %s: watchdog: %s %u (pid %d) made no progress for %u s: stranded\n", Ops::what,
                     i < producers ? "producer" : "consumer", i, int(ps[i].pid), o.stall);
        return true;
      }
    }
    return false;
  };

  stopwatch clock;
  unsigned kills[2] = {0, 0};  // producers, consumers
  while (ok && (kills[0] + kills[1] < kills_wanted || clock.seconds() < 2)) {
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + rng() % 35000));
    const unsigned i = rng() % parties;
    ::kill(ps[i].pid, SIGKILL);
    const exit_status s = wait_child(ps[i].pid);
    if (!s.killed_by(SIGKILL)) {
      std::fprintf(stderr, "kill_soak %s: party %u %s before the kill\n", Ops::what, i, s.describe().c_str());
      ok = false;
    }
    ++kills[i < producers ? 0 : 1];
    ps[i].pid = start(i);
    ps[i].since = clock_type::now();
    if (stalled(0, parties)) ok = false;
  }
  const double kill_secs = clock.seconds();

  // Wind down: producers finish their current send; consumers drain until empty.
  auto wait_parties = [&](unsigned first, unsigned last) {
    for (;;) {
      bool all = true;
      for (unsigned i = first; i < last; ++i) {
        if (ps[i].pid <= 0) continue;
        int raw = 0;
        const pid_t r = ::waitpid(ps[i].pid, &raw, WNOHANG);
        if (r == 0) {
          all = false;
          continue;
        }
        if (r < 0 || !exit_status{raw}.ok()) {
          std::fprintf(stderr, "kill_soak %s: party %u %s\n", Ops::what, i, exit_status{raw}.describe().c_str());
          ok = false;
        }
        ps[i].pid = -1;
      }
      if (all) return true;
      if (stalled(first, last)) return false;
      std::this_thread::sleep_for(milliseconds(10));
    }
  };
  a.stop_producing.store(true);
  if (!wait_parties(0, producers)) ok = false;
  a.stop_consuming.store(true);
  if (!wait_parties(producers, parties)) ok = false;
  for (party& p : ps)
    if (p.pid > 0) {
      ::kill(p.pid, SIGKILL);
      (void)wait_child(p.pid);
    }
  const std::size_t left = Ops::left(h);

  // The verdict.
  unsigned long long sent = 0, delivered = 0, duplicates = 0, lost = 0, in_flight = 0, in_flight_delivered = 0,
                     phantom = 0;
  for (unsigned p = 0; p < producers; ++p)
    for (std::uint32_t seq = 0; seq < per_producer; ++seq) {
      const unsigned at = a.attempted[p][seq].load(), st = a.sent[p][seq].load(), d = a.delivered[p][seq].load();
      if (d > 1) duplicates += d - 1;
      delivered += d;
      if (!at) {
        phantom += d;
      } else if (st) {
        ++sent;
        if (d == 0) ++lost;
      } else {
        ++in_flight;
        in_flight_delivered += d != 0;
      }
    }
  const unsigned long long corrupt = a.corrupt.load() + phantom;
  const double secs = clock.seconds();
  char detail[400];
  std::snprintf(detail, sizeof detail,
                "kills %u (%u producers, %u consumers) in %.1f s; sent %llu delivered %llu; lost-in-flight %llu "
                "(consumers: <= %u); producer in-flight %llu (%llu of them delivered; <= %u); duplicates %llu "
                "corrupt %llu left %zu",
                kills[0] + kills[1], kills[0], kills[1], kill_secs, sent, delivered, lost, kills[1], in_flight,
                in_flight_delivered, kills[0], duplicates, corrupt, left);
  report(Ops::what, delivered, secs, detail);
  ok = ok && duplicates == 0 && corrupt == 0 && lost <= kills[1] && in_flight <= kills[0] && left == 0 &&
       kills[0] + kills[1] >= kills_wanted && sent > 0;
  if (!ok) std::fprintf(stderr, "kill_soak %s: FAILED: %s\n", Ops::what, detail);
  ::munmap(&a, sizeof(accounts));
  ipc::channel::remove(name.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.iterations = 120;  // --iterations: kills per run
  defaults.stall = 10;        // --stall: seconds without progress that fail a live process
  const options o = parse_options(argc, argv, defaults);
  std::printf("kill soak: %u producer and %u consumer processes per run, %lu SIGKILLs per run at random moments, "
              "each victim restarted (open_only); channel, then message_queue\n",
              producers, consumers, o.iterations);
  const bool ok = run<channel_ops>(o, unsigned(o.iterations)) & run<queue_ops>(o, unsigned(o.iterations));
  return ok ? 0 : 1;
}
