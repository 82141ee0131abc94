// bench/channel_bench.cpp: lockstep::ipc::channel against an anonymous pipe and POSIX mq, between
// two processes (fork), each pinned to its own CPU (plumbing: bench/ipc_common.hpp):
//   channel_throughput_64B/<peer>  one process sends 200,000 messages of 64 bytes, the other
//                                  receives them (and checks their order); time per message,
//                                  first send to last receive; counter msgs_per_s
//   channel_roundtrip/<peer>       a 64-byte message there and back through two channels (pipes,
//                                  queues); one sample per round trip (mean, p50_ns, p99_ns)
// Subjects:
//   lockstep::ipc::channel           send / receive: one copy in, one copy out
//   lockstep::ipc::channel in place  reserve + commit / receive_in_place + release: the
//                                    producer writes the message into the slot, the consumer
//                                    reads it where it lies
//   pipe                             write / read of 64 bytes on pipe(2) (atomic below PIPE_BUF)
//   POSIX mq                         mq_send / mq_receive
// Depth: POSIX mq at the kernel's allowed depth (/proc/sys/fs/mqueue/msg_max, 10 here, never
// raised); the channel at the same depth, and at depth 1000 (variant "depth 1000": its own
// figure, no configured cap); the pipe at its default capacity, 64 KiB (1024 messages).
#include "ipc_common.hpp"

#include <lockstep/ipc/channel.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <unistd.h>

namespace lockstep_bench {
namespace {

using namespace lockstep_bench::ipc;
namespace lipc = lockstep::ipc;

constexpr long messages = 200'000;

// The channel, copying (InPlace false) or written and read in place (InPlace true).
template <bool InPlace>
struct channel_peer : named_queue<lipc::channel, lipc::create_only_t, lipc::open_only_t> {
  static constexpr const char* label = InPlace ? "lockstep::ipc::channel in place" : "lockstep::ipc::channel";
  using channel_peer::named_queue::named_queue;
  void send(std::uint64_t seq, unsigned) {
    if constexpr (InPlace) {
      lipc::channel::send_reservation r = q->reserve();
      std::byte* slot = r.buffer().data();
      std::memcpy(slot, &seq, sizeof seq);
      std::memset(slot + sizeof seq, 0, msg_size - sizeof seq);
      r.commit(msg_size);
    } else {
      const message m(seq);
      q->send(m.bytes, msg_size);
    }
  }
  std::uint64_t receive() {
    std::uint64_t seq;
    if constexpr (InPlace) {
      lipc::channel::received_message m = q->receive_in_place();
      if (m.size() != msg_size) die("receive_in_place: a message of another size", EPROTO);
      std::memcpy(&seq, m.data().data(), sizeof seq);
      m.release();
    } else {
      message m;
      std::size_t n;
      q->receive(m.bytes, msg_size, n);
      seq = m.seq();
    }
    return seq;
  }
};

// An anonymous pipe: made before the fork, inherited by the forked process. Nothing is named,
// so nothing is left to remove; the creating process closes both ends.
struct pipe_peer {
  static constexpr const char* label = "pipe";
  int fd[2];
  bool owner;
  pipe_peer(const std::string&, long) : owner(true) {
    if (::pipe(fd) != 0) die("pipe", errno);
  }
  pipe_peer(opener, const pipe_peer& created) : fd{created.fd[0], created.fd[1]}, owner(false) {}
  pipe_peer(const pipe_peer&) = delete;
  pipe_peer& operator=(const pipe_peer&) = delete;
  ~pipe_peer() {
    if (owner) {
      ::close(fd[0]);
      ::close(fd[1]);
    }
  }
  void send(std::uint64_t seq, unsigned) {
    const message m(seq);
    if (::write(fd[1], m.bytes, msg_size) != static_cast<ssize_t>(msg_size)) die("write", errno);  // atomic: <= PIPE_BUF
  }
  std::uint64_t receive() {
    message m;
    for (std::size_t got = 0; got < msg_size;) {
      const ssize_t n = ::read(fd[0], m.bytes + got, msg_size - got);
      if (n <= 0) die("read", n == 0 ? EPIPE : errno);
      got += std::size_t(n);
    }
    return m.seq();
  }
};

template <class Peer>
void add_peer(long depth, const std::string& variant = "") {
  const std::string subject = std::string(Peer::label) + variant;
  add_timed("channel_throughput_64B/" + subject, [depth](benchmark::State& s) { throughput<Peer>(s, depth, messages); });
  add_timed("channel_roundtrip/" + subject, [depth](benchmark::State& s) { roundtrip<Peer>(s, depth); });
}

const bool registered = [] {
  const long depth = kernel_mq_depth();
  add_peer<channel_peer<false>>(depth);
  add_peer<channel_peer<true>>(depth);
  add_peer<channel_peer<false>>(1000, "/depth 1000");
  add_peer<channel_peer<true>>(1000, "/depth 1000");
  add_peer<pipe_peer>(depth);
  add_peer<posix_mq_peer>(depth);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
