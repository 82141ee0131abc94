// The README's examples, built against the installed package: lockstep::primitives and
// lockstep::ipc.
#include <lockstep/ipc/channel.hpp>
#include <lockstep/mutex.hpp>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

// A channel between two threads (processes work the same way, each opening the name).
static bool channel_round_trip() {
  const std::string name = "lockstep-consumer-" + std::to_string(::getpid());
  lockstep::ipc::channel::remove(name.c_str());
  lockstep::ipc::channel tx(lockstep::ipc::create_only, name.c_str(), 16, 64);
  lockstep::ipc::channel rx(lockstep::ipc::open_only, name.c_str());
  std::thread sender([&] {
    for (int i = 0; i < 1000; ++i) tx.send(&i, sizeof i);
  });
  bool in_order = true;
  for (int i = 0; i < 1000; ++i) {
    char buf[64];  // a receive buffer holds the largest message (POSIX mq_receive's rule)
    std::size_t n = 0;
    rx.receive(buf, sizeof buf, n);
    int got = -1;
    std::memcpy(&got, buf, sizeof got);
    in_order = in_order && got == i && n == sizeof got;
  }
  sender.join();
  lockstep::ipc::channel::remove(name.c_str());
  return in_order;
}

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

  const bool channel_ok = channel_round_trip();
  std::printf("total=%ld, non-owner unlock: %s, channel: %s\n", total, ec.message().c_str(),
              channel_ok ? "1000 messages in order" : "FAILED");
  return total == 400000 && ec == std::errc::operation_not_permitted && channel_ok ? 0 : 1;
}
