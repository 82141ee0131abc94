// ipc/tests/mq_differential_test.cpp: the differential test against the kernel. One seeded
// random script of operations runs against a POSIX message queue (mq_open / mq_send /
// mq_receive / mq_timedsend / mq_timedreceive / mq_getattr) and against
// lockstep::ipc::message_queue with the same depth and message size; every observable result
// (done or not, error kind, bytes, size, priority, order, count) must match, step by step.
//
// Depth: the kernel's allowed maximum, read from /proc/sys/fs/mqueue/msg_max (never changed
// here; 10 on a default Linux). The script drifts between filling and draining so that both
// full and empty are hit often. Operations: try sends (priorities from a mix that includes 0
// and 32767, sizes 0..max), blocking and timed sends with a past deadline, oversize sends
// (EMSGSIZE), priorities >= 32768 (EINVAL), try / blocking / timed receives with past
// deadlines, receives with a buffer shorter than the maximum (EMSGSIZE, message stays), and
// the count (mq_getattr's mq_curmsgs).
//
// Seeds: LOCKSTEP_MQ_DIFF_SEEDS (e.g. "1-50" or "7,9") and LOCKSTEP_MQ_DIFF_OPS override the
// defaults (seeds 1-16, 10,000 operations each). A mismatch prints the seed, the step and both
// results; rerun with that seed alone.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/message_queue.hpp>

#include "ipc_support.hpp"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <mqueue.h>
#include <time.h>

using lockstep::ipc::message_queue;
using lockstep::test::scoped_name;
namespace ipc = lockstep::ipc;

namespace {

constexpr std::size_t msg_size = 32;

long kernel_msg_max() {
  std::ifstream in("/proc/sys/fs/mqueue/msg_max");
  long v = 0;
  if (!(in >> v) || v <= 0) v = 10;  // the documented default
  return v;
}

// What one operation did, in terms both sides share.
struct outcome {
  enum kind_t { done, would_block, timed_out, message_size, invalid_argument, other } kind = other;
  int other_errno = 0;
  std::string bytes;      // receives
  unsigned priority = 0;  // receives
  long count = -1;        // count queries

  bool operator==(const outcome&) const = default;
  std::string describe() const {
    static const char* names[] = {"done", "would_block", "timed_out", "message_size", "invalid_argument", "other"};
    std::ostringstream o;
    o << names[kind];
    if (kind == other) o << "(errno " << other_errno << ")";
    if (kind == done && count >= 0) o << " count=" << count;
    if (kind == done && count < 0) o << " size=" << bytes.size() << " priority=" << priority;
    return o.str();
  }
};

outcome done_outcome() {
  outcome r;
  r.kind = outcome::done;
  return r;
}

outcome from_errno(int e) {
  outcome r;
  switch (e) {
    case EAGAIN: r.kind = outcome::would_block; break;
    case ETIMEDOUT: r.kind = outcome::timed_out; break;
    case EMSGSIZE: r.kind = outcome::message_size; break;
    case EINVAL: r.kind = outcome::invalid_argument; break;
    default: r.kind = outcome::other; r.other_errno = e;
  }
  return r;
}

// A try on a full/empty queue is "would_block" on both sides; a timed call that ran out is
// "timed_out" (lockstep's false). Exceptions map through their std::errc.
template <class Fn>
outcome lockstep_call(Fn fn, outcome::kind_t when_false) {
  try {
    outcome r;
    r.kind = fn() ? outcome::done : when_false;
    return r;
  } catch (const std::system_error& e) {
    if (e.code().category() == std::generic_category()) return from_errno(e.code().value());
    outcome r;
    r.other_errno = -e.code().value();
    return r;
  }
}

timespec past() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec -= 1;
  return ts;
}

