// ipc/tests/ipc_support.hpp: helpers the ipc unit tests share (on top of primitives/tests'
// support.hpp and death.hpp): names no other run uses, the file behind a name, dropping root in
// a child, a seccomp filter that makes file system calls fail, and how a child process waits.
#pragma once

#include "death.hpp"
#include "support.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace lockstep::test {

// A name no other test, run or helper on this machine uses at the same time (several
// worktrees run their suites at once), removed again when the object ends.
class scoped_name {
 public:
  explicit scoped_name(const char* tag) {
    static std::atomic<int> counter{0};
    name_ = "lockstep-test-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(counter++);
    ::shm_unlink(name_.c_str());
  }
  scoped_name(const scoped_name&) = delete;
  scoped_name& operator=(const scoped_name&) = delete;
  ~scoped_name() { ::shm_unlink(name_.c_str()); }

  const char* c_str() const noexcept { return name_.c_str(); }
  std::string path() const { return "/dev/shm/" + name_; }
  bool exists() const {
    struct stat st {};
    return ::stat(path().c_str(), &st) == 0;
  }

 private:
  std::string name_;
};

// stat(2) of the file behind a name; st_mode == 0 if there is none.
inline struct stat stat_of(const scoped_name& n) {
  struct stat st {};
  if (::stat(n.path().c_str(), &st) != 0) st.st_mode = 0;
  return st;
}

// Whether [p, p + n) is mapped in this process (msync says ENOMEM for an unmapped range).
inline bool is_mapped(const void* p, std::size_t n) {
  return ::msync(const_cast<void*>(p), n, MS_ASYNC) == 0;
}

// How many file descriptors this process has open.
inline int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    --n;  // the directory stream's own
  }
  return n;
}

// The error a call reports as std::system_error, or {} if it did not throw.
template <class Fn>
std::error_code error_of(Fn fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

// An unprivileged user and group for children that drop root ("nobody" on Debian).
inline constexpr uid_t unprivileged_uid = 65534;
inline constexpr gid_t unprivileged_gid = 65534;

// In a child: become the unprivileged user for good (group first, while still allowed).
inline bool drop_root() {
  return ::setresgid(unprivileged_gid, unprivileged_gid, unprivileged_gid) == 0 &&
         ::setresuid(unprivileged_uid, unprivileged_uid, unprivileged_uid) == 0 && ::geteuid() == unprivileged_uid;
}

// In a child: from now on, every system call that opens or unlinks a file fails with `err`
// (a seccomp filter). A name check that runs "before any system call" then still reports its
// own error; one that reaches shm_open or shm_unlink reports `err`.
inline bool fail_file_syscalls(int err) {
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  const std::vector<unsigned> calls = {
      SYS_openat, SYS_unlink, SYS_unlinkat,
#ifdef SYS_open
      SYS_open,
#endif
  };
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto to_deny = static_cast<unsigned char>(calls.size() - i);  // past the later JEQs and the ALLOW
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, calls[i], to_deny, 0));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned(err) & SECCOMP_RET_DATA)));
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// Whether process `pid` is blocked in the futex system call right now (/proc/PID/syscall
// names the call a sleeping task is in). Tests wait for this instead of sleeping a fixed time.
inline bool blocked_in_futex(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  long nr = -1;
  return (in >> nr) && nr == SYS_futex;
}

}  // namespace lockstep::test
