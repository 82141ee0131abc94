// ipc/fuzz/make_seeds.cpp: writes the seed corpus of segment_fuzz (ipc/fuzz/corpus, committed):
//   make_seeds DIR
// A few inputs of each kind and mode in segment_fuzz.cpp's input format: template-mode
// programs that use every operation, and raw-mode inputs whose segment is a real one (made by
// create_only, with messages queued and cursors moved off zero) followed by a program. The
// raw seeds are what lets the fuzzer start past header validation in raw mode. Rerun it (and
// commit the result) when the segment layout changes: `build/fuzz/ipc/fuzz/make_seeds ipc/fuzz/corpus`.
#include <lockstep/ipc/channel.hpp>
#include <lockstep/ipc/message_queue.hpp>
#include <lockstep/ipc/shared_memory.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

namespace ipc = lockstep::ipc;
using bytes = std::vector<std::uint8_t>;

// segment_fuzz.cpp's operation codes.
enum channel_op : std::uint8_t { c_patch, c_open, c_send, c_receive, c_commit, c_abandon, c_in_place, c_in_place_drop, c_attrs, c_timed };
enum queue_op : std::uint8_t { q_patch, q_open, q_send, q_receive, q_attrs, q_timed };

void write(const std::string& dir, const char* name, const bytes& b) {
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(b.data(), 1, b.size(), f) != b.size() || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::printf("%s: %zu bytes\n", path.c_str(), b.size());
}

// A raw-mode input: flags, the segment's length and bytes, then `program`.
bytes raw(std::uint8_t kind, const ipc::shared_memory& m, const bytes& program) {
  bytes b{std::uint8_t(kind | 2), std::uint8_t(m.size() & 0xff), std::uint8_t(m.size() >> 8)};
  const auto* p = reinterpret_cast<const std::uint8_t*>(m.data());
  b.insert(b.end(), p, p + m.size());
  b.insert(b.end(), program.begin(), program.end());
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string name = "lockstep-seeds-" + std::to_string(::getpid());

  // Template mode: capacity byte, size byte, program.
  write(dir, "channel-template-ops", {0, 2, 24, c_send, 5, c_send, 24, c_send, 1, c_attrs, c_receive, c_commit, 7,
                                      c_in_place, c_abandon, 3, c_in_place_drop, c_open, c_timed, 4, c_receive,
                                      c_receive, c_attrs});
  write(dir, "channel-template-patch", {0, 3, 16, c_send, 9, c_patch, 128, 0, 3, 0xff, 0xff, 0xff, c_receive, c_send,
                                        2, c_patch, 16, 0, 0, 2, c_open, c_receive});
  write(dir, "queue-template-ops", {1, 3, 31, q_send, 4, 7, 0, q_send, 9, 1, 0, q_send, 0, 7, 0, q_send, 2, 0, 0x80,
                                    q_attrs, q_receive, q_open, q_receive, q_timed, q_receive, q_attrs});
  write(dir, "queue-template-patch", {1, 2, 15, q_send, 3, 1, 0, q_patch, 140, 0, 3, 9, 0, 0, 0, q_receive, q_send, 1,
                                      2, 0, q_patch, 0x40, 0x01, 7, 1, 0, 0, 0, 0, 0, 0, 0, q_receive, q_open});

  // Regression inputs: a slot's size (channel slot 0 at 320; queue slot 0 at 512, its priority
  // at 516) rewritten beyond max_msg_size after the send: the receive must say corrupt_segment
  // (ring.hpp I7, mq_protocol.hpp Q5), not copy 2^31 bytes: without either size check the
  // replay (unit.segment_fuzz_corpus) crashes on its guard page. A priority of 2^31 + ...: the
  // drain's check or the receive's check of the heap top must refuse it (Q5).
  write(dir, "channel-oversize-slot", {0, 0, 16, c_send, 5, c_patch, 0x40, 0x01, 3, 0xff, 0xff, 0xff, 0x7f, c_receive,
                                       c_in_place, c_attrs});
  write(dir, "queue-oversize-slot", {1, 0, 15, q_send, 5, 1, 0, q_patch, 0x00, 0x02, 3, 0xff, 0xff, 0xff, 0x7f,
                                     q_receive, q_attrs, q_patch, 0x00, 0x02, 3, 1, 0, 0, 0, q_receive});
  write(dir, "queue-bad-priority", {1, 0, 15, q_send, 5, 1, 0, q_patch, 0x04, 0x02, 3, 0, 0, 0xff, 0xff, q_receive,
                                    q_attrs});

  // Raw mode: real segments, mid-life (cursors off zero, messages queued).
  {
    ipc::channel ch(ipc::create_only, name.c_str(), 4, 24);
    for (const char* s : {"one", "two", "three"})
      if (!ch.try_send(s, std::strlen(s))) return 1;
    char buf[24];
    std::size_t n = 0;
    if (!ch.try_receive(buf, sizeof buf, n)) return 1;
    ipc::shared_memory m(ipc::open_only, name.c_str());
    write(dir, "channel-raw", raw(0, m, {c_receive, c_send, 6, c_in_place, c_commit, 2, c_attrs, c_receive}));
    ipc::shared_memory::remove(name.c_str());
  }
  {
    ipc::message_queue q(ipc::create_only, name.c_str(), 4, 24);
    const unsigned prio[] = {1, 5, 5};
    for (int i = 0; i < 3; ++i)
      if (!q.try_send("msg", 3, prio[i])) return 1;
    char buf[24];
    std::size_t n = 0;
    unsigned p = 0;
    if (!q.try_receive(buf, sizeof buf, n, p)) return 1;
    ipc::shared_memory m(ipc::open_only, name.c_str());
    write(dir, "queue-raw", raw(1, m, {q_receive, q_send, 4, 2, 0, q_attrs, q_receive, q_timed}));
    ipc::shared_memory::remove(name.c_str());
  }
  return 0;
}