std::vector<unsigned> parse_seeds() {
  std::vector<unsigned> seeds;
  const char* env = std::getenv("LOCKSTEP_MQ_DIFF_SEEDS");
  if (env == nullptr || *env == '\0') {
    for (unsigned s = 1; s <= 16; ++s) seeds.push_back(s);
    return seeds;
  }
  std::stringstream in(env);
  std::string part;
  while (std::getline(in, part, ',')) {
    const auto dash = part.find('-');
    if (dash == std::string::npos) {
      seeds.push_back(static_cast<unsigned>(std::stoul(part)));
    } else {
      for (unsigned s = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
           s <= static_cast<unsigned>(std::stoul(part.substr(dash + 1))); ++s)
        seeds.push_back(s);
    }
  }
  return seeds;
}

long parse_ops() {
  const char* env = std::getenv("LOCKSTEP_MQ_DIFF_OPS");
  return env != nullptr && *env != '\0' ? std::stol(env) : 10000;
}

struct pair_of_queues {
  std::string posix_name;
  mqd_t nonblocking = -1;
  mqd_t blocking = -1;
  scoped_name name{"mqdiff"};
  message_queue mine;

  explicit pair_of_queues(long depth)
      : posix_name("/lockstep-mqdiff-" + std::to_string(::getpid())),
        mine(ipc::create_only, name.c_str(), static_cast<std::size_t>(depth), msg_size) {
    ::mq_unlink(posix_name.c_str());
    mq_attr attr{};
    attr.mq_maxmsg = depth;
    attr.mq_msgsize = msg_size;
    nonblocking = ::mq_open(posix_name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attr);
    if (nonblocking == static_cast<mqd_t>(-1)) FAIL("mq_open: " << std::strerror(errno));
    blocking = ::mq_open(posix_name.c_str(), O_RDWR);
    if (blocking == static_cast<mqd_t>(-1)) FAIL("mq_open: " << std::strerror(errno));
  }
  ~pair_of_queues() {
    ::mq_close(nonblocking);
    ::mq_close(blocking);
    ::mq_unlink(posix_name.c_str());
  }
};

