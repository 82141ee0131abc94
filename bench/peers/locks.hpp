// bench/peers/locks.hpp: the locks lockstep::mutex is measured against, behind one interface.
//
// Every type here is default-constructible, non-copyable, and has lock() / unlock(), so one
// benchmark template drives them all. Peers that are not locks in their own right are built here
// only as yardsticks:
//   cas_store_floor   the least any lock can do: one acquire CAS and one release store on a
//                     private word (a CAS spinlock); the uncontended target is stated against it
//   cas_cas_floor     the least a lock that may sleep can do: the same with a CAS as release
//   tas_spinlock      test-and-test-and-set: never sleeps, the floor for hand-off latency
//   unowned_futex     Drepper's "mutex3" (Futexes Are Tricky, 2011): a futex mutex that keeps
//                     no owner; lockstep::mutex minus it is the price of ownership checking
#pragma once

#include "common.hpp"

#include <lockstep/seam.hpp>

#include <boost/interprocess/sync/interprocess_mutex.hpp>

#include <atomic>
#include <cstdint>
#include <pthread.h>

namespace lockstep_bench {

// One acquire CAS; the release is a store (cas_store_floor) or a CAS (cas_cas_floor). The second
// is the least a lock that may sleep must do: its unlock has to learn, in the same atomic step
// that frees the word, whether someone sleeps on it (or that sleeper could be missed), so its
// release is a read-modify-write, not a store.
template <bool RmwRelease>
class cas_floor {
 public:
  void lock() noexcept {
    std::uint32_t expected = 0;
    while (!word_.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      expected = 0;
      lockstep::seam::spin_pause();
    }
  }
  void unlock() noexcept {
    if constexpr (RmwRelease) {
      std::uint32_t expected = 1;
      word_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed);
    } else {
      word_.store(0, std::memory_order_release);
    }
  }

 private:
  std::atomic<std::uint32_t> word_{0};
};
using cas_store_floor = cas_floor<false>;
using cas_cas_floor = cas_floor<true>;

class tas_spinlock {
 public:
  void lock() noexcept {
    // Spin on a plain load so waiters share the line instead of bouncing it with RMWs.
    while (word_.exchange(1, std::memory_order_acquire) != 0)
      while (word_.load(std::memory_order_relaxed) != 0) lockstep::seam::spin_pause();
  }
  void unlock() noexcept { word_.store(0, std::memory_order_release); }

 private:
  std::atomic<std::uint32_t> word_{0};
};

// 0 unlocked, 1 locked, 2 locked and maybe waiters. No spin: it sleeps at the first conflict.
class unowned_futex {
 public:
  void lock() noexcept {
    std::uint32_t c = 0;
    if (word_.compare_exchange_strong(c, 1, order::acquire, order::relaxed)) return;
    if (c != 2) c = word_.exchange(2, order::acquire);
    while (c != 0) {
      lockstep::seam::futex_wait(word_, 2, lockstep::seam::scope::process_private);
      c = word_.exchange(2, order::acquire);
    }
  }
  void unlock() noexcept {
    if (word_.fetch_sub(1, order::release) != 1) {
      word_.store(0, order::release);
      lockstep::seam::futex_wake(word_, 1, lockstep::seam::scope::process_private);
    }
  }

 private:
  using order = lockstep::seam::order;
  lockstep::seam::futex_word word_{0};
};

enum class pthread_kind { normal, adaptive, process_shared };

template <pthread_kind Kind>
class pthread_lock {
 public:
  pthread_lock() {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if constexpr (Kind == pthread_kind::adaptive) pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    if constexpr (Kind == pthread_kind::process_shared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (const int e = pthread_mutex_init(&m_, &a)) die("pthread_mutex_init", e);
    pthread_mutexattr_destroy(&a);
  }
  ~pthread_lock() { pthread_mutex_destroy(&m_); }
  pthread_lock(const pthread_lock&) = delete;
  pthread_lock& operator=(const pthread_lock&) = delete;
  void lock() noexcept { pthread_mutex_lock(&m_); }
  void unlock() noexcept { pthread_mutex_unlock(&m_); }

 private:
  pthread_mutex_t m_;
};

using boost_interprocess_mutex = boost::interprocess::interprocess_mutex;

}  // namespace lockstep_bench
