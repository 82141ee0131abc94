// lockstep-mq: poke at lockstep message queues from a shell, the way one pokes at /dev/mqueue.
//
//   lockstep-mq create NAME [--max-msgs N] [--msg-size S] [--mode 0600]
//   lockstep-mq send NAME [--priority P] [--timeout D] [--any-owner] [TEXT | -]
//   lockstep-mq receive NAME [--timeout D] [--count N] [--show-priority] [--any-owner]
//   lockstep-mq info NAME [--any-owner]
//   lockstep-mq remove NAME [--any-owner]
//   lockstep-mq list
//
// The usage text below (usage()) is the manual; docs/message-queue.md repeats it. Exit codes,
// for scripts: 0 done; 1 any other error (message on stderr); 2 usage error; 3 timed out (the
// queue stayed full for a send, or fewer than --count messages came); 4 no such queue;
// 5 the name exists (create).
#include <lockstep/ipc/message_queue.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace ipc = lockstep::ipc;

enum exit_code { ok = 0, failed = 1, usage_error = 2, timed_out = 3, no_such_queue = 4, name_exists = 5 };

const char* const usage_text =
    "usage: lockstep-mq COMMAND [ARGS]\n"
    "\n"
    "Lockstep message queues live in /dev/shm (NAME or /NAME: 1-255 bytes, no other '/').\n"
    "\n"
    "  create NAME [--max-msgs N] [--msg-size S] [--mode MODE]\n"
    "      create a queue (O_EXCL) for N messages (default 10) of up to S bytes (default 8192),\n"
    "      permission bits MODE in octal (default 0600)\n"
    "  send NAME [--priority P] [--timeout D] [--any-owner] [TEXT | -]\n"
    "      send TEXT, or all of standard input for '-' or no TEXT, as one message with priority\n"
    "      P (0..32767, default 0); waits while the queue is full, at most D if given\n"
    "  receive NAME [--timeout D] [--count N] [--show-priority] [--any-owner]\n"
    "      receive N messages (default 1), highest priority first, each written to standard\n"
    "      output followed by a newline (preceded by its priority and a tab with\n"
    "      --show-priority); waits for each, at most D in all if given (--timeout 0: only what\n"
    "      is queued now)\n"
    "  info NAME [--any-owner]\n"
    "      attributes, depth and per-priority counts, as 'key: value' lines\n"
    "  remove NAME [--any-owner]\n"
    "      remove the queue's name (only a lockstep message queue); open users keep it\n"
    "  list\n"
    "      lockstep queues and channels in /dev/shm: NAME KIND CAPACITY MAX_MSG_SIZE\n"
    "\n"
    "A queue another user owns is refused (exit 1, permission denied) unless --any-owner\n"
    "is given: its owner can read and rewrite every message.\n"
    "Durations: 2s, 500ms, 100us, 1.5s, 1m; a bare number is seconds.\n"
    "Exit status: 0 done, 1 error, 2 usage error, 3 timed out (queue full / fewer messages\n"
    "than --count), 4 no such queue, 5 name exists.\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "lockstep-mq: %s\n%s", why.c_str(), usage_text);
  std::exit(usage_error);
}

// An error from the library: message and the exit code a script can test.
int report(const char* command, const std::string& name, const std::system_error& e) {
  std::fprintf(stderr, "lockstep-mq: %s %s: %s\n", command, name.c_str(), e.what());
  const std::error_code c = e.code();
  if (c == std::errc::no_such_file_or_directory) return no_such_queue;
  if (c == std::errc::file_exists) return name_exists;
  if (c == ipc::errc::foreign_segment)
    std::fprintf(stderr, "lockstep-mq: %s is not a lockstep message queue\n", name.c_str());
  return failed;
}

// Parsed arguments: the positional ones, and --flag VALUE pairs among the allowed ones.
struct args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
  std::vector<std::string> switches;

  std::optional<std::string> flag(const std::string& f) const {
    for (const auto& [k, v] : flags)
      if (k == f) return v;
    return std::nullopt;
  }
  bool has(const std::string& s) const { return std::find(switches.begin(), switches.end(), s) != switches.end(); }
};

