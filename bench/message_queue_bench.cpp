// bench/message_queue_bench.cpp: lockstep::ipc::message_queue against POSIX mq (mq_send /
// mq_receive) and boost::interprocess::message_queue, between two processes (fork), each pinned
// to its own CPU:
//   mq_throughput_64B/<peer>   one process sends 200,000 messages of 64 bytes at priority 0,
//                              the other receives them; time per message, first send to last
//                              receive; also CPU time per message, sender + receiver (the
//                              figure a machine shared with other jobs does not distort)
//   mq_mixed_priorities/<peer> the same with priorities 0..7 mixed (i * 5 % 8)
//   mq_roundtrip/<peer>        a 64-byte message there and back through two queues; one
//                              sample per round trip (mean, p50, p99)
// Depth: POSIX mq runs at the kernel's allowed depth (/proc/sys/fs/mqueue/msg_max, 10 here,
// never raised); lockstep and Boost run at the same depth, and lockstep also at depth 1000
// (its own figure: no configured cap). Message size limit 64 for all.
#include "common.hpp"

#include <lockstep/ipc/message_queue.hpp>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lockstep_bench {
namespace {

constexpr std::size_t msg_size = 64;
constexpr long messages = 200'000;

long kernel_depth() {
  std::ifstream in("/proc/sys/fs/mqueue/msg_max");
  long v = 10;
  if (!(in >> v) || v <= 0) v = 10;
  return v;
}

std::string unique(const char* tag) { return std::string("lockstep-bench-") + tag + "-" + std::to_string(::getpid()); }

// One queue of each kind, behind the same three calls; the constructor creates (owner) or opens.
struct lockstep_peer {
  static constexpr const char* label = "lockstep::ipc::message_queue";
  std::string name;
  std::unique_ptr<lockstep::ipc::message_queue> q;
  bool owner;
  lockstep_peer(const std::string& n, long depth, bool create) : name(n), owner(create) {
    if (create) {
      lockstep::ipc::message_queue::remove(n.c_str());
      q = std::make_unique<lockstep::ipc::message_queue>(lockstep::ipc::create_only, n.c_str(), depth, msg_size);
    } else {
      q = std::make_unique<lockstep::ipc::message_queue>(lockstep::ipc::open_only, n.c_str());
    }
  }
  ~lockstep_peer() {
    if (owner) lockstep::ipc::message_queue::remove(name.c_str());
  }
  void send(const void* p, std::size_t n, unsigned prio) { q->send(p, n, prio); }
  void receive(void* p) {
    std::size_t n;
    unsigned prio;
    q->receive(p, msg_size, n, prio);
  }
};

struct posix_peer {
  static constexpr const char* label = "POSIX mq";
  std::string name;
  mqd_t q;
  bool owner;
  posix_peer(const std::string& n, long depth, bool create) : name("/" + n), owner(create) {
    if (create) {
      ::mq_unlink(name.c_str());
      mq_attr a{};
      a.mq_maxmsg = depth;
      a.mq_msgsize = msg_size;
      q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    } else {
      q = ::mq_open(name.c_str(), O_RDWR);
    }
    if (q == static_cast<mqd_t>(-1)) die("mq_open", errno);
  }
  ~posix_peer() {
    ::mq_close(q);
    if (owner) ::mq_unlink(name.c_str());
  }
  void send(const void* p, std::size_t n, unsigned prio) {
    if (::mq_send(q, static_cast<const char*>(p), n, prio) != 0) die("mq_send", errno);
  }
  void receive(void* p) {
    unsigned prio;
    if (::mq_receive(q, static_cast<char*>(p), msg_size, &prio) < 0) die("mq_receive", errno);
  }
};

struct boost_peer {
  static constexpr const char* label = "boost::interprocess::message_queue";
  std::string name;
  std::unique_ptr<boost::interprocess::message_queue> q;
  bool owner;
  boost_peer(const std::string& n, long depth, bool create) : name(n), owner(create) {
    using namespace boost::interprocess;
    if (create) {
      message_queue::remove(n.c_str());
      q = std::make_unique<message_queue>(create_only, n.c_str(), depth, msg_size);
    } else {
      q = std::make_unique<message_queue>(open_only, n.c_str());
    }
  }
  ~boost_peer() {
    if (owner) boost::interprocess::message_queue::remove(name.c_str());
  }
  void send(const void* p, std::size_t n, unsigned prio) { q->send(p, n, prio); }
  void receive(void* p) {
    boost::interprocess::message_queue::size_type n;
    unsigned prio;
    q->receive(p, msg_size, n, prio);
  }
};

// Forks the other process, pinned to the second CPU; it runs fn() and exits.
template <class Fn>
pid_t fork_peer(Fn fn) {
  const pid_t pid = ::fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    const cpu_pin there(1);
    fn();
    ::_exit(0);
  }
  return pid;
}

