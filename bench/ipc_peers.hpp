// bench/ipc_peers.hpp: every way two processes on one Linux machine pass messages, behind
// ipc_common.hpp's peer calls, for bench/ipc_bench.cpp:
//
//   pipe                        pipe(2): write / read, the kernel's default 64 KiB buffer
//   socketpair stream           socketpair(AF_UNIX, SOCK_STREAM): write / read loop
//   socketpair seqpacket        socketpair(AF_UNIX, SOCK_SEQPACKET): one write / read per message
//   POSIX mq                    mq_send / mq_receive at depth fs.mqueue.msg_max (never raised)
//   SysV msgq                   msgsnd / msgrcv; the kernel bounds it by kernel.msgmnb bytes
//   boost::interprocess::message_queue
//   textbook shm ring           what the study notes describe: a ring in shared memory guarded by
//                               a process-shared pthread_mutex_t, and two process-shared sem_t
//                               counting free and full slots (sem_wait, lock, copy, unlock, sem_post)
//   lockstep::ipc::channel      send / receive (a copy in, a copy out)
//   lockstep::ipc::channel in place   reserve + commit / receive_in_place + release: the producer
//                               writes every byte into the slot, the consumer reads every cache
//                               line of it where it lies
//   lockstep::ipc::message_queue      send / receive at priority 0 (and mixed priorities, with
//                               POSIX mq and Boost's queue)
//   floor: busy-polled SPSC ring      one producer, one consumer, two atomic cursors, no lock, no
//                               sleep: both sides poll (what no blocking channel can beat)
//
// Every sender sends a message of shape.size bytes prepared once (a pattern, its first 8 bytes
// the sequence number); every receiver copies it out whole (in place: reads each cache line).
// Objects with a name (POSIX mq, SysV msgq, the three shared-memory queues with a name) are
// registered for removal at creation (ipc_common.hpp removals); anonymous ones (pipes, socket
// pairs, MAP_SHARED|MAP_ANONYMOUS rings) vanish with their processes.
#pragma once

#include "ipc_common.hpp"

#include <lockstep/ipc/channel.hpp>
#include <lockstep/ipc/message_queue.hpp>

#include <boost/interprocess/ipc/message_queue.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <unistd.h>

