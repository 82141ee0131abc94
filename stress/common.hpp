// stress/common.hpp: what every stress run shares: its command line, a start line for threads
// and processes, forking a child and judging how it ended, one object in a MAP_SHARED mapping,
// rounds under a watchdog that fails a hung run, and the report line. The unit tests reuse the process helpers (primitives/tests/death.hpp).
//
// Nothing here uses a lockstep primitive: the harness must not depend on what it checks.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <utility>

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lockstep::stress {

// --- command line ------------------------------------------------------------------------------

struct options {
  unsigned threads = 4;             // --threads: worker threads (per process, in process phases)
  unsigned processes = 3;           // --processes: forked processes, in process phases
  unsigned long iterations = 20000; // --iterations: operations per thread, per round
  double seconds = 0;               // --seconds: repeat rounds until this much time passed (0: one)
  unsigned stall = 60;              // --stall: fail if no round finishes for this many seconds
};

[[noreturn]] inline void die(const char* what) {
  // A helper that cannot even set up (fork, mmap, pipe) makes every later count meaningless.
  std::fprintf(stderr, "stress: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

namespace detail {
// The whole of `text` as a number in [lo, hi], or false: "12x", "", "-1" and overflow are wrong.
inline bool parse_number(const char* text, double lo, double hi, double& out) {
  if (*text == '\0' || *text == '-' || *text == '+') return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi)) return false;
  out = v;
  return true;
}
}  // namespace detail

// Parses --threads N --processes N --iterations N --seconds S --stall S over `defaults`. --help prints
// the usage and exits 0; anything wrong (unknown flag, missing or malformed value, out of
// range) is named on stderr with the usage, and the run exits 2 before doing anything.
inline options parse_options(int argc, char** argv, options defaults) {
  options o = defaults;
  auto usage = [&](std::FILE* to) {
    std::fprintf(to,
                 "usage: %s [--threads N (1..256, default %u)] [--processes N (1..64, default %u)]\n"
                 "       [--iterations N (per thread per round, 1..1e12, default %lu)]\n"
                 "       [--seconds S (repeat rounds until S seconds passed, 0..86400, default %g)]\n"
                 "       [--stall S (fail when no round finishes for S seconds, 1..86400, default %u)]\n",
                 argv[0], defaults.threads, defaults.processes, defaults.iterations, defaults.seconds, defaults.stall);
  };
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\n", argv[0], why.c_str());
    usage(stderr);
    std::exit(2);
  };
  struct spec {
    const char* name;
    double lo, hi;
    bool whole;
  };
  static constexpr spec specs[] = {{"--threads", 1, 256, true},
                                   {"--processes", 1, 64, true},
                                   {"--iterations", 1, 1e12, true},
                                   {"--seconds", 0, 86400, false},
                                   {"--stall", 1, 86400, true}};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      usage(stdout);
      std::exit(0);
    }
    int which = -1;
    for (int k = 0; k < 5; ++k)
      if (flag == specs[k].name) which = k;
    if (which < 0) fail("unknown argument '" + flag + "'");
    const spec& s = specs[which];
    if (i + 1 == argc) fail(flag + " wants a value");
    const char* text = argv[++i];
    double v = 0;
    if (!detail::parse_number(text, s.lo, s.hi, v) || (s.whole && v != static_cast<double>(static_cast<unsigned long long>(v)))) {
      char range[64];
      std::snprintf(range, sizeof range, " in [%g, %g]", s.lo, s.hi);
      fail(flag + " wants " + (s.whole ? "a whole number" : "a number") + range + ", not '" + text + "'");
    }
    switch (which) {
      case 0: o.threads = static_cast<unsigned>(v); break;
      case 1: o.processes = static_cast<unsigned>(v); break;
      case 2: o.iterations = static_cast<unsigned long>(v); break;
      case 3: o.seconds = v; break;
      default: o.stall = static_cast<unsigned>(v); break;
    }
  }
  return o;
}

// --- measuring ---------------------------------------------------------------------------------

class stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// One line per phase: "<phase>: <ops> ops in <s> s = <ops/s> ops/s  <detail>".
inline void report(const char* phase, unsigned long long ops, double secs, const std::string& detail) {
  std::printf("%-10s %12llu ops in %7.3f s = %12.0f ops/s  %s\n", phase, ops, secs,
              secs > 0 ? static_cast<double>(ops) / secs : 0.0, detail.c_str());
  std::fflush(stdout);
}

// --- starting together -------------------------------------------------------------------------