// CPU time (user + system) this thread has used, in ns: on a machine shared with other jobs,
// wall-clock figures measure the other jobs too; CPU time per message measures only the queue.
double thread_cpu_ns() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

void reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("the peer process failed", ECHILD);
}

template <class Peer>
void throughput(benchmark::State& state, long depth, bool mixed) {
  const cpu_pin here(0);
  const std::string name = unique("tp");
  for (auto _ : state) {
    Peer q(name, depth, true);
    int done[2];
    if (::pipe(done) != 0) die("pipe", errno);
    const pid_t pid = fork_peer([&] {
      Peer mine(name, depth, false);
      char buf[msg_size];
      const double c0 = thread_cpu_ns();
      for (long i = 0; i < messages; ++i) mine.receive(buf);
      const double cpu = thread_cpu_ns() - c0;
      (void)!::write(done[1], &cpu, sizeof cpu);
    });
    char msg[msg_size] = {};
    const double c0 = thread_cpu_ns();
    const auto t0 = clock::now();
    for (long i = 0; i < messages; ++i) {
      std::memcpy(msg, &i, sizeof i);
      q.send(msg, msg_size, mixed ? unsigned(i * 5 % 8) : 0u);
    }
    const double sender_cpu = thread_cpu_ns() - c0;
    double receiver_cpu = 0;
    if (::read(done[0], &receiver_cpu, sizeof receiver_cpu) != sizeof receiver_cpu) die("read", errno);
    const auto t1 = clock::now();
    reap(pid);
    ::close(done[0]);
    ::close(done[1]);
    state.SetIterationTime(seconds(t1 - t0) / messages);
    state.counters["msgs_per_s"] = messages / seconds(t1 - t0);
    state.counters["cpu_ns_per_msg"] = (sender_cpu + receiver_cpu) / messages;  // both processes
  }
}

template <class Peer>
void roundtrip(benchmark::State& state, long depth) {
  const cpu_pin here(0);
  const std::string ping_name = unique("ping"), pong_name = unique("pong");
  std::vector<double> samples;
  samples.reserve(400'000);
  for (auto _ : state) {
    Peer ping(ping_name, depth, true), pong(pong_name, depth, true);
    const pid_t pid = fork_peer([&] {
      Peer in(ping_name, depth, false), out(pong_name, depth, false);
      char buf[msg_size];
      for (;;) {
        in.receive(buf);
        if (buf[0] == 'q') return;
        out.send(buf, msg_size, 0);
      }
    });
    char msg[msg_size] = {};
    auto last = clock::now();
    const auto end = last + window;
    while (last < end) {
      ping.send(msg, msg_size, 0);
      pong.receive(msg);
      const auto now = clock::now();
      samples.push_back(ns_between(last, now));
      last = now;
    }
    msg[0] = 'q';
    ping.send(msg, msg_size, 0);
    reap(pid);
  }
  report_samples(state, samples);
}

template <class Peer>
void add_peer(long depth, const std::string& variant = "") {
  const std::string subject = std::string(Peer::label) + variant;
  add_timed("mq_throughput_64B/" + subject, [depth](benchmark::State& s) { throughput<Peer>(s, depth, false); });
  add_timed("mq_mixed_priorities/" + subject, [depth](benchmark::State& s) { throughput<Peer>(s, depth, true); });
  add_timed("mq_roundtrip/" + subject, [depth](benchmark::State& s) { roundtrip<Peer>(s, depth); });
}

const bool registered = [] {
  const long depth = kernel_depth();
  add_peer<lockstep_peer>(depth);
  add_peer<lockstep_peer>(1000, "/depth 1000");
  add_peer<posix_peer>(depth);
  add_peer<boost_peer>(depth);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench
