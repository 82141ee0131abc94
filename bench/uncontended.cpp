// bench/uncontended.cpp: one thread, nobody waiting: lock+unlock of every lock, release+acquire
// of every semaphore. This is the cost a primitive adds to a program that never contends.
#include "peers/locks.hpp"
#include "peers/semaphores.hpp"

#include <lockstep/mutex.hpp>
#include <lockstep/semaphore.hpp>

#include <mutex>
#include <semaphore>

namespace lockstep_bench {
namespace {

template <class Lock>
void lock_unlock(benchmark::State& state) {
  Lock lock;
  for (auto _ : state) {
    lock.lock();
    lock.unlock();
  }
}

template <class Semaphore>
void release_acquire(benchmark::State& state) {
  Semaphore sem(0);
  for (auto _ : state) {
    sem.release();
    sem.acquire();
  }
}

const bool registered = [] {
  add("mutex_uncontended/lockstep::mutex", lock_unlock<lockstep::mutex>);
  add("mutex_uncontended/lockstep::interprocess_mutex", lock_unlock<lockstep::interprocess_mutex>);
  add("mutex_uncontended/floor: CAS + store", lock_unlock<cas_store_floor>);
  add("mutex_uncontended/floor: CAS + CAS", lock_unlock<cas_cas_floor>);
  add("mutex_uncontended/futex mutex, no owner", lock_unlock<unowned_futex>);
  add("mutex_uncontended/TAS spinlock", lock_unlock<tas_spinlock>);
  add("mutex_uncontended/std::mutex", lock_unlock<std::mutex>);
  add("mutex_uncontended/pthread default", lock_unlock<pthread_lock<pthread_kind::normal>>);
  add("mutex_uncontended/pthread adaptive", lock_unlock<pthread_lock<pthread_kind::adaptive>>);
  add("mutex_uncontended/pthread process-shared", lock_unlock<pthread_lock<pthread_kind::process_shared>>);
  add("mutex_uncontended/boost interprocess_mutex", lock_unlock<boost_interprocess_mutex>);

  add("semaphore_uncontended/lockstep::counting_semaphore", release_acquire<lockstep::counting_semaphore<>>);
  add("semaphore_uncontended/lockstep::binary_semaphore", release_acquire<lockstep::binary_semaphore>);
  add("semaphore_uncontended/lockstep::interprocess_binary_semaphore",
      release_acquire<lockstep::interprocess_binary_semaphore>);
  add("semaphore_uncontended/sem_t", release_acquire<posix_semaphore>);
  add("semaphore_uncontended/std::counting_semaphore", release_acquire<std::counting_semaphore<>>);
  add("semaphore_uncontended/std::binary_semaphore", release_acquire<std::binary_semaphore>);
  add("semaphore_uncontended/boost interprocess_semaphore", release_acquire<boost_semaphore>);
  add("semaphore_uncontended/pipe", release_acquire<pipe_channel>);
  return true;
}();

}  // namespace
}  // namespace lockstep_bench

// The fast path as the compiler emits it, kept out of line so tools/bench can disassemble it and
// show that a Release build carries no TSan annotation and no ownership bookkeeping beyond the
// thread-id read and the CASes.
extern "C" [[gnu::noinline]] void lockstep_bench_fast_path(lockstep::mutex& m) {
  m.lock();
  m.unlock();
}