namespace lockstep_bench::ipc {

// A message of `size` bytes: a pattern, its first 8 bytes the sequence number.
class payload {
 public:
  explicit payload(std::size_t size) : bytes_(size, 0x5a) {}
  unsigned char* data() { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  unsigned char* stamp(std::uint64_t seq) {
    std::memcpy(bytes_.data(), &seq, sizeof seq);
    return bytes_.data();
  }
  std::uint64_t seq() const { return read_seq(bytes_.data()); }
  static std::uint64_t read_seq(const void* p) {
    std::uint64_t s;
    std::memcpy(&s, p, sizeof s);
    return s;
  }

 private:
  std::vector<unsigned char> bytes_;
};

// Reads every cache line of a message that stays where it lies (what an in-place consumer
// does at the least), so that the lines really travel to the consumer's CPU.
inline void read_lines(const std::byte* p, std::size_t n) {
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < n; i += 64) x ^= std::to_integer<std::uint64_t>(p[i]);
  benchmark::DoNotOptimize(x);
}

// --- file-descriptor peers: made before the fork, inherited; nothing named --------------------

// Repeats io(offset, left), a read(2) or write(2) of the rest, until all n bytes are done.
template <class Io>
void all_bytes(Io io, std::size_t n, const char* what) {
  for (std::size_t done = 0; done < n;) {
    const ssize_t k = io(done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) die(what, k == 0 ? EPIPE : errno);
    done += std::size_t(k);
  }
}
inline void write_all(int fd, const unsigned char* p, std::size_t n) {
  all_bytes([&](std::size_t at, std::size_t left) { return ::write(fd, p + at, left); }, n, "write");
}
inline void read_all(int fd, unsigned char* p, std::size_t n) {
  all_bytes([&](std::size_t at, std::size_t left) { return ::read(fd, p + at, left); }, n, "read");
}

// Kind: 0 pipe, 1 stream socket pair, 2 seqpacket socket pair. fd[1] is written, fd[0] read.
template <int Kind>
struct fd_peer {
  static constexpr const char* label = Kind == 0 ? "pipe" : Kind == 1 ? "socketpair stream" : "socketpair seqpacket";
  static const char* cannot(const shape&) { return nullptr; }
  static std::string capacity(const shape&) { return Kind == 0 ? "64 KiB (pipe default)" : "net.core.wmem_default"; }
  int fd[2];
  bool owner;
  payload m;
  fd_peer(const std::string&, const shape& s) : owner(true), m(s.size) {
    const int r = Kind == 0 ? ::pipe(fd) : ::socketpair(AF_UNIX, Kind == 1 ? SOCK_STREAM : SOCK_SEQPACKET, 0, fd);
    if (r != 0) die(Kind == 0 ? "pipe" : "socketpair", errno);
  }
  fd_peer(opener, const fd_peer& created) : fd{created.fd[0], created.fd[1]}, owner(false), m(created.m.size()) {}
  fd_peer(const fd_peer&) = delete;
  fd_peer& operator=(const fd_peer&) = delete;
  ~fd_peer() {
    if (owner) {
      ::close(fd[0]);
      ::close(fd[1]);
    }
  }
  void send(std::uint64_t seq) { write_all(fd[1], m.stamp(seq), m.size()); }
  std::uint64_t receive() {
    if constexpr (Kind == 2) {  // one message per read: a short one is an error, not a partial
      if (::read(fd[0], m.data(), m.size()) != static_cast<ssize_t>(m.size())) die("read(seqpacket)", errno);
    } else {
      read_all(fd[0], m.data(), m.size());
    }
    return m.seq();
  }
};

// --- POSIX mq ----------------------------------------------------------------------------------

inline int unlink_mq(const char* name) { return ::mq_unlink(name); }

struct posix_mq_peer {
  static constexpr const char* label = "POSIX mq";
  static const char* cannot(const shape& s) {
    if (long(s.size) > kernel_limit("/proc/sys/fs/mqueue/msgsize_max", 8192))
      return "message above fs.mqueue.msgsize_max";
    return nullptr;
  }
  static std::string capacity(const shape& s) { return std::to_string(s.depth) + " messages (fs.mqueue.msg_max)"; }
  std::string name;
  mqd_t q;
  bool owner;
  payload m;
  posix_mq_peer(const std::string& n, const shape& s) : name("/" + n), owner(true), m(s.size) {
    ::mq_unlink(name.c_str());
    mq_attr a{};
    a.mq_maxmsg = s.depth;
    a.mq_msgsize = long(s.size);
    q = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    if (q == static_cast<mqd_t>(-1)) die("mq_open(O_CREAT)", errno);
    removals::add(unlink_mq, name);
  }
  posix_mq_peer(opener, const posix_mq_peer& created) : name(created.name), owner(false), m(created.m.size()) {
    q = ::mq_open(name.c_str(), O_RDWR);
    if (q == static_cast<mqd_t>(-1)) die("mq_open", errno);
  }
  posix_mq_peer(const posix_mq_peer&) = delete;
  posix_mq_peer& operator=(const posix_mq_peer&) = delete;
  ~posix_mq_peer() {
    ::mq_close(q);
    if (owner) removals::remove(name);
  }
  void send(std::uint64_t seq, unsigned prio = 0) {
    if (::mq_send(q, reinterpret_cast<const char*>(m.stamp(seq)), m.size(), prio) != 0) die("mq_send", errno);
  }
  std::uint64_t receive() {
    if (::mq_receive(q, reinterpret_cast<char*>(m.data()), m.size(), nullptr) != static_cast<ssize_t>(m.size()))
      die("mq_receive", errno);
    return m.seq();
  }
};

// --- SysV msgq ---------------------------------------------------------------------------------

// The removal table holds names: a SysV queue's "name" is its id in decimal. Parsed by hand,
// as strtol is not async-signal-safe.
inline int remove_msgq(const char* id) {
  int v = 0;
  for (const char* p = id; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (*p - '0');
  return ::msgctl(v, IPC_RMID, nullptr);
}

struct sysv_msgq_peer {
  static constexpr const char* label = "SysV msgq";
  static const char* cannot(const shape& s) {
    if (long(s.size) > kernel_limit("/proc/sys/kernel/msgmax", 8192)) return "message above kernel.msgmax";
    return nullptr;
  }
  static std::string capacity(const shape&) {
    return std::to_string(kernel_limit("/proc/sys/kernel/msgmnb", 16384)) + " bytes (kernel.msgmnb)";
  }
  int id;
  bool owner;
  std::vector<unsigned char> buf;  // long mtype, then the message
  sysv_msgq_peer(const std::string&, const shape& s) : owner(true), buf(sizeof(long) + s.size, 0x5a) {
    id = ::msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (id < 0) die("msgget", errno);
    removals::add(remove_msgq, std::to_string(id));
    const long type = 1;
    std::memcpy(buf.data(), &type, sizeof type);
  }
  sysv_msgq_peer(opener, const sysv_msgq_peer& created) : id(created.id), owner(false), buf(created.buf) {}
  sysv_msgq_peer(const sysv_msgq_peer&) = delete;
  sysv_msgq_peer& operator=(const sysv_msgq_peer&) = delete;
  ~sysv_msgq_peer() {
    if (owner) removals::remove(std::to_string(id));
  }
  void send(std::uint64_t seq) {
    std::memcpy(buf.data() + sizeof(long), &seq, sizeof seq);
    while (::msgsnd(id, buf.data(), buf.size() - sizeof(long), 0) != 0)
      if (errno != EINTR) die("msgsnd", errno);
  }
  std::uint64_t receive() {
    ssize_t n;
    while ((n = ::msgrcv(id, buf.data(), buf.size() - sizeof(long), 0, 0)) < 0)
      if (errno != EINTR) die("msgrcv", errno);
    if (std::size_t(n) != buf.size() - sizeof(long)) die("msgrcv: a message of another size", EPROTO);
    return payload::read_seq(buf.data() + sizeof(long));
  }
};

// --- named shared-memory queues: Boost's and lockstep's ----------------------------------------

// Q(create_only, name, depth, size) here (any earlier one of the name removed first, the name
// registered for removal), Q(open_only, name) in the forked process, Q::remove(name) at the end.
template <class Q, class CreateOnly, class OpenOnly>
struct named_queue {
  static const char* cannot(const shape&) { return nullptr; }
  static std::string capacity(const shape& s) { return std::to_string(s.depth) + " messages"; }
  std::string name;
  std::unique_ptr<Q> q;
  bool owner;
  payload m;
  static int unlink(const char* n) { return Q::remove(n) ? 0 : -1; }
  named_queue(const std::string& n, const shape& s) : name(n), owner(true), m(s.size) {
    Q::remove(n.c_str());
    q = std::make_unique<Q>(CreateOnly{}, n.c_str(), s.depth, s.size);
    removals::add(unlink, name);
  }
  named_queue(opener, const named_queue& created)
      : name(created.name), q(std::make_unique<Q>(OpenOnly{}, name.c_str())), owner(false), m(created.m.size()) {}
  named_queue(const named_queue&) = delete;
  named_queue& operator=(const named_queue&) = delete;
  ~named_queue() {
    q.reset();
    if (owner) removals::remove(name);
  }
};

// A queue with Boost's calls (priority 0 unless given).
template <class Q, class CreateOnly, class OpenOnly>
struct priority_queue_peer : named_queue<Q, CreateOnly, OpenOnly> {
  using priority_queue_peer::named_queue::named_queue;
  void send(std::uint64_t seq, unsigned prio = 0) { this->q->send(this->m.stamp(seq), this->m.size(), prio); }
  std::uint64_t receive() {
    typename Q::size_type n = 0;
    unsigned prio = 0;
    this->q->receive(this->m.data(), this->m.size(), n, prio);
    if (n != this->m.size()) die("receive: a message of another size", EPROTO);
    return this->m.seq();
  }
};

struct lockstep_mq_peer
    : priority_queue_peer<lockstep::ipc::message_queue, lockstep::ipc::create_only_t, lockstep::ipc::open_only_t> {
  static constexpr const char* label = "lockstep::ipc::message_queue";
  using priority_queue_peer::priority_queue_peer;
};

struct boost_mq_peer : priority_queue_peer<boost::interprocess::message_queue, boost::interprocess::create_only_t,
                                           boost::interprocess::open_only_t> {
  static constexpr const char* label = "boost::interprocess::message_queue";
  using priority_queue_peer::priority_queue_peer;
};

// The channel, copying (InPlace false) or written and read in place (InPlace true).
template <bool InPlace>
struct channel_peer : named_queue<lockstep::ipc::channel, lockstep::ipc::create_only_t, lockstep::ipc::open_only_t> {
  static constexpr const char* label = InPlace ? "lockstep::ipc::channel in place" : "lockstep::ipc::channel";
  using channel_peer::named_queue::named_queue;
  void send(std::uint64_t seq) {
    if constexpr (InPlace) {
      lockstep::ipc::channel::send_reservation r = q->reserve();
      std::byte* slot = r.buffer().data();
      std::memset(slot, 0x5a, m.size());
      std::memcpy(slot, &seq, sizeof seq);
      r.commit(m.size());
    } else {
      q->send(m.stamp(seq), m.size());
    }
  }
  std::uint64_t receive() {
    if constexpr (InPlace) {
      lockstep::ipc::channel::received_message r = q->receive_in_place();
      if (r.size() != m.size()) die("receive_in_place: a message of another size", EPROTO);
      read_lines(r.data().data(), r.size());
      const std::uint64_t seq = payload::read_seq(r.data().data());
      r.release();
      return seq;
    } else {
      std::size_t n = 0;
      q->receive(m.data(), m.size(), n);
      if (n != m.size()) die("receive: a message of another size", EPROTO);
      return m.seq();
    }
  }
};

// --- anonymous shared-memory rings: the textbook one and the floor -----------------------------

// A MAP_SHARED | MAP_ANONYMOUS mapping made before the fork: both processes see it, nothing has
// a name. Header H at the start, then depth slots of size bytes (64-byte aligned).
template <class H>
struct shared_ring {
  H* h = nullptr;
  unsigned char* slots = nullptr;
  std::size_t bytes = 0, stride = 0;
  long depth = 0;
  bool owner;
  shared_ring(const shape& s) : owner(true) {
    stride = (s.size + 63) / 64 * 64;
    depth = s.depth;
    bytes = (sizeof(H) + 63) / 64 * 64 + stride * std::size_t(depth);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap", errno);
    h = ::new (p) H(depth);
    slots = static_cast<unsigned char*>(p) + (sizeof(H) + 63) / 64 * 64;
  }
  shared_ring(const shared_ring& o, opener) : h(o.h), slots(o.slots), bytes(o.bytes), stride(o.stride), depth(o.depth), owner(false) {}
  shared_ring(const shared_ring&) = delete;
  shared_ring& operator=(const shared_ring&) = delete;
  ~shared_ring() {
    if (owner) {
      h->~H();
      ::munmap(h, bytes);
    }
  }
  unsigned char* slot(std::uint64_t i) { return slots + stride * std::size_t(i % std::uint64_t(depth)); }
};

// The textbook ring's header: one process-shared mutex, a semaphore of free slots, one of full.
struct textbook_header {
  pthread_mutex_t lock;
  sem_t free_slots, full_slots;
  std::uint64_t head = 0, tail = 0;  // under `lock`
  explicit textbook_header(long depth) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (const int e = pthread_mutex_init(&lock, &a)) die("pthread_mutex_init", e);
    pthread_mutexattr_destroy(&a);
    if (sem_init(&free_slots, 1, unsigned(depth)) != 0 || sem_init(&full_slots, 1, 0) != 0) die("sem_init", errno);
  }
  ~textbook_header() {
    sem_destroy(&full_slots);
    sem_destroy(&free_slots);
    pthread_mutex_destroy(&lock);
  }
};

inline void sem_wait_retry(sem_t* s) {
  while (::sem_wait(s) != 0)
    if (errno != EINTR) die("sem_wait", errno);
}

struct textbook_ring_peer {
  static constexpr const char* label = "textbook shm ring (pthread mutex + 2 sem_t)";
  static const char* cannot(const shape&) { return nullptr; }
  static std::string capacity(const shape& s) { return std::to_string(s.depth) + " messages"; }
  shared_ring<textbook_header> r;
  payload m;
  textbook_ring_peer(const std::string&, const shape& s) : r(s), m(s.size) {}
  textbook_ring_peer(opener, const textbook_ring_peer& created) : r(created.r, opener{}), m(created.m.size()) {}
  void send(std::uint64_t seq) {
    sem_wait_retry(&r.h->free_slots);
    pthread_mutex_lock(&r.h->lock);
    std::memcpy(r.slot(r.h->tail++), m.stamp(seq), m.size());
    pthread_mutex_unlock(&r.h->lock);
    ::sem_post(&r.h->full_slots);
  }
  std::uint64_t receive() {
    sem_wait_retry(&r.h->full_slots);
    pthread_mutex_lock(&r.h->lock);
    std::memcpy(m.data(), r.slot(r.h->head++), m.size());
    pthread_mutex_unlock(&r.h->lock);
    ::sem_post(&r.h->free_slots);
    return m.seq();
  }
};

// The floor's header: the two cursors, each on its own cache line.
struct spsc_header {
  alignas(64) std::atomic<std::uint64_t> head{0};  // next to read; written by the consumer
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next to write; written by the producer
  explicit spsc_header(long) {}
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct spsc_floor_peer {
  static constexpr const char* label = "floor: busy-polled SPSC ring";
  static constexpr bool one_producer = true;
  static const char* cannot(const shape&) { return nullptr; }
  static std::string capacity(const shape& s) { return std::to_string(s.depth) + " messages"; }
  shared_ring<spsc_header> r;
  payload m;
  std::uint64_t seen = 0;  // the other side's cursor, as last read (re-read only when it must)
  spsc_floor_peer(const std::string&, const shape& s) : r(s), m(s.size) {}
  spsc_floor_peer(opener, const spsc_floor_peer& created) : r(created.r, opener{}), m(created.m.size()) {}
  void send(std::uint64_t seq) {
    const std::uint64_t t = r.h->tail.load(std::memory_order_relaxed);
    while (t - seen >= std::uint64_t(r.depth)) {  // full: poll the consumer's cursor
      seen = r.h->head.load(std::memory_order_acquire);
      if (t - seen >= std::uint64_t(r.depth)) cpu_relax();
    }
    std::memcpy(r.slot(t), m.stamp(seq), m.size());
    r.h->tail.store(t + 1, std::memory_order_release);
  }
  std::uint64_t receive() {
    const std::uint64_t h = r.h->head.load(std::memory_order_relaxed);
    while (seen == h) {  // empty: poll the producer's cursor
      seen = r.h->tail.load(std::memory_order_acquire);
      if (seen == h) cpu_relax();
    }
    std::memcpy(m.data(), r.slot(h), m.size());
    r.h->head.store(h + 1, std::memory_order_release);
    return m.seq();
  }
};

}  // namespace lockstep_bench::ipc
