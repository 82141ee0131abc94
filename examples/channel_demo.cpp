// examples/channel_demo.cpp: lockstep::ipc::channel between two terminals.
//
//   terminal 1:  channel_demo receive demo            waits, and prints each message as it arrives
//   terminal 2:  channel_demo send demo hello there   one message (the words, joined by spaces)
//                ls | channel_demo send demo          one message per line of standard input
//                channel_demo remove demo             removes the channel when you are done
//
// Both ends open the channel with open_or_create (64 messages of up to 4096 bytes), so either
// may start first; messages sent before the receiver starts wait in the channel, and a sender
// that finds it full waits for the receiver.
#include <lockstep/ipc/channel.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

namespace {

using lockstep::ipc::channel;

constexpr std::size_t max_num_msg = 64;
constexpr std::size_t max_msg_size = 4096;

int usage(std::FILE* to, int rc) {
  std::fprintf(to,
               "usage: channel_demo send NAME [TEXT...]     send TEXT as one message (no TEXT: one per line of stdin)\n"
               "       channel_demo receive NAME [-n COUNT] print messages as they arrive (COUNT of them, or forever)\n"
               "       channel_demo remove NAME             remove the channel\n"
               "NAME is \"name\" or \"/name\": the file /dev/shm/name.\n");
  return rc;
}

int send(const char* name, int argc, char** argv) {
  channel ch(lockstep::ipc::open_or_create, name, max_num_msg, max_msg_size);
  if (argc > 0) {
    std::string text = argv[0];
    for (int i = 1; i < argc; ++i) text.append(" ").append(argv[i]);
    ch.send(text.data(), text.size());
    return 0;
  }
  for (std::string line; std::getline(std::cin, line);) ch.send(line.data(), line.size());
  return 0;
}

int receive(const char* name, long count) {
  channel ch(lockstep::ipc::open_or_create, name, max_num_msg, max_msg_size);
  std::vector<char> buf(ch.get_max_msg_size());
  for (long i = 0; count < 0 || i < count; ++i) {
    std::size_t n = 0;
    ch.receive(buf.data(), buf.size(), n);
    std::fwrite(buf.data(), 1, n, stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  return 0;
}

int remove_channel(const char* name) {
  if (const std::error_code ec = lockstep::ipc::shared_memory::remove_checked(name)) {
    std::fprintf(stderr, "channel_demo: remove \"%s\": %s\n", name, ec.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) return usage(stdout, 0);
  if (argc < 3) return usage(stderr, 2);
  const std::string verb = argv[1];
  const char* name = argv[2];
  try {
    if (verb == "send") return send(name, argc - 3, argv + 3);
    if (verb == "remove" && argc == 3) return remove_channel(name);
    if (verb == "receive" && argc == 3) return receive(name, -1);
    if (verb == "receive" && argc == 5 && std::strcmp(argv[3], "-n") == 0) {
      char* end = nullptr;
      const long count = std::strtol(argv[4], &end, 10);
      if (*argv[4] != '\0' && *end == '\0' && count >= 0) return receive(name, count);
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "channel_demo: %s\n", e.what());
    return 1;
  }
  return usage(stderr, 2);
}
