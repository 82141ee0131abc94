// bench/ipc_common.hpp: what the two-process IPC benchmarks share (channel_bench.cpp,
// message_queue_bench.cpp): the kernel's POSIX mq depth, unique names, removal of every IPC
// object even when a run fails, the forked peer process, POSIX mq as a peer, and the two
// measurements, one-way throughput and ping-pong round trip, over any peer.
//
// A peer type P is one kind of queue behind the same calls:
//   static constexpr const char* label;   the subject's name in the report
//   P(const std::string& name, long depth) creates it (the benchmark process, before the fork)
//   P(opener, const P& created)            opens it in the forked process
//   void send(std::uint64_t seq, unsigned prio)   one message of msg_size bytes that begins with seq
//   std::uint64_t receive()                        the next message's seq
// Both processes are pinned to CPUs of their own (common.hpp cpu_pin).
//
// Failures: a peer that cannot be set up, a call that fails, a forked peer that dies or a run
// that hangs (no repetition ends within `stall`) ends the run with a message; every named IPC
// object it created is removed first (at exit, on SIGINT/SIGTERM/SIGHUP/SIGABRT/SIGALRM), and
// the forked peer dies with it (PR_SET_PDEATHSIG).
#pragma once

#include "common.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <mqueue.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lockstep_bench::ipc {

inline constexpr std::size_t msg_size = 64;
inline constexpr std::uint64_t quit = ~std::uint64_t{0};  // the round trip's last message
inline constexpr unsigned stall = 60;                      // seconds a repetition may take

// fs.mqueue.msg_max: the deepest POSIX mq an unprivileged process may create (10 by default).
// Read, never changed.
inline long kernel_mq_depth() {
  std::ifstream in("/proc/sys/fs/mqueue/msg_max");
  long v = 10;
  if (!(in >> v) || v <= 0) v = 10;
  return v;
}

inline std::string unique(const char* tag) { return std::string("lockstep-bench-") + tag + "-" + std::to_string(::getpid()); }

struct opener {};  // tag: the peer constructor that opens, in the forked process

// --- removal of every named object, whatever happens -------------------------------------------

// The names this process created and has not removed yet, with how to remove each. Fixed-size
// and plain, so that a signal handler may walk it; only the creating process removes (a forked
// peer inherits the table and must not).
class removals {
 public:
  using remover = int (*)(const char*);  // shm_unlink-like: async-signal-safe

  static void add(remover fn, const std::string& name) {
    static const bool installed = install();
    (void)installed;
    for (entry& e : table())
      if (e.fn == nullptr) {
        std::snprintf(e.name, sizeof e.name, "%s", name.c_str());
        e.fn = fn;
        return;
      }
    die("too many IPC objects at once", ENOSPC);
  }
  // Removes `name` now (a normal end) and forgets it.
  static void remove(const std::string& name) {
    for (entry& e : table())
      if (e.fn != nullptr && name == e.name) {
        e.fn(e.name);
        e.fn = nullptr;
      }
  }

 private:
  struct entry {
    remover fn = nullptr;
    char name[128] = {};
  };
  static std::vector<entry>& table() {
    static std::vector<entry> t(32);  // sized once, before any signal can arrive
    return t;
  }
  static pid_t& owner() {
    static pid_t pid = ::getpid();
    return pid;
  }
  static void remove_all() {
    if (::getpid() != owner()) return;
    for (entry& e : table())
      if (e.fn != nullptr) {
        e.fn(e.name);
        e.fn = nullptr;
      }
  }
  static void on_signal(int sig) {
    remove_all();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  static bool install() {
    (void)owner();
    (void)table();
    std::atexit(remove_all);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGALRM}) std::signal(sig, on_signal);
    return true;
  }
};

// Adapters for removals::add: the removal calls of each kind, by the name it was created with.
inline int unlink_mq(const char* name) { return ::mq_unlink(name); }

// --- the forked peer ---------------------------------------------------------------------------

// Forks the other process, pinned to the second CPU; it runs fn() and leaves with _exit(0).
// It dies with the benchmark process (PR_SET_PDEATHSIG) if that ends first.
template <class Fn>
pid_t fork_peer(Fn fn) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(126);
    const cpu_pin there(1);
    fn();
    ::_exit(0);
  }
  return pid;
}

inline void reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("the peer process failed", ECHILD);
}

// --- messages ----------------------------------------------------------------------------------

// A msg_size-byte message that begins with its sequence number.
struct message {
  unsigned char bytes[msg_size] = {};
  message() = default;
  explicit message(std::uint64_t seq) { std::memcpy(bytes, &seq, sizeof seq); }
  std::uint64_t seq() const {
    std::uint64_t s;
    std::memcpy(&s, bytes, sizeof s);
    return s;
  }
};

// --- named queues ------------------------------------------------------------------------------

// What every peer named like a Boost.Interprocess queue shares: Q(create_only, name, depth,
// msg_size) in the benchmark process (any earlier one of the name removed first, and the name
// registered for removal), Q(open_only, name) in the forked one, Q::remove(name) at the end.
// A peer derives from it and adds label, send and receive.
template <class Q, class CreateOnly, class OpenOnly>
struct named_queue {
  std::string name;
  std::unique_ptr<Q> q;
  bool owner;
  static int unlink(const char* n) { return Q::remove(n) ? 0 : -1; }
  named_queue(const std::string& n, long depth) : name(n), owner(true) {
    Q::remove(n.c_str());
    q = std::make_unique<Q>(CreateOnly{}, n.c_str(), depth, msg_size);
    removals::add(unlink, name);
  }
  named_queue(opener, const named_queue& created)
      : name(created.name), q(std::make_unique<Q>(OpenOnly{}, name.c_str())), owner(false) {}
  named_queue(const named_queue&) = delete;
  named_queue& operator=(const named_queue&) = delete;
  ~named_queue() {
    if (owner) removals::remove(name);
  }
};

