// bench/ipc_bench.cpp (lockstep_bench_ipc): lockstep's channel and message queue against every
// other way two processes pass messages (bench/ipc_peers.hpp), in one run, two processes (fork);
// the plumbing and the five measurements are bench/ipc_common.hpp's. Figures:
//
//   ipc_throughput/<peer>/<size>       one-way streaming for 40 ms, 64 B, 1 KiB, 16 KiB messages:
//                                      msgs_per_s, bytes_per_s, sender_cpu_ns, receiver_cpu_ns
//   ipc_memcpy/<size>                  memcpy of one message in cache: the bandwidth ceiling
//   ipc_roundtrip/<peer>/active        64 B there and back for 40 ms: p50_ns, p99_ns
//   ipc_roundtrip/<peer>/asleep        the same, this side sleeping 100 µs before each message
//                                      (the other side is asleep: its wake-up is in the sample)
//   ipc_scaling/<peer>/<N> producers   N = 1, 2, 4 producer processes into one consumer, 64 B
//   ipc_idle/<peer>                    a receiver blocked on an empty queue for 330 ms: cpu_percent
//   ipc_priorities/<queue>             the message queues' 64 B throughput with priorities 1..8
//                                      mixed (i * 5 % 8 + 1), lockstep against POSIX mq and Boost
//
// Capacity: POSIX mq, lockstep::ipc::message_queue and Boost's queue at fs.mqueue.msg_max messages
// (10 here, never raised: the same depth for all three); the shared-memory rings (channel,
// textbook ring, floor) at 64 KiB of messages like a pipe's buffer (at least 8); pipes, sockets
// and SysV msgq at the kernel's defaults. Each figure's label states its capacity. Repetitions
// come from the command line (tools/bench: 3). About 35 s in all.
#include "ipc_peers.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace lockstep_bench {
namespace {

using namespace lockstep_bench::ipc;
using std::chrono::milliseconds;

constexpr std::size_t sizes[] = {64, 1024, 16384};
constexpr auto stream_window = milliseconds(40);
constexpr auto rtt_window = milliseconds(40);
constexpr auto asleep_window = milliseconds(100);
constexpr auto asleep_pause = std::chrono::microseconds(100);
constexpr auto idle_window = milliseconds(330);

std::string size_name(std::size_t n) { return n >= 1024 ? std::to_string(n / 1024) + " KiB" : std::to_string(n) + " B"; }

// Depth of the queues that have one: the mq peers at the kernel's POSIX mq depth, the rings at
// 64 KiB of messages.
template <class Peer>
long depth_for(std::size_t size) {
  const bool mq_like = std::is_same_v<Peer, posix_mq_peer> || std::is_same_v<Peer, lockstep_mq_peer> ||
                       std::is_same_v<Peer, boost_mq_peer>;
  return mq_like ? kernel_mq_depth() : std::max(8L, long(65536 / size));
}

template <class Peer>
void add_peer() {
  const std::string label = Peer::label;
  for (std::size_t size : sizes) {
    const shape s{size, depth_for<Peer>(size)};
    add_timed("ipc_throughput/" + label + "/" + size_name(size),
              [s](benchmark::State& st) { throughput<Peer>(st, s, stream_window); });
  }
  const shape small{64, depth_for<Peer>(64)};
  add_timed("ipc_roundtrip/" + label + "/active",
            [small](benchmark::State& st) { roundtrip<Peer>(st, small, rtt_window, std::chrono::microseconds(0)); });
  add_timed("ipc_roundtrip/" + label + "/asleep",
            [small](benchmark::State& st) { roundtrip<Peer>(st, small, asleep_window, asleep_pause); });
  for (int producers : {1, 2, 4})
    add_timed("ipc_scaling/" + label + "/" + std::to_string(producers) + " producers",
              [small, producers](benchmark::State& st) { scaling<Peer>(st, small, producers, stream_window); });
  add_timed("ipc_idle/" + label, [small](benchmark::State& st) { idle_receiver<Peer>(st, small, idle_window); });
}

void memcpy_ceiling(benchmark::State& state, std::size_t size) {
  std::vector<unsigned char> src(size, 0x5a), dst(size);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), size);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(size));
}

unsigned mixed(std::uint64_t i) { return unsigned(i * 5 % 8); }

template <class Peer>
void add_priorities() {
  const shape s{64, depth_for<Peer>(64)};
  add_timed("ipc_priorities/" + std::string(Peer::label),
            [s](benchmark::State& st) { throughput<Peer>(st, s, stream_window, mixed); });
}

const bool registered = [] {
  add_peer<channel_peer<false>>();
  add_peer<channel_peer<true>>();
  add_peer<lockstep_mq_peer>();
  add_peer<spsc_floor_peer>();
  add_peer<textbook_ring_peer>();
  add_peer<fd_peer<0>>();
  add_peer<fd_peer<1>>();
  add_peer<fd_peer<2>>();
  add_peer<posix_mq_peer>();
  add_peer<sysv_msgq_peer>();
  add_peer<boost_mq_peer>();
  add_priorities<lockstep_mq_peer>();
  add_priorities<posix_mq_peer>();
  add_priorities<boost_mq_peer>();
  for (std::size_t size : sizes)
    add("ipc_memcpy/" + size_name(size), [size](benchmark::State& st) { memcpy_ceiling(st, size); });
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
