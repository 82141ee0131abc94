// primitives/tests/death.hpp: death tests: run a lambda in a forked child and see how the child
// ended and what it wrote to stderr. A broken contract that aborts (unlock by a non-owner, say)
// can only be checked from outside the process that aborts.
//
// The fork/wait machinery is the stress runs' (stress/common.hpp); this adds the stderr pipe.
// Inside the child, doctest's CHECKs would be recorded in the child's memory and lost: a child
// reports only through its exit status, its signal and its stderr.
#pragma once

#include "../../stress/common.hpp"

#include <csignal>
#include <string>
#include <type_traits>

#include <fcntl.h>
#include <unistd.h>

namespace lockstep::test {

using stress::exit_status;
using stress::fork_child;
using stress::shared_object;
using stress::start_line;
using stress::wait_child;

struct death {
  exit_status status;
  std::string stderr_text;  // everything the child wrote to fd 2
};

// Forks; the child points fd 2 at a pipe, restores the default action of the fatal signals and
// runs fn(). If fn returns (an int, or void for 0),
// the child exits with that status. Call it while the test is single-threaded (see fork_child).
template <class Fn>
death run_in_child(Fn fn) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) stress::die("pipe2");
  const pid_t pid = fork_child([&]() -> int {
    ::close(fds[0]);
    if (::dup2(fds[1], 2) < 0) return 127;
    ::close(fds[1]);
    // The test framework's crash handlers would report the "crash" from inside the child and
    // change how it ends: the child dies as a plain process would.
    for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) std::signal(sig, SIG_DFL);
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      return 0;
    } else {
      return fn();
    }
  });
  ::close(fds[1]);
  death d;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) d.stderr_text.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  d.status = wait_child(pid);
  return d;
}

}  // namespace lockstep::test
