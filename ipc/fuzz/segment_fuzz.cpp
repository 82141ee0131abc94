// ipc/fuzz/segment_fuzz.cpp: the libFuzzer target for hostile segments (issue 15, "Bad input").
//
// A shared-memory segment is untrusted input (segment.hpp): another process, of another
// program or of none, may write any bytes into it at any time. This target makes the bytes
// come from the fuzzer and drives the real code paths over them: a fresh /dev/shm object
// (one name per process, removed after each input), header validation by the real open path
// (shared_memory + open_segment), then channel / message_queue operations: copying send and
// receive, the zero-copy path (reserve/commit/abandon, receive_in_place/release), the timed
// variants, the attributes. It asserts that every outcome is a result or one of the errors the
// headers document, never a crash, an out-of-bounds access (ASan; guarded_mmap.cpp puts every
// mapping between guard pages and poisons the tail of its last page, so a read one byte past a
// segment is caught), undefined behaviour (UBSan) or a hang.
//
// Input (all little-endian; a short input just ends early):
//   byte 0        flags: bit 0 kind (0 channel, 1 message_queue); bit 1 raw mode
//   raw mode      bytes 1-2: the segment's length L (clipped to what is left), then L bytes: the
//                 WHOLE segment, header included, written into a fresh object; opened with
//                 open_only (a header that fails validation ends the input with its error)
//   template mode byte 1: capacity (1 + b % 16); byte 2: max_msg_size (channel b, queue 1 + b);
//                 the segment is made by the real create_only: a valid header and initial state
//   then          a program of at most 64 operations (op() below): the attacker's patches of
//                 any bytes (header, control block, rings, heap, slots) between the
//                 endpoint's operations, and re-opens (which validate the patched header).
// Template mode gets past validation every time and spends the run on the protocol's checks of
// cursors, indices, sizes and priorities; raw mode fuzzes validation itself (the seeds, from
// make_seeds.cpp, are real segments, so the fuzzer starts from headers that pass).
//
// No hang: every operation is a try (only when the end's lock is free: a try waits for the
// lock by ring.hpp I6, and a lock word naming a tid that nobody will unlock would be forever)
// or has a deadline already due (send_for(0), a past time point); an open waits 0 for `ready`.
// While no patch has been applied the endpoint must also behave exactly like a model queue
// (FIFO for the channel, priority then FIFO for the queue, exact capacity): what a correct
// run loses or reorders is a bug too, not only what it crashes on.
#include <lockstep/ipc/channel.hpp>
#include <lockstep/ipc/message_queue.hpp>
#include <lockstep/ipc/shared_memory.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

namespace ipc = lockstep::ipc;
using namespace std::chrono_literals;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "segment_fuzz: FAILED: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}
void expect(bool ok, const char* what) {
  if (!ok) fail(what);
}

// The errors the headers document for a hostile segment. Open: not ours to read (foreign
// kind or magic), another layout version, a corrupt header, a creator that never published.
// Operations: corrupt_segment (a cursor, index, count, size or priority out of range, or a
// lock word rewritten), resource_deadlock_would_occur (a lock word that names this thread),
// and, from issue 15's robust mutex, owner_dead / state_not_recoverable (a lock word naming a
// dead owner). Anything else (message_size for a well-sized call, invalid_argument, an
// exception that is not std::system_error) is a bug.
bool documented_open_error(const std::error_code& e) {
  return e == ipc::errc::foreign_segment || e == ipc::errc::version_mismatch || e == ipc::errc::corrupt_segment ||
         e == ipc::errc::not_ready;
}
bool documented_op_error(const std::error_code& e) {
  return e == ipc::errc::corrupt_segment || e == std::errc::resource_deadlock_would_occur ||
         e == std::errc::owner_dead || e == std::errc::state_not_recoverable;
}

// Runs fn; a std::system_error must be documented (then false), anything else aborts.
template <class Fn>
bool survives(Fn&& fn, bool (*documented)(const std::error_code&), const char* op) {
  try {
    fn();
    return true;
  } catch (const std::system_error& e) {
    if (!documented(e.code())) fail(std::string(op) + ": undocumented error: " + e.what());
    return false;
  }
}

