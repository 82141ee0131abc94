// bench/ipc_common.hpp: the two-process IPC benchmarks' plumbing (bench/ipc_bench.cpp, peers in
// bench/ipc_peers.hpp): unique names, removal of every IPC object even when a run fails, the
// forked peer processes, and the five measurements over any peer.
//
// A peer type P is one kind of queue behind the same calls:
//   static constexpr const char* label;                 the subject's name in the report
//   static const char* cannot(const shape&);            why it cannot run this shape, or nullptr
//   static std::string capacity(const shape&);          what it holds, for the figure's label
//   P(const std::string& name, const shape&)            creates it (the benchmark process, before forking)
//   P(opener, const P& created)                         opens it in a forked process
//   void send(std::uint64_t seq)       one message of shape.size bytes that begins with seq
//   std::uint64_t receive()            the next message's seq (the receiver reads the whole message)
//   optional: void send(std::uint64_t seq, unsigned priority)   (the message queues)
//   optional: static constexpr bool one_producer = true         (scaling skips it beyond 1)
// shape: message size in bytes and depth (messages the queue holds, for the peers that have one).
//
// Failures: a peer that cannot be set up, a call that fails, a message out of order, a forked
// peer that dies or a run that hangs (no repetition ends within `stall`) ends the run with a
// message; every named IPC object it created is removed first (at exit, on
// SIGINT/SIGTERM/SIGHUP/SIGABRT/SIGALRM), and the forked peers die with it (PR_SET_PDEATHSIG).
#pragma once

#include "common.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lockstep_bench::ipc {

inline constexpr std::uint64_t quit = ~std::uint64_t{0};  // a sender's last message
// Seconds a repetition may take: each normally ends within half a second, so a repetition still
// running after `stall` has lost its peer (a forked process that died while this one waits on a
// full or empty queue): SIGALRM ends the run, removing every named object.
inline constexpr unsigned stall = 10;

struct shape {
  std::size_t size;  // bytes per message (>= 8: the sequence number)
  long depth;        // messages the queue holds
};

// A /proc/sys value (fs.mqueue.msg_max, kernel.msgmax, ...): read, never changed.
inline long kernel_limit(const char* path, long fallback) {
  std::ifstream in(path);
  long v = fallback;
  if (!(in >> v) || v <= 0) v = fallback;
  return v;
}
// fs.mqueue.msg_max: the deepest POSIX mq an unprivileged process may create (10 by default).
inline long kernel_mq_depth() { return kernel_limit("/proc/sys/fs/mqueue/msg_max", 10); }

inline std::string unique(const char* tag) {
  static unsigned n = 0;
  return std::string("lockstep-bench-") + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

struct opener {};  // tag: the peer constructor that opens, in a forked process

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

// --- the forked peers --------------------------------------------------------------------------

// Forks a process that runs fn() and leaves with _exit(0), pinned to the second CPU unless
// pin is false. It dies with the benchmark process (PR_SET_PDEATHSIG) if that ends first.
template <class Fn>
pid_t fork_peer(Fn fn, bool pin = true) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(126);
    if (pin) {
      const cpu_pin there(1);
      fn();
    } else {
      fn();
    }
    ::_exit(0);
  }
  return pid;
}

inline void reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("a peer process failed", ECHILD);
}