args parse(int argc, char** argv, int first, std::initializer_list<const char*> with_value,
           std::initializer_list<const char*> without_value) {
  args a;
  for (int i = first; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      const auto takes = std::find_if(with_value.begin(), with_value.end(), [&](const char* f) { return s == f; });
      if (takes != with_value.end()) {
        if (i + 1 == argc) usage(s + " wants a value");
        a.flags.emplace_back(s, argv[++i]);
        continue;
      }
      if (std::find_if(without_value.begin(), without_value.end(), [&](const char* f) { return s == f; }) !=
          without_value.end()) {
        a.switches.push_back(s);
        continue;
      }
      usage("unknown option '" + s + "'");
    }
    a.positional.push_back(s);
  }
  return a;
}

unsigned long long number(const std::string& flag, const std::string& text, int base, unsigned long long lo,
                          unsigned long long hi) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, base);
  if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi)
    usage(flag + " wants a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" + text +
          "'");
  return v;
}

std::chrono::nanoseconds duration(const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit = end;
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ns") scale = 1;
  else if (unit == "m") scale = 60e9;
  if (text.empty() || end == text.c_str() || errno != 0 || !(v >= 0) || scale == 0 || v * scale > 1e18)
    usage("--timeout wants a duration such as 2s, 500ms or 0, not '" + text + "'");
  return std::chrono::nanoseconds(static_cast<long long>(v * scale));
}

// Opens the queue NAME; another user's only with --any-owner (shared_memory.hpp any_owner_t).
ipc::message_queue open_queue(const args& a, const std::string& name) {
  if (a.has("--any-owner")) return ipc::message_queue(ipc::open_only, name.c_str(), ipc::any_owner);
  return ipc::message_queue(ipc::open_only, name.c_str());
}

const std::string& the_name(const args& a, const char* command) {
  if (a.positional.empty()) usage(std::string(command) + " wants a queue NAME");
  return a.positional[0];
}

int cmd_create(const args& a) {
  const std::string& name = the_name(a, "create");
  if (a.positional.size() > 1) usage("create takes one NAME");
  const auto msgs = number("--max-msgs", a.flag("--max-msgs").value_or("10"), 10, 1, ipc::mq_max_num_msg);
  const auto size = number("--msg-size", a.flag("--msg-size").value_or("8192"), 10, 1, ipc::mq_max_msg_size);
  const auto mode = number("--mode", a.flag("--mode").value_or("0600"), 8, 0, 0777);
  try {
    ipc::message_queue q(ipc::create_only, name.c_str(), msgs, size, static_cast<mode_t>(mode));
  } catch (const std::system_error& e) {
    return report("create", name, e);
  }
  return ok;
}

int cmd_send(const args& a) {
  const std::string& name = the_name(a, "send");
  if (a.positional.size() > 2) usage("send takes NAME and one TEXT (quote it, or use -)");
  const auto prio = number("--priority", a.flag("--priority").value_or("0"), 10, 0, ipc::mq_prio_max - 1);
  std::string text;
  if (a.positional.size() == 1 || a.positional[1] == "-")
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  else
    text = a.positional[1];
  try {
    ipc::message_queue q = open_queue(a, name);
    if (const auto t = a.flag("--timeout")) {
      if (!q.send_for(text.data(), text.size(), static_cast<unsigned>(prio), duration(*t))) {
        std::fprintf(stderr, "lockstep-mq: send %s: the queue stayed full for %s\n", name.c_str(), t->c_str());
        return timed_out;
      }
    } else {
      q.send(text.data(), text.size(), static_cast<unsigned>(prio));
    }
  } catch (const std::system_error& e) {
    return report("send", name, e);
  }
  return ok;
}

