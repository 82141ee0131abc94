// bench/message_queue_bench.cpp: lockstep::ipc::message_queue against POSIX mq (mq_send /
// mq_receive) and boost::interprocess::message_queue, between two processes (fork), each pinned
// to its own CPU:
//   mq_throughput_64B/<peer>   one process sends 200,000 messages of 64 bytes at priority 0,
//                              the other receives them; time per message, first send to last
//                              receive
//   mq_mixed_priorities/<peer> the same with priorities 0..7 mixed (i * 5 % 8)
//   mq_roundtrip/<peer>        a 64-byte message there and back through two queues; one
//                              sample per round trip (mean, p50, p99)
// Depth: POSIX mq runs at the kernel's allowed depth (/proc/sys/fs/mqueue/msg_max, 10 here,
// never raised); lockstep and Boost run at the same depth, and lockstep also at depth 1000
// (its own figure: no configured cap). Message size limit 64 for all. The two-process plumbing
// and the POSIX mq peer are bench/ipc_common.hpp's, shared with the channel's benchmark.
#include "ipc_common.hpp"

#include <lockstep/ipc/message_queue.hpp>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <cstdint>
#include <string>

namespace lockstep_bench {
namespace {

using namespace lockstep_bench::ipc;

constexpr long messages = 200'000;

// A queue with Boost's calls (priorities), behind ipc_common.hpp's peer calls.
template <class Q, class CreateOnly, class OpenOnly>
struct priority_queue_peer : named_queue<Q, CreateOnly, OpenOnly> {
  using priority_queue_peer::named_queue::named_queue;
  void send(std::uint64_t seq, unsigned prio) {
    const message m(seq);
    this->q->send(m.bytes, msg_size, prio);
  }
  std::uint64_t receive() {
    message m;
    typename Q::size_type n;
    unsigned prio;
    this->q->receive(m.bytes, msg_size, n, prio);
    return m.seq();
  }
};

struct lockstep_peer
    : priority_queue_peer<lockstep::ipc::message_queue, lockstep::ipc::create_only_t, lockstep::ipc::open_only_t> {
  static constexpr const char* label = "lockstep::ipc::message_queue";
  using priority_queue_peer::priority_queue_peer;
};

struct boost_peer : priority_queue_peer<boost::interprocess::message_queue, boost::interprocess::create_only_t,
                                        boost::interprocess::open_only_t> {
  static constexpr const char* label = "boost::interprocess::message_queue";
  using priority_queue_peer::priority_queue_peer;
};

unsigned mixed(long i) { return unsigned(i * 5 % 8); }

template <class Peer>
void add_peer(long depth, const std::string& variant = "") {
  const std::string subject = std::string(Peer::label) + variant;
  add_timed("mq_throughput_64B/" + subject, [depth](benchmark::State& s) { throughput<Peer>(s, depth, messages); });
  add_timed("mq_mixed_priorities/" + subject, [depth](benchmark::State& s) { throughput<Peer>(s, depth, messages, mixed); });
  add_timed("mq_roundtrip/" + subject, [depth](benchmark::State& s) { roundtrip<Peer>(s, depth); });
}

const bool registered = [] {
  const long depth = kernel_mq_depth();
  add_peer<lockstep_peer>(depth);
  add_peer<lockstep_peer>(1000, "/depth 1000");
  add_peer<posix_mq_peer>(depth);
  add_peer<boost_peer>(depth);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