// A one-shot start line for `parties` threads, in one process or (placed in a shared_object)
// in several: nobody starts until all have arrived, so the run really contends from its first
// operation instead of measuring thread start-up. It spins with yield: the wait lasts only as
// long as a thread takes to start, and std::latch is not process-shared in libstdc++ (its
// waiters queue in a per-process table).
class start_line {
 public:
  explicit start_line(unsigned parties) noexcept : left_(parties) {}
  void arrive_and_wait() noexcept {
    left_.fetch_sub(1, std::memory_order_acq_rel);
    while (left_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  static_assert(std::atomic<unsigned>::is_always_lock_free, "shared across processes");
  std::atomic<unsigned> left_;
};

// --- processes ---------------------------------------------------------------------------------

// How a child ended: a raw waitpid status, with the questions a check asks of it.
struct exit_status {
  int raw = 0;
  bool ok() const { return WIFEXITED(raw) && WEXITSTATUS(raw) == 0; }
  bool exited_with(int code) const { return WIFEXITED(raw) && WEXITSTATUS(raw) == code; }
  bool killed_by(int sig) const { return WIFSIGNALED(raw) && WTERMSIG(raw) == sig; }
  std::string describe() const {
    if (WIFEXITED(raw)) return "exited with status " + std::to_string(WEXITSTATUS(raw));
    if (WIFSIGNALED(raw)) {
      const char* name = sigdescr_np(WTERMSIG(raw));
      return "killed by signal " + std::to_string(WTERMSIG(raw)) + " (" + (name ? name : "?") + ")";
    }
    return "ended with raw status " + std::to_string(raw);
  }
};

// Forks a child that runs fn() and leaves with _exit(fn's int result). _exit, not exit or a
// return: the child must not run the parent's atexit handlers and static destructors, nor
// destroy shared_objects the parent owns. stdio is flushed before the fork (or buffered text
// would be printed twice) and after fn. The child is killed if the forking thread ends first.
// Call it while the caller is single-threaded where it can: a child forked from a
// multi-threaded process inherits locks held by threads it lacks.
template <class Fn>
pid_t fork_child(Fn&& fn) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    // A child must not outlive a run that was killed (by its watchdog, say): it dies with the
    // thread that forked it. If that already happened, the parent is gone: leave at once.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(126);
    const int rc = std::forward<Fn>(fn)();
    std::fflush(nullptr);
    ::_exit(rc);
  }
  return pid;
}

inline exit_status wait_child(pid_t pid) {
  exit_status s;
  while (::waitpid(pid, &s.raw, 0) < 0)
    if (errno != EINTR) die("waitpid");
  return s;
}

// Waits for every child; names each one that did not exit 0 on stderr. Returns whether all did.
template <class Pids>
bool wait_children(const Pids& pids, const char* what) {
  bool all_ok = true;
  for (const pid_t pid : pids) {
    const exit_status s = wait_child(pid);
    if (!s.ok()) {
      std::fprintf(stderr, "%s: child %d %s\n", what, static_cast<int>(pid), s.describe().c_str());
      all_ok = false;
    }
  }
  return all_ok;
}

// One T, constructed in a fresh anonymous MAP_SHARED mapping: a child forked afterwards sees
// the same object at the same address, and its writes are the parent's. The owner (the process
// that made it) destroys it; forked children leave through _exit and never do.
template <class T>
class shared_object {
 public:
  template <class... Args>
  explicit shared_object(Args&&... args) {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap(MAP_SHARED | MAP_ANONYMOUS)");
    obj_ = ::new (p) T(std::forward<Args>(args)...);
  }
  shared_object(const shared_object&) = delete;
  shared_object& operator=(const shared_object&) = delete;
  ~shared_object() {
    obj_->~T();
    ::munmap(obj_, sizeof(T));
  }
  T& operator*() const noexcept { return *obj_; }
  T* operator->() const noexcept { return obj_; }

 private:
  T* obj_ = nullptr;
};

// A hung run (a lost wake-up, a stranded sleeper) must fail with a message, not sit until
// ctest's timeout. The watchdog is a process forked up front that kills this one when beat()
// has not been called for `stall` seconds; the run's own children die with it
// (PR_SET_PDEATHSIG, see fork_child). Not a thread: every later fork would then be a fork of a
// multi-threaded process, whose child TSan refuses to let start threads. Not a signal: it may
// be delivered to the stuck thread, where TSan defers it until that thread leaves its syscall.
class watchdog {
 public:
  explicit watchdog(unsigned stall_seconds) {
    const pid_t watched = ::getpid();
    pid_ = fork_child([&, watched] {
      unsigned long seen = beats_->load(std::memory_order_relaxed);
      auto last = std::chrono::steady_clock::now();
      for (;;) {
        ::sleep(1);
        const unsigned long now_seen = beats_->load(std::memory_order_relaxed);
        const auto now = std::chrono::steady_clock::now();
        if (now_seen != seen) {
          seen = now_seen;
          last = now;
        } else if (now - last >= std::chrono::seconds(stall_seconds)) {
          std::fprintf(stderr,
                       "stress: watchdog: no round finished for %u s: a thread is stuck (lost wake-up? "
                       "stranded sleeper?); killing pid %d\n",
                       stall_seconds, static_cast<int>(watched));
          ::kill(watched, SIGKILL);
          return 3;
        }
      }
    });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    ::kill(pid_, SIGKILL);
    (void)wait_child(pid_);
  }
  void beat() noexcept { beats_->fetch_add(1, std::memory_order_relaxed); }

 private:
  shared_object<std::atomic<unsigned long>> beats_{0ul};
  pid_t pid_;
};

// Runs round() once, then again until --seconds have passed; stops at the first failed round.
// A watchdog fails the run when a round hangs. Call it before this process starts any thread.
// Returns whether every round passed.
template <class Round>
bool repeat_rounds(const options& o, Round round) {
  watchdog dog(o.stall);
  const auto start = std::chrono::steady_clock::now();
  for (unsigned n = 1;; ++n) {
    if (!round()) {
      std::fprintf(stderr, "FAILED in round %u\n", n);
      return false;
    }
    dog.beat();
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= o.seconds) return true;
  }
}

}  // namespace lockstep::stress