void run_script(unsigned seed, long ops, long depth) {
  pair_of_queues q(depth);
  std::mt19937 rng(seed);
  auto pick = [&](unsigned n) { return static_cast<unsigned>(rng() % n); };
  static constexpr unsigned priorities[] = {0, 1, 2, 3, 7, 100, 31, 32767};
  long fill_bias = 50;  // percent of operations that send; drifts so full and empty both occur
  char pbuf[256], lbuf[256];
  long full_hits = 0, empty_hits = 0;

  for (long step = 0; step < ops; ++step) {
    if (step % 40 == 0) fill_bias = 20 + pick(61);
    std::string payload(pick(msg_size + 1), '\0');
    for (auto& c : payload) c = static_cast<char>(pick(256));
    unsigned prio = priorities[pick(sizeof priorities / sizeof priorities[0])];
    const unsigned op = pick(100) < fill_bias ? pick(5) : 5 + pick(6);

    outcome posix, ours;
    const char* what = "";
    switch (op) {
      case 0:
      case 1:  // try_send
        what = "try_send";
        posix = ::mq_send(q.nonblocking, payload.data(), payload.size(), prio) == 0 ? done_outcome()
                                                                                     : from_errno(errno);
        ours = lockstep_call([&] { return q.mine.try_send(payload.data(), payload.size(), prio); }, outcome::would_block);
        break;
      case 2: {  // timed send, deadline already passed: ETIMEDOUT when full
        what = "timed_send(past)";
        const timespec ts = past();
        posix = ::mq_timedsend(q.blocking, payload.data(), payload.size(), prio, &ts) == 0 ? done_outcome()
                                                                                             : from_errno(errno);
        ours = lockstep_call(
            [&] {
              return q.mine.timed_send(payload.data(), payload.size(), prio,
                                       std::chrono::system_clock::now() - std::chrono::seconds(1));
            },
            outcome::timed_out);
        break;
      }
      case 3:  // an error: oversize, or a priority out of range; or a blocking send when there is room
        if (pick(2) == 0) {
          what = "send(oversize)";
          payload.assign(msg_size + 1 + pick(8), 'x');
        } else if (pick(2) == 0) {
          what = "send(bad priority)";
          prio = 32768 + pick(1000);
        } else {
          mq_attr a{};
          ::mq_getattr(q.blocking, &a);
          if (a.mq_curmsgs >= depth) continue;  // would block forever on both
          what = "send(blocking)";
        }
        posix = ::mq_send(q.blocking, payload.data(), payload.size(), prio) == 0 ? done_outcome()
                                                                                  : from_errno(errno);
        ours = lockstep_call(
            [&] {
              q.mine.send(payload.data(), payload.size(), prio);
              return true;
            },
            outcome::other);
        break;
      case 4:  // count
        what = "count";
        {
          mq_attr a{};
          if (::mq_getattr(q.blocking, &a) != 0) FAIL("mq_getattr");
          posix.kind = outcome::done;
          posix.count = a.mq_curmsgs;
          ours.kind = outcome::done;
          ours.count = static_cast<long>(q.mine.get_num_msg());
        }
        break;
      default: {  // receives
        unsigned pp = 0, lp = 0;
        std::size_t lsize = 0;
        std::size_t bufsize = msg_size + pick(4) * 16;
        const unsigned form = pick(10);
        if (form == 0) bufsize = pick(msg_size);  // shorter than the maximum: EMSGSIZE, stays queued
        ssize_t n = -1;
        if (form <= 5) {
          what = "try_receive";
          n = ::mq_receive(q.nonblocking, pbuf, bufsize, &pp);
          ours = lockstep_call([&] { return q.mine.try_receive(lbuf, bufsize, lsize, lp); }, outcome::would_block);
        } else if (form <= 7) {
          what = "timed_receive(past)";
          const timespec ts = past();
          n = ::mq_timedreceive(q.blocking, pbuf, bufsize, &pp, &ts);
          ours = lockstep_call(
              [&] {
                return q.mine.timed_receive(lbuf, bufsize, lsize, lp,
                                            std::chrono::system_clock::now() - std::chrono::seconds(1));
              },
              outcome::timed_out);
        } else {
          mq_attr a{};
          ::mq_getattr(q.blocking, &a);
          if (a.mq_curmsgs == 0 && bufsize >= msg_size) continue;  // would block forever on both
          what = "receive(blocking)";
          n = ::mq_receive(q.blocking, pbuf, bufsize, &pp);
          ours = lockstep_call(
              [&] {
                q.mine.receive(lbuf, bufsize, lsize, lp);
                return true;
              },
              outcome::other);
        }
        if (n >= 0) {
          posix.kind = outcome::done;
          posix.bytes.assign(pbuf, static_cast<std::size_t>(n));
          posix.priority = pp;
        } else {
          posix = from_errno(errno);
        }
        if (ours.kind == outcome::done) {
          ours.bytes.assign(lbuf, lsize);
          ours.priority = lp;
        }
        if (posix.kind == outcome::would_block || posix.kind == outcome::timed_out) ++empty_hits;
        break;
      }
    }
    if (op <= 2 && (posix.kind == outcome::would_block || posix.kind == outcome::timed_out)) ++full_hits;
    if (!(posix == ours)) {
      const std::string why = "seed " + std::to_string(seed) + " step " + std::to_string(step) + " " + what +
                              ": POSIX mq " + posix.describe() + ", lockstep " + ours.describe() +
                              (posix.kind == ours.kind && posix.bytes != ours.bytes ? " (bytes differ)" : "") +
                              "\n  rerun: LOCKSTEP_MQ_DIFF_SEEDS=" + std::to_string(seed);
      FAIL(why);
    }
  }
  // The script must have exercised both ends, or it compared little.
  CHECK_MESSAGE(full_hits > 0, "seed " << seed << ": the script never found the queue full");
  CHECK_MESSAGE(empty_hits > 0, "seed " << seed << ": the script never found the queue empty");
  MESSAGE("seed " << seed << ": " << ops << " operations matched at depth " << depth << " (full hit " << full_hits
                  << " times, empty " << empty_hits << ")");
}

}  // namespace

TEST_CASE("differential: lockstep::ipc::message_queue matches POSIX mq on seeded random scripts") {
  const long depth = kernel_msg_max();
  const long ops = parse_ops();
  for (const unsigned seed : parse_seeds()) {
    CAPTURE(seed);
    run_script(seed, ops, depth);
  }
}
