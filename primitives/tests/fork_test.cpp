// primitives/tests/fork_test.cpp: the owner id in fork children (seam/linux.hpp, T1..T3).
//
// A child must lock as itself, never as the parent thread it was copied from, however it was
// made (fork, _Fork, from any thread), whatever pthread_atfork handlers exist and in whatever
// order they were registered, and whenever lockstep was first used. The cases that depend on
// "lockstep not used yet" cannot run in this test process (earlier tests used it), so each runs
// as a *scenario* in a fresh image of this binary: a forked child execs /proc/self/exe
// --scenario NAME, which runs the scenario instead of the tests and reports by exit status (0
// passed; k: check k failed, named on stderr). The other cases run in a plain forked child.
//
// In every scenario the "parent" is the scenario's process; it forks a child that takes an
// interprocess_mutex in a MAP_SHARED mapping and holds it while the parent checks that it
// neither owns nor can release it: held_by_caller() false, lock_checked() times out (not
// EDEADLK), unlock_checked() is EPERM; then the child checks its hold is untouched.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <lockstep/mutex.hpp>

#include "death.hpp"
#include "support.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace std::chrono_literals;
using lockstep::interprocess_mutex;
using lockstep::mutex;
namespace seam = lockstep::seam;
using lockstep::test::eventually;
using std::errc;

namespace {

std::uint32_t gettid_now() { return static_cast<std::uint32_t>(::syscall(SYS_gettid)); }

// A scenario's verdict: 0, or the number of the first failed check, named on stderr.
struct failed {
  int code;
};
void expect(bool ok, int code, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "check %d failed: %s\n", code, what);
  throw failed{code};
}

// What a parent and the child it forks share.
struct shared {
  interprocess_mutex m;
  std::atomic<int> step{0};  // 1: the child holds m; 2: the parent has checked; -1: the child failed
};

// The child's side: take m as itself and hold it until the parent has looked.
int child_takes_and_holds(shared& s) {
  try {
    expect(seam::thread_id() == gettid_now(), 20, "child: thread_id() == gettid()");
    expect(!s.m.lock_checked(), 21, "child: lock_checked() on a free mutex");
    expect(s.m.held_by_caller(), 22, "child: held_by_caller() after its lock");
    s.step.store(1);
    expect(eventually([&] { return s.step.load() == 2; }), 23, "child: the parent never finished");
    expect(s.m.held_by_caller(), 24, "child: still holds m after the parent's attempts");
    expect(!s.m.unlock_checked(), 25, "child: its own unlock");
    return 0;
  } catch (const failed& f) {
    s.step.store(-1);
    return f.code;
  }
}

// The parent's side, while the child holds m: the right values.
void parent_cannot_touch_childs_lock(shared& s) {
  expect(eventually([&] { return s.step.load() != 0; }) && s.step.load() == 1, 1, "parent: the child did not take m");
  expect(!s.m.held_by_caller(), 2, "parent: held_by_caller() must be false while the child holds m");
  expect(s.m.lock_checked(seam::now() + 50ms) == errc::timed_out, 3,
         "parent: lock_checked(50 ms) must time out, not say EDEADLK");
  expect(s.m.unlock_checked() == errc::operation_not_permitted, 4,
         "parent: unlock_checked() must be EPERM, not release the child's lock");
  s.step.store(2);
}

int child_result(pid_t pid) {
  const auto st = lockstep::test::wait_child(pid);
  if (!st.ok()) std::fprintf(stderr, "child %s\n", st.describe().c_str());
  return st.ok() ? 0 : 9;
}

// --- scenarios (fresh processes) ---------------------------------------------------------------

shared* g_shared = nullptr;
mutex g_private;
int g_child_unlock_private = -1;  // what unlock_checked() returned in the child handler
int g_child_unlock_shared = -1;

// Issue case 1: the user's atfork handler is registered before lockstep is ever used, and its
// prepare phase is lockstep's first use. With an id cache cleared by an atfork handler that
// lockstep registers at first use, that handler would not run for this fork: the child would
// lock as the parent.
int prepare_is_first_use() {
  lockstep::test::shared_object<shared> s;
  g_shared = &*s;
  ::pthread_atfork([] {
    g_shared->m.lock();  // lockstep's first use in this process
    g_shared->m.unlock();
  }, nullptr, nullptr);
  const pid_t child = lockstep::test::fork_child([&] { return child_takes_and_holds(*s); });
  parent_cannot_touch_childs_lock(*s);
  return child_result(child);
}