// A pipe that carries a few plain values from a forked process back (or a start signal there).
struct report_pipe {
  int fd[2];
  report_pipe() {
    if (::pipe(fd) != 0) die("pipe", errno);
  }
  ~report_pipe() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  report_pipe(const report_pipe&) = delete;
  report_pipe& operator=(const report_pipe&) = delete;
  template <class T>
  void put(const T& v) {
    if (::write(fd[1], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) die("write", errno);
  }
  template <class T>
  T get() {
    T v;
    if (::read(fd[0], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) die("read", errno);
    return v;
  }
};

// The calling thread's CPU time (user + system), in ns.
inline double thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
}

// Whether a peer takes one producer only (scaling skips it beyond 1): P::one_producer.
template <class P>
constexpr bool single_producer = requires { requires P::one_producer; };

// Labels the figure with the peer's capacity; a peer that cannot run this shape is skipped with
// "n/a: <why>", which bench/ipc_report.py prints in the table cell.
template <class Peer>
bool unavailable(benchmark::State& state, const shape& s) {
  state.SetLabel(Peer::capacity(s));
  if (const char* why = Peer::cannot(s)) {
    state.SkipWithError((std::string("n/a: ") + why).c_str());
    return true;
  }
  return false;
}

// --- the measurements --------------------------------------------------------------------------

// One-way throughput: this process sends for `win`, then `quit`; the forked one receives and
// checks the order. Time per message from the first send to the receiver's last receive (it
// reports its end, its count and its CPU time through a pipe). Counters: msgs_per_s, bytes_per_s,
// sender_cpu_ns and receiver_cpu_ns (CPU time per message of each side: on a machine shared
// with other jobs the wall clock measures them too, CPU time only the transport).
//
// With `prio` (peers with send(seq, priority): the message queues), message i goes at priority
// prio(i) and quit at the lowest, 0, behind everything still queued; the receiver then checks
// the count only, as the order is the priorities'.
template <class Peer>
void throughput(benchmark::State& state, shape s, clock::duration win, unsigned (*prio)(std::uint64_t) = nullptr) {
  if (unavailable<Peer>(state, s)) return;
  const cpu_pin here(0);
  for (auto _ : state) {
    ::alarm(stall);
    Peer q(unique("tp"), s);
    report_pipe done;
    const pid_t pid = fork_peer([&] {
      Peer mine(opener{}, q);
      const double c0 = thread_cpu_ns();
      std::uint64_t n = 0;
      for (std::uint64_t seq; (seq = mine.receive()) != quit; ++n)
        if (seq != n && prio == nullptr) die("a message out of order", EPROTO);
      const double cpu = thread_cpu_ns() - c0;
      done.put(n);
      done.put(cpu);
    });
    const double c0 = thread_cpu_ns();
    const auto t0 = clock::now();
    const auto end = t0 + win;
    std::uint64_t i = 0;
    do {
      for (int k = 0; k < 16; ++k, ++i) {
        if constexpr (requires { q.send(i, 0u); }) {
          if (prio != nullptr) {
            q.send(i, prio(i) + 1);
            continue;
          }
        }
        q.send(i);
      }
    } while (clock::now() < end);
    q.send(quit);
    const double sender_cpu = thread_cpu_ns() - c0;
    const auto n = done.get<std::uint64_t>();
    const auto receiver_cpu = done.get<double>();
    const auto t1 = clock::now();
    reap(pid);
    ::alarm(0);
    if (n != i) die("messages were lost", EPROTO);
    const double secs = seconds(t1 - t0);
    state.SetIterationTime(secs / double(n));
    state.counters["msgs_per_s"] = double(n) / secs;
    state.counters["bytes_per_s"] = double(n) * double(s.size) / secs;
    state.counters["sender_cpu_ns"] = sender_cpu / double(n);
    state.counters["receiver_cpu_ns"] = receiver_cpu / double(n);
  }
}

// Ping-pong: a message there through one queue and back through another, for `win`; one
// sample per round trip (mean as the time, p50_ns and p99_ns as counters). With `pause` > 0
// this process sleeps that long before each message, so that the other side has gone to sleep
// (past any spin) and every sample includes its wake-up.
template <class Peer>
void roundtrip(benchmark::State& state, shape s, clock::duration win, std::chrono::microseconds pause) {
  if (unavailable<Peer>(state, s)) return;
  const cpu_pin here(0);
  std::vector<double> samples;
  samples.reserve(400'000);
  const timespec nap{0, long(pause.count()) * 1000};
  for (auto _ : state) {
    ::alarm(stall);
    Peer ping(unique("ping"), s), pong(unique("pong"), s);
    const pid_t pid = fork_peer([&] {
      Peer in(opener{}, ping), out(opener{}, pong);
      for (;;) {
        const std::uint64_t seq = in.receive();
        if (seq == quit) return;
        out.send(seq);
      }
    });
    const auto end = clock::now() + win;
    for (std::uint64_t i = 0;; ++i) {
      if (pause.count() > 0) ::nanosleep(&nap, nullptr);
      const auto t0 = clock::now();
      ping.send(i);
      if (pong.receive() != i) die("the round trip returned another message", EPROTO);
      const auto t1 = clock::now();
      samples.push_back(ns_between(t0, t1));
      if (t1 >= end) break;
    }
    ping.send(quit);
    reap(pid);
    ::alarm(0);
  }
  report_samples(state, samples);
}

// Scaling: `producers` forked processes (not pinned: with more than one producer they and the
// consumer oversubscribe 2 CPUs, which is part of the picture) each send for `win` once this
// process says go, then `quit`; this process receives them all and checks each producer's order
// (producer id in the top byte of seq). Counter msgs_per_s, all producers together.
template <class Peer>
void scaling(benchmark::State& state, shape s, int producers, clock::duration win) {
  if (unavailable<Peer>(state, s)) return;
  if (producers > 1 && single_producer<Peer>) {
    state.SkipWithError("n/a: one producer only (single-producer ring)");
    return;
  }
  for (auto _ : state) {
    ::alarm(stall);
    Peer q(unique("scale"), s);
    report_pipe go;
    std::vector<pid_t> pids;
    for (int p = 0; p < producers; ++p)
      pids.push_back(fork_peer(
          [&, p] {
            Peer mine(opener{}, q);
            (void)go.get<char>();
            const auto end = clock::now() + win;
            std::uint64_t i = 0;
            do {
              for (int k = 0; k < 16; ++k) mine.send(std::uint64_t(p) << 56 | i++);
            } while (clock::now() < end);
            mine.send(quit);
          },
          false));
    const auto t0 = clock::now();
    for (int p = 0; p < producers; ++p) go.put('g');
    std::vector<std::uint64_t> next(std::size_t(producers), 0);
    std::uint64_t n = 0;
    for (int left = producers; left > 0;) {
      const std::uint64_t seq = q.receive();
      if (seq == quit) {
        --left;
        continue;
      }
      const std::size_t p = seq >> 56;
      if (p >= next.size() || (seq & ((std::uint64_t{1} << 56) - 1)) != next[p]++) die("a message out of order", EPROTO);
      ++n;
    }
    const auto t1 = clock::now();
    for (pid_t pid : pids) reap(pid);
    ::alarm(0);
    state.SetIterationTime(seconds(t1 - t0) / double(n));
    state.counters["msgs_per_s"] = double(n) / seconds(t1 - t0);
  }
}

// Idle receiver: the forked process blocks in receive() on an empty queue; this process waits
// `idle`, then sends one message. Counter cpu_percent: the receiver's CPU time from entering
// receive() to its return (its spin, its sleep, its wake-up), over the idle time.
template <class Peer>
void idle_receiver(benchmark::State& state, shape s, clock::duration idle) {
  if (unavailable<Peer>(state, s)) return;
  const cpu_pin here(0);
  for (auto _ : state) {
    ::alarm(stall);
    Peer q(unique("idle"), s);
    report_pipe ready, done;
    const pid_t pid = fork_peer([&] {
      Peer mine(opener{}, q);
      ready.put('r');
      const double c0 = thread_cpu_ns();
      if (mine.receive() != 0) die("the idle receiver got another message", EPROTO);
      done.put(thread_cpu_ns() - c0);
    });
    (void)ready.get<char>();
    const auto t0 = clock::now();
    std::this_thread::sleep_for(idle);
    q.send(0);
    const auto cpu = done.get<double>();
    const auto t1 = clock::now();
    reap(pid);
    ::alarm(0);
    state.SetIterationTime(seconds(t1 - t0));
    state.counters["cpu_percent"] = 100.0 * cpu / ns_between(t0, t1);
  }
}

}  // namespace lockstep_bench::ipc