// The fuzzer's bytes, consumed from the front; zeros once they run out.
class input {
 public:
  input(const std::uint8_t* p, std::size_t n) noexcept : p_(p), n_(n) {}
  bool empty() const noexcept { return n_ == 0; }
  std::size_t left() const noexcept { return n_; }
  std::uint8_t u8() noexcept {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() noexcept { return std::uint16_t(u8() | (u8() << 8)); }
  const std::uint8_t* take(std::size_t& n) noexcept {
    if (n > n_) n = n_;
    const std::uint8_t* r = p_;
    p_ += n;
    n_ -= n;
    return r;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// This process's segment name (several fuzzing processes may run at once: -jobs, -fork).
const char* segment_name() {
  static const std::string name = "lockstep-fuzz-" + std::to_string(::getpid());
  return name.c_str();
}

// Whether a try_* on the end that `m` serializes can run without waiting: the lock is free now
// (nobody else runs on this segment, so it stays free). Through the attacker's mapping.
bool lock_free(lockstep::interprocess_mutex& m) {
  if (!m.try_lock()) return false;
  expect(!m.unlock_checked(), "unlocking the probe's own lock");
  return true;
}

// A message's bytes, from its number: the model compares them.
std::string payload(std::uint32_t seq, std::uint32_t n) {
  std::string s(n, '\0');
  for (std::uint32_t i = 0; i < n; ++i) s[i] = char(seq * 31 + i);
  return s;
}

// One kind's endpoint, its model, and the attacker's view of the same segment.
template <class Endpoint>
struct session {
  using endpoint_type = Endpoint;
  ipc::shared_memory attacker;        // a mapping of the whole segment: patches go here
  std::optional<Endpoint> endpoint;   // the object under test (created or opened)
  bool pristine = true;               // no patch yet: the model must hold
  std::uint32_t next_seq = 0;
  std::size_t max_msg = 0, max_size = 0;

  void adopt(Endpoint&& e) {
    endpoint.emplace(std::move(e));
    max_msg = endpoint->get_max_msg();
    max_size = endpoint->get_max_msg_size();
    expect(max_msg >= 1, "a capacity of 0 passed validation");
  }
  void patch(input& in) {
    if (attacker.size() == 0) return;
    const std::size_t at = in.u16() % attacker.size();
    std::size_t n = 1 + in.u8() % 16;
    const std::uint8_t* bytes = in.take(n);
    if (n > attacker.size() - at) n = attacker.size() - at;
    std::memcpy(attacker.data() + at, bytes, n);
    pristine = false;
  }
};

// --- the channel ---------------------------------------------------------------------------

struct channel_fuzz : session<ipc::channel> {
  std::deque<std::string> model;  // FIFO

  lockstep::ipc::detail::channel_control& control() {
    return *reinterpret_cast<ipc::detail::channel_control*>(attacker.data() + sizeof(ipc::segment_header));
  }

  bool open() {
    return survives([&] { adopt(ipc::channel(ipc::open_only, segment_name(), 0ns)); }, documented_open_error, "open");
  }

  void sent(bool ok, std::string msg) {
    if (!pristine) return;
    expect(ok == (model.size() < max_msg), "channel: a send succeeded on a full channel or failed on one with room");
    if (ok) model.push_back(std::move(msg));
  }
  void received(bool ok, const std::string& msg) {
    if (ok) expect(msg.size() <= max_size, "channel: a received message longer than max_msg_size");
    if (!pristine) return;
    expect(ok == !model.empty(), "channel: a receive failed on a non-empty channel or succeeded on an empty one");
    if (!ok) return;
    expect(msg == model.front(), "channel: not the oldest message, or its bytes changed");
    model.pop_front();
  }

  void op(std::uint8_t code, input& in) {
    ipc::channel& ch = *endpoint;
    switch (code % 10) {
      case 0: patch(in); return;
      case 1: (void)open(); return;
      case 2: {  // copying send: try (lock free) or already-due send_for
        const std::string msg = payload(next_seq++, std::uint32_t(in.u8() % (max_size + 1)));
        bool ok = false;
        if (survives([&] {
              ok = lock_free(control().send_lock) ? ch.try_send(msg.data(), msg.size()) : ch.send_for(msg.data(), msg.size(), 0ns);
            }, documented_op_error, "channel send"))
          sent(ok, msg);
        return;
      }
      case 3: {  // copying receive
        std::vector<char> buf(max_size + 1);
        std::size_t got = 0;
        bool ok = false;
        if (survives([&] {
              ok = lock_free(control().receive_lock) ? ch.try_receive(buf.data(), buf.size(), got)
                                                     : ch.receive_for(buf.data(), buf.size(), got, 0ns);
            }, documented_op_error, "channel receive"))
          received(ok, ok ? std::string(buf.data(), got) : std::string());
        return;
      }
      case 4:
      case 5: {  // zero copy: reserve, write, then commit (4) or abandon (5)
        const bool commit = code % 10 == 4;
        const std::string msg = payload(next_seq++, std::uint32_t(in.u8() % (max_size + 1)));
        bool ok = false;
        if (survives([&] {
              auto r = lock_free(control().send_lock) ? ch.try_reserve()
                                                      : ch.timed_reserve(std::chrono::steady_clock::now() - 1s);
              ok = bool(r);
              if (!ok) return;
              expect(r.buffer().size() == max_size, "channel: a reservation's buffer is not max_msg_size");
              if (!msg.empty()) std::memcpy(r.buffer().data(), msg.data(), msg.size());
              if (commit) r.commit(msg.size());
              else r.abandon();
            }, documented_op_error, "channel reserve"))
          if (commit || !ok) sent(ok, msg);
        return;
      }
      case 6:
      case 7: {  // zero copy: the oldest message in place, released (6) or ended by its destructor (7)
        bool ok = false;
        std::string msg;
        if (survives([&] {
              auto m = lock_free(control().receive_lock) ? ch.try_receive_in_place() : ch.receive_in_place_for(0ns);
              ok = bool(m);
              if (!ok) return;
              expect(m.size() <= max_size, "channel: an in-place message longer than max_msg_size");
              msg.assign(reinterpret_cast<const char*>(m.data().data()), m.data().size());
              if (code % 10 == 6) m.release();
            }, documented_op_error, "channel receive_in_place"))
          received(ok, msg);
        return;
      }
      case 8: {  // attributes
        const std::size_t n = ch.get_num_msg();
        expect(n <= max_msg, "channel: get_num_msg above capacity");
        if (pristine) expect(n == model.size(), "channel: get_num_msg is not the number of messages");
        return;
      }
      case 9: {  // a deadline already past on another clock: one attempt, no sleep
        const std::string msg = payload(next_seq++, std::uint32_t(in.u8() % (max_size + 1)));
        const auto past = std::chrono::system_clock::now() - 1h;
        bool ok = false;
        if (lock_free(control().send_lock) &&
            survives([&] { ok = ch.timed_send(msg.data(), msg.size(), past); }, documented_op_error, "channel timed_send"))
          sent(ok, msg);
        return;
      }
    }
  }
};

// --- the message queue ---------------------------------------------------------------------

struct queue_fuzz : session<ipc::message_queue> {
  // Delivery order: priority descending, then send order.
  std::map<std::pair<long, std::uint32_t>, std::string> model;

  lockstep::ipc::detail::mq_control& control() {
    return *reinterpret_cast<ipc::detail::mq_control*>(attacker.data() + sizeof(ipc::segment_header));
  }

  bool open() {
    return survives([&] { adopt(ipc::message_queue(ipc::open_only, segment_name(), 0ns)); }, documented_open_error,
                    "open");
  }

  void op(std::uint8_t code, input& in) {
    ipc::message_queue& q = *endpoint;
    switch (code % 6) {
      case 0: patch(in); return;
      case 1: (void)open(); return;
      case 2: {  // send, at a priority from the input (the top bits give high ones too)
        const std::uint32_t seq = next_seq++;
        const std::string msg = payload(seq, std::uint32_t(in.u8() % (max_size + 1)));
        const unsigned prio = in.u16() % ipc::mq_prio_max;
        bool ok = false;
        if (!survives([&] {
              ok = lock_free(control().send_lock) ? q.try_send(msg.data(), msg.size(), prio)
                                                  : q.send_for(msg.data(), msg.size(), prio, 0ns);
            }, documented_op_error, "queue send"))
          return;
        if (!pristine) return;
        expect(ok == (model.size() < max_msg), "queue: a send succeeded on a full queue or failed on one with room");
        if (ok) model.emplace(std::pair{-long(prio), seq}, msg);
        return;
      }
      case 3: {  // receive
        std::vector<char> buf(max_size);
        std::size_t got = 0;
        unsigned prio = 0;
        bool ok = false;
        if (!survives([&] {
              ok = lock_free(control().receive_lock) ? q.try_receive(buf.data(), buf.size(), got, prio)
                                                     : q.receive_for(buf.data(), buf.size(), got, prio, 0ns);
            }, documented_op_error, "queue receive"))
          return;
        if (ok) expect(got <= max_size && prio < ipc::mq_prio_max, "queue: a received size or priority out of range");
        if (!pristine) return;
        expect(ok == !model.empty(), "queue: a receive failed on a non-empty queue or succeeded on an empty one");
        if (!ok) return;
        const auto first = model.begin();
        expect(long(prio) == -first->first.first && std::string(buf.data(), got) == first->second,
               "queue: not the first message by priority, then FIFO");
        model.erase(first);
        return;
      }
      case 4: {  // attributes and inspection
        expect(q.get_num_msg() <= max_msg, "queue: get_num_msg above capacity");
        if (pristine) expect(q.get_num_msg() == model.size(), "queue: get_num_msg is not the number of messages");
        std::map<unsigned, std::size_t> counts;
        // A due deadline: one attempt at the lock; timed_out is this call's documented answer.
        const bool ok = survives([&] { counts = q.priority_counts(0ns); },
                                 [](const std::error_code& e) { return documented_op_error(e) || e == std::errc::timed_out; },
                                 "queue priority_counts");
        if (ok && pristine) {
          std::size_t n = 0;
          for (const auto& [p, c] : counts) n += c;
          expect(n == model.size(), "queue: priority_counts does not add up to the messages queued");
        }
        return;
      }
      case 5: {  // a receive with a deadline already past on another clock
        std::vector<char> buf(max_size);
        std::size_t got = 0;
        unsigned prio = 0;
        if (lock_free(control().receive_lock))
          (void)survives([&] {
            if (q.timed_receive(buf.data(), buf.size(), got, prio, std::chrono::system_clock::now() - 1h)) {
              expect(got <= max_size && prio < ipc::mq_prio_max, "queue: a received size or priority out of range");
              if (pristine) {
                expect(!model.empty() && std::string(buf.data(), got) == model.begin()->second, "queue: wrong message");
                model.erase(model.begin());
              }
            } else if (pristine) {
              expect(model.empty(), "queue: a past-deadline receive failed on a non-empty queue");
            }
          }, documented_op_error, "queue timed_receive");
        return;
      }
    }
  }
};

// Creates the segment for this input: raw bytes (the whole segment) or a valid one by the real
// create path. false: nothing to run (an empty raw segment; the unit tests cover size 0).
template <class Fuzz>
bool make_segment(Fuzz& f, bool raw, input& in, bool queue) {
  if (raw) {
    std::size_t n = in.u16();
    const std::uint8_t* bytes = in.take(n);
    if (n == 0) return false;
    f.attacker = ipc::shared_memory(ipc::create_only, segment_name(), n);
    std::memcpy(f.attacker.data(), bytes, n);
    f.pristine = false;  // the model does not know what the bytes hold
    return f.open();
  }
  const std::size_t capacity = 1 + in.u8() % 16;
  const std::size_t size = std::size_t(in.u8()) + (queue ? 1 : 0);  // a queue's messages hold >= 1 byte
  f.adopt(typename Fuzz::endpoint_type(ipc::create_only, segment_name(), capacity, size));
  f.attacker = ipc::shared_memory(ipc::open_only, segment_name());
  return true;
}

template <class Fuzz>
void run(bool raw, input& in, bool queue) {
  Fuzz f;
  if (!make_segment(f, raw, in, queue)) return;
  for (int i = 0; i < 64 && !in.empty(); ++i) f.op(in.u8(), in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  input in(data, size);
  const std::uint8_t flags = in.u8();
  const bool queue = (flags & 1) != 0;
  const bool raw = (flags & 2) != 0;
  (void)ipc::shared_memory::remove(segment_name());  // a previous run's, if it died
  if (queue) run<queue_fuzz>(raw, in, true);
  else run<channel_fuzz>(raw, in, false);
  (void)ipc::shared_memory::remove(segment_name());
  return 0;
}