int cmd_receive(const args& a) {
  const std::string& name = the_name(a, "receive");
  if (a.positional.size() > 1) usage("receive takes one NAME");
  const auto count = number("--count", a.flag("--count").value_or("1"), 10, 1, 1ull << 40);
  const auto t = a.flag("--timeout");
  // No --timeout: wait forever (a deadline that never comes).
  const auto deadline = t ? std::chrono::steady_clock::now() + duration(*t) : std::chrono::steady_clock::time_point::max();
  try {
    ipc::message_queue q = open_queue(a, name);
    std::vector<char> buf(q.get_max_msg_size());
    for (unsigned long long i = 0; i < count; ++i) {
      std::size_t n = 0;
      unsigned p = 0;
      if (t) {
        if (!q.timed_receive(buf.data(), buf.size(), n, p, deadline)) {
          std::fprintf(stderr, "lockstep-mq: receive %s: %llu of %llu messages before the timeout\n", name.c_str(),
                       i, count);
          return timed_out;
        }
      } else {
        q.receive(buf.data(), buf.size(), n, p);
      }
      if (a.has("--show-priority")) std::printf("%u\t", p);
      std::fwrite(buf.data(), 1, n, stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
  } catch (const std::system_error& e) {
    return report("receive", name, e);
  }
  return ok;
}

int cmd_info(const args& a) {
  const std::string& name = the_name(a, "info");
  if (a.positional.size() > 1) usage("info takes one NAME");
  try {
    ipc::message_queue q = open_queue(a, name);
    const auto counts = q.priority_counts();
    std::string path = "/dev/shm/" + (name[0] == '/' ? name.substr(1) : name);
    struct stat st {};
    (void)::stat(path.c_str(), &st);
    std::printf("name: %s\nkind: message_queue\nmax_msgs: %zu\nmsg_size: %zu\nmessages: %zu\nmode: %04o\nowner: %u\n"
                "bytes: %lld\n",
                name.c_str(), q.get_max_msg(), q.get_max_msg_size(), q.get_num_msg(), st.st_mode & 07777,
                static_cast<unsigned>(st.st_uid), static_cast<long long>(st.st_size));
    for (auto it = counts.rbegin(); it != counts.rend(); ++it) std::printf("priority %u: %zu\n", it->first, it->second);
  } catch (const std::system_error& e) {
    return report("info", name, e);
  }
  return ok;
}

int cmd_remove(const args& a) {
  const std::string& name = the_name(a, "remove");
  if (a.positional.size() > 1) usage("remove takes one NAME");
  try {
    // Only a lockstep message queue: opening it validates the kind.
    ipc::message_queue q = open_queue(a, name);
  } catch (const std::system_error& e) {
    return report("remove", name, e);
  }
  if (const std::error_code ec = ipc::shared_memory::remove_checked(name.c_str())) {
    return report("remove", name, std::system_error(ec, "shm_unlink"));
  }
  return ok;
}

int cmd_list(const args& a) {
  if (!a.positional.empty()) usage("list takes no arguments");
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) {
    std::fprintf(stderr, "lockstep-mq: list: /dev/shm: %s\n", std::strerror(errno));
    return failed;
  }
  std::vector<std::string> lines;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = std::string("/dev/shm/") + e->d_name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;  // not ours to read
    // The header's bytes (segment.hpp's table), read without mapping or locking anything.
    unsigned char h[sizeof(ipc::segment_header)];
    struct stat st {};
    const bool read_ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                         ::pread(fd, h, sizeof h, 0) == static_cast<ssize_t>(sizeof h);
    ::close(fd);
    std::uint64_t magic = 0;
    std::uint32_t kind_word = 0, capacity = 0, max_msg_size = 0;
    std::memcpy(&magic, h + offsetof(ipc::segment_header, magic), sizeof magic);
    std::memcpy(&kind_word, h + offsetof(ipc::segment_header, kind), sizeof kind_word);
    std::memcpy(&capacity, h + offsetof(ipc::segment_header, capacity), sizeof capacity);
    std::memcpy(&max_msg_size, h + offsetof(ipc::segment_header, max_msg_size), sizeof max_msg_size);
    if (!read_ok || magic != ipc::segment_magic) continue;
    const char* kind = kind_word == std::uint32_t(ipc::segment_kind::message_queue) ? "message_queue"
                       : kind_word == std::uint32_t(ipc::segment_kind::channel)     ? "channel"
                                                                                    : "unknown";
    char line[512];
    std::snprintf(line, sizeof line, "%s\t%s\t%u\t%u", e->d_name, kind, capacity, max_msg_size);
    lines.emplace_back(line);
  }
  ::closedir(d);
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("a COMMAND is required");
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(usage_text, stdout);
    return ok;
  }
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0) {
      std::fputs(usage_text, stdout);
      return ok;
    }
  if (cmd == "create") return cmd_create(parse(argc, argv, 2, {"--max-msgs", "--msg-size", "--mode"}, {}));
  if (cmd == "send") return cmd_send(parse(argc, argv, 2, {"--priority", "--timeout"}, {"--any-owner"}));
  if (cmd == "receive") return cmd_receive(parse(argc, argv, 2, {"--timeout", "--count"}, {"--show-priority", "--any-owner"}));
  if (cmd == "info") return cmd_info(parse(argc, argv, 2, {}, {"--any-owner"}));
  if (cmd == "remove") return cmd_remove(parse(argc, argv, 2, {}, {"--any-owner"}));
  if (cmd == "list") return cmd_list(parse(argc, argv, 2, {}, {}));
  usage("unknown command '" + cmd + "'");
}
