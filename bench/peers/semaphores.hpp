// bench/peers/semaphores.hpp: the semaphores lockstep's are measured against, behind one
// interface: constructed with an initial count, then release() and acquire().
//
// std::counting_semaphore<> and std::binary_semaphore already have that interface and are
// used as they are. Two yardsticks are built here:
//   spin_semaphore  a counter that acquire() busy-polls: never sleeps, never enters the kernel;
//                   the floor for hand-off latency ("two atomics")
//   pipe_channel    one byte through a pipe per release: kernel IPC, for the claim that shared
//                   memory with a futex beats it
#pragma once

#include "common.hpp"

#include <lockstep/seam.hpp>

#include <boost/interprocess/sync/interprocess_semaphore.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <semaphore.h>
#include <unistd.h>

namespace lockstep_bench {

class posix_semaphore {
 public:
  explicit posix_semaphore(unsigned initial) {
    if (::sem_init(&s_, 0, initial) != 0) die("sem_init", errno);
  }
  ~posix_semaphore() { ::sem_destroy(&s_); }
  posix_semaphore(const posix_semaphore&) = delete;
  posix_semaphore& operator=(const posix_semaphore&) = delete;
  void release() noexcept { ::sem_post(&s_); }
  void acquire() noexcept {
    while (::sem_wait(&s_) != 0)
      if (errno != EINTR) die("sem_wait", errno);
  }

 private:
  sem_t s_;
};

class boost_semaphore {
 public:
  explicit boost_semaphore(unsigned initial) : s_(initial) {}
  void release() { s_.post(); }
  void acquire() { s_.wait(); }

 private:
  boost::interprocess::interprocess_semaphore s_;
};

class spin_semaphore {
 public:
  explicit spin_semaphore(unsigned initial) : count_(initial) {}
  void release() noexcept { count_.fetch_add(1, std::memory_order_release); }
  void acquire() noexcept {
    for (;;) {
      std::uint32_t c = count_.load(std::memory_order_relaxed);
      if (c != 0 && count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed))
        return;
      lockstep::seam::spin_pause();
    }
  }

 private:
  std::atomic<std::uint32_t> count_;
};

class pipe_channel {
 public:
  explicit pipe_channel(unsigned initial) {
    if (::pipe(fd_) != 0) die("pipe", errno);
    for (unsigned i = 0; i < initial; ++i) release();
  }
  ~pipe_channel() {
    ::close(fd_[0]);
    ::close(fd_[1]);
  }
  pipe_channel(const pipe_channel&) = delete;
  pipe_channel& operator=(const pipe_channel&) = delete;
  void release() noexcept {
    const char byte = 1;
    while (::write(fd_[1], &byte, 1) != 1)
      if (errno != EINTR) die("write(pipe)", errno);
  }
  void acquire() noexcept {
    char byte;
    while (::read(fd_[0], &byte, 1) != 1)
      if (errno != EINTR) die("read(pipe)", errno);
  }

 private:
  int fd_[2];
};

}  // namespace lockstep_bench