// Issue case 2: "lock in prepare, unlock in the child handler". The child's thread is not the
// thread that locked, so the child handler's unlock is refused (EPERM) for both mutexes; the
// private one is re-made in the child (as documented), the shared one is the parent's to
// unlock (in its parent handler). The same whichever handler was registered first.
int prepare_lock_child_unlock(bool lockstep_used_first) {
  lockstep::test::shared_object<shared> s;
  g_shared = &*s;
  if (lockstep_used_first) {
    g_private.lock();
    g_private.unlock();
  }
  ::pthread_atfork(
      [] {
        g_private.lock();
        g_shared->m.lock();
      },
      [] {
        g_shared->m.unlock();
        g_private.unlock();
      },
      [] {
        g_child_unlock_private = g_private.unlock_checked().value();
        g_child_unlock_shared = g_shared->m.unlock_checked().value();
        std::construct_at(&g_private);  // the documented way: a fresh mutex in the child
      });
  const pid_t child = lockstep::test::fork_child([&] {
    try {
      expect(g_child_unlock_private == EPERM, 10, "child handler: unlock of the private mutex must be EPERM");
      expect(g_child_unlock_shared == EPERM, 11, "child handler: unlock of the shared mutex must be EPERM");
      expect(g_private.try_lock(), 12, "child: the re-made private mutex is free");
      g_private.unlock();
      expect(!s->m.lock_checked(seam::now() + 10s), 13, "child: the shared mutex, once the parent unlocked it");
      expect(s->m.held_by_caller(), 14, "child: held_by_caller()");
      expect(!s->m.unlock_checked(), 15, "child: its own unlock");
      return 0;
    } catch (const failed& f) {
      return f.code;
    }
  });
  expect(!g_private.held_by_caller() && g_private.try_lock(), 1, "parent: the private mutex is free again");
  g_private.unlock();
  const int rc = child_result(child);
  expect(s->m.try_lock(), 2, "parent: the shared mutex is free after the child");
  s->m.unlock();
  return rc;
}

int run_scenario(const std::string& name) {
  try {
    if (name == "prepare_is_first_use") return prepare_is_first_use();
    if (name == "prepare_lock_child_unlock/handler_first") return prepare_lock_child_unlock(false);
    if (name == "prepare_lock_child_unlock/lockstep_first") return prepare_lock_child_unlock(true);
  } catch (const failed& f) {
    return f.code;
  }
  std::fprintf(stderr, "no such scenario: %s\n", name.c_str());
  return 127;
}

// Runs a scenario in a fresh image of this binary; fails the test case unless it passed.
void scenario(const char* name) {
  const auto d = lockstep::test::run_in_child([&] {
    const char* argv[] = {"unit_fork", "--scenario", name, nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(argv));
    return 126;  // exec failed
  });
  INFO("scenario ", std::string(name), ": ", d.status.describe(), "; stderr: ", d.stderr_text);
  CHECK(d.status.ok());
}

}  // namespace

// ----------------------------------------------------------------------------------------------
TEST_SUITE("fork children lock as themselves") {
  TEST_CASE("an atfork prepare handler that is lockstep's first use: the child locks with its own id") {
    scenario("prepare_is_first_use");
  }

  TEST_CASE("lock in prepare, unlock in the child handler: refused alike whichever handler was registered first") {
    scenario("prepare_lock_child_unlock/handler_first");
    scenario("prepare_lock_child_unlock/lockstep_first");
  }

  // Issue case 3: _Fork runs no atfork handlers at all (glibc 2.34+).
  TEST_CASE("_Fork, which runs no atfork handler: the child locks with its own id") {
    const auto d = lockstep::test::run_in_child([] {
      try {
        lockstep::test::shared_object<shared> s;
        s->m.lock();  // the cache holds this thread's id before the fork
        s->m.unlock();
        const pid_t child = ::_Fork();
        if (child < 0) return 8;
        if (child == 0) ::_exit(child_takes_and_holds(*s));
        parent_cannot_touch_childs_lock(*s);
        return child_result(child);
      } catch (const failed& f) {
        return f.code;
      }
    });
    INFO("_Fork: ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
  }

  TEST_CASE("a child forked by a secondary thread that used lockstep locks with its own id") {
    const auto d = lockstep::test::run_in_child([] {
      lockstep::test::shared_object<shared> s;
      int rc = 0;
      std::thread forker([&] {
        try {
          s->m.lock();  // this thread's id, not the main thread's, is in its cache
          s->m.unlock();
          const pid_t child = lockstep::test::fork_child([&] { return child_takes_and_holds(*s); });
          parent_cannot_touch_childs_lock(*s);
          rc = child_result(child);
        } catch (const failed& f) {
          rc = f.code;
        }
      });
      forker.join();
      return rc;
    });
    INFO("secondary thread: ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
  }

  TEST_CASE("thread_id() is the caller's gettid() in the parent, in a child, and in its grandchild") {
    CHECK(seam::thread_id() == gettid_now());
    const auto d = lockstep::test::run_in_child([] {
      if (seam::thread_id() != gettid_now()) return 1;
      const pid_t grandchild = lockstep::test::fork_child([] { return seam::thread_id() == gettid_now() ? 0 : 2; });
      if (!lockstep::test::wait_child(grandchild).ok()) return 3;
      return seam::thread_id() == gettid_now() ? 0 : 4;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
    CHECK(seam::thread_id() == gettid_now());
  }
}

// A fresh image of this binary runs one scenario instead of the tests (see the top).
int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--scenario") == 0) return run_scenario(argv[2]);
  return doctest::Context(argc, argv).run();
}