// --- POSIX mq: a peer of every IPC benchmark ---------------------------------------------------

struct posix_mq_peer {
  static constexpr const char* label = "POSIX mq";
  std::string name;
  mqd_t q;
  bool owner;
  posix_mq_peer(const std::string& n, long depth) : name("/" + n), owner(true) {
    ::mq_unlink(name.c_str());
    mq_attr a{};
    a.mq_maxmsg = depth;
    a.mq_msgsize = msg_size;
    q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    if (q == static_cast<mqd_t>(-1)) die("mq_open(O_CREAT)", errno);
    removals::add(unlink_mq, name);
  }
  posix_mq_peer(opener, const posix_mq_peer& created) : name(created.name), owner(false) {
    q = ::mq_open(name.c_str(), O_RDWR);
    if (q == static_cast<mqd_t>(-1)) die("mq_open", errno);
  }
  posix_mq_peer(const posix_mq_peer&) = delete;
  posix_mq_peer& operator=(const posix_mq_peer&) = delete;
  ~posix_mq_peer() {
    ::mq_close(q);
    if (owner) removals::remove(name);
  }
  void send(std::uint64_t seq, unsigned prio) {
    const message m(seq);
    if (::mq_send(q, reinterpret_cast<const char*>(m.bytes), msg_size, prio) != 0) die("mq_send", errno);
  }
  std::uint64_t receive() {
    message m;
    unsigned prio;
    if (::mq_receive(q, reinterpret_cast<char*>(m.bytes), msg_size, &prio) != static_cast<ssize_t>(msg_size))
      die("mq_receive", errno);
    return m.seq();
  }
};

// --- the measurements --------------------------------------------------------------------------

inline unsigned no_priority(long) { return 0; }

// One-way throughput: this process sends `messages` messages (priority prio(i)), the forked one
// receives them and checks their order; time per message from the first send to the last
// receive (the receiver reports its end, and the CPU time it used, through a pipe). Counters
// msgs_per_s and cpu_ns_per_msg (sender + receiver): on a machine shared with other jobs the
// wall clock measures them too, CPU time per message measures only the transport.
inline double thread_cpu_ns() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

template <class Peer>
void throughput(benchmark::State& state, long depth, long messages, unsigned (*prio)(long) = no_priority) {
  const cpu_pin here(0);
  const std::string name = unique("tp");
  for (auto _ : state) {
    ::alarm(stall);
    Peer q(name, depth);
    int done[2];
    if (::pipe(done) != 0) die("pipe", errno);
    const pid_t pid = fork_peer([&] {
      Peer mine(opener{}, q);
      const bool fifo = prio == no_priority;  // with priorities, the order is theirs
      const double c0 = thread_cpu_ns();
      for (long i = 0; i < messages; ++i)
        if (mine.receive() != std::uint64_t(i) && fifo) die("a message out of order", EPROTO);
      const double cpu = thread_cpu_ns() - c0;
      (void)!::write(done[1], &cpu, sizeof cpu);
    });
    const double c0 = thread_cpu_ns();
    const auto t0 = clock::now();
    for (long i = 0; i < messages; ++i) q.send(std::uint64_t(i), prio(i));
    const double sender_cpu = thread_cpu_ns() - c0;
    double receiver_cpu = 0;
    if (::read(done[0], &receiver_cpu, sizeof receiver_cpu) != sizeof receiver_cpu) die("read", errno);
    const auto t1 = clock::now();
    reap(pid);
    ::close(done[0]);
    ::close(done[1]);
    ::alarm(0);
    state.SetIterationTime(seconds(t1 - t0) / double(messages));
    state.counters["msgs_per_s"] = double(messages) / seconds(t1 - t0);
    state.counters["cpu_ns_per_msg"] = (sender_cpu + receiver_cpu) / double(messages);
  }
}

// Ping-pong: a message there through one queue and back through another, for `window`; one
// sample per round trip (mean as the time, p50_ns and p99_ns as counters).
template <class Peer>
void roundtrip(benchmark::State& state, long depth) {
  const cpu_pin here(0);
  const std::string ping_name = unique("ping"), pong_name = unique("pong");
  std::vector<double> samples;
  samples.reserve(400'000);
  for (auto _ : state) {
    ::alarm(stall);
    Peer ping(ping_name, depth), pong(pong_name, depth);
    const pid_t pid = fork_peer([&] {
      Peer in(opener{}, ping), out(opener{}, pong);
      for (;;) {
        const std::uint64_t seq = in.receive();
        if (seq == quit) return;
        out.send(seq, 0);
      }
    });
    auto last = clock::now();
    const auto end = last + window;
    for (std::uint64_t i = 0; last < end; ++i) {
      ping.send(i, 0);
      if (pong.receive() != i) die("the round trip returned another message", EPROTO);
      const auto now = clock::now();
      samples.push_back(ns_between(last, now));
      last = now;
    }
    ping.send(quit, 0);
    reap(pid);
    ::alarm(0);
  }
  report_samples(state, samples);
}

}  // namespace lockstep_bench::ipc
