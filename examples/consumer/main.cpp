// The README's example, built against the installed package.
#include <lockstep/mutex.hpp>

#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

int main() {
  lockstep::mutex m;  // drop-in Lockable: lock_guard, scoped_lock, condition_variable_any
  long total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        std::lock_guard guard(m);
        ++total;
      }
    });
  for (auto& t : threads) t.join();

  // Only the owner may unlock: a non-owner gets an error, and the lock is unchanged.
  m.lock();
  std::error_code ec;
  std::thread([&] { ec = m.unlock_checked(); }).join();
  m.unlock();

  std::printf("total=%ld, non-owner unlock: %s\n", total, ec.message().c_str());
  return total == 400000 && ec == std::errc::operation_not_permitted ? 0 : 1;
}
