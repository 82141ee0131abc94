// ipc/tests/security_test.cpp: the security defaults of lockstep's shared memory, for every
// kind (raw shared_memory, channel, message_queue), as issue 15 lists them:
//   - segments are created 0600 (owner read-write only), whatever the umask;
//   - creation is O_EXCL: create_only never opens (or truncates, or re-initializes) an existing
//     name, and open_or_create opens it as it is;
//   - names are validated before any system call (edge cases: the 255/256-byte limit, ".",
//     "..", extra slashes, nullptr);
//   - a segment another user owns is refused (errc::permission_denied, what() names both uids)
//     unless the caller passes any_owner. Tested as root: a forked child becomes uid/gid 65534
//     (setresuid/setresgid), creates the segments with mode 0666 (so the mode bits would allow
//     the open: the refusal is the owner check's) and exits; the parent's opens are refused,
//     and succeed with any_owner. Not root: the test says it is skipped (it cannot make a file
//     of another owner).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/channel.hpp>
#include <lockstep/ipc/message_queue.hpp>
#include <lockstep/ipc/shared_memory.hpp>

#include "ipc_support.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <sys/stat.h>
#include <unistd.h>

namespace ipc = lockstep::ipc;
using ipc::any_owner;
using ipc::channel;
using ipc::create_only;
using ipc::message_queue;
using ipc::open_only;
using ipc::open_or_create;
using ipc::shared_memory;
using lockstep::test::error_of;
using lockstep::test::scoped_name;
using lockstep::test::stat_of;
using std::errc;

namespace {

// The error's text, or "" if fn did not throw.
template <class Fn>
std::string what_of(Fn fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_SUITE("security") {

  TEST_CASE("created 0600 by default, whatever the umask: shared_memory, channel, message_queue") {
    const mode_t old = ::umask(0);  // a umask that would leave 0666 as it is
    scoped_name m("sec-mode-shm"), c("sec-mode-ch"), q("sec-mode-mq"), oc("sec-mode-oc");
    shared_memory sm(create_only, m.c_str(), 64);
    channel ch(create_only, c.c_str(), 1, 8);
    message_queue mq(create_only, q.c_str(), 1, 8);
    channel och(open_or_create, oc.c_str(), 1, 8);
    ::umask(old);
    for (const scoped_name* n : {&m, &c, &q, &oc}) {
      INFO(n->c_str());
      CHECK((stat_of(*n).st_mode & 07777) == 0600);
      CHECK(stat_of(*n).st_uid == ::geteuid());
    }
  }

  TEST_CASE("O_EXCL: create_only on an existing name fails and changes nothing in it") {
    scoped_name n("sec-excl");
    channel a(create_only, n.c_str(), 2, 8);
    REQUIRE(a.try_send("kept", 4));
    CHECK(error_of([&] { channel b(create_only, n.c_str(), 4, 16); }) == errc::file_exists);
    CHECK(error_of([&] { message_queue b(create_only, n.c_str(), 4, 16); }) == errc::file_exists);
    CHECK(error_of([&] { shared_memory b(create_only, n.c_str(), 64); }) == errc::file_exists);
    // Neither re-initialized nor resized: the message is still there, the sizes are the first's.
    channel b(open_only, n.c_str());
    CHECK(b.get_max_msg() == 2);
    CHECK(b.get_num_msg() == 1);
    char buf[8];
    std::size_t got = 0;
    REQUIRE(b.try_receive(buf, sizeof buf, got));
    CHECK(std::string(buf, got) == "kept");
  }

  TEST_CASE("names: the edge cases, refused with invalid_argument for every kind, before any file exists") {
    const std::string b255(255, 'n'), b256(256, 'n');
    const std::string refused[] = {"", "/", "//", "//x", "x/", "/x/", "a/b", ".", "..", "/.", "/..", b256, "/" + b256};
    for (const std::string& s : refused) {
      INFO("name \"", s, "\"");
      CHECK(error_of([&] { shared_memory m(create_only, s.c_str(), 64); }) == errc::invalid_argument);
      CHECK(error_of([&] { channel c(create_only, s.c_str(), 1, 1); }) == errc::invalid_argument);
      CHECK(error_of([&] { message_queue q(create_only, s.c_str(), 1, 1); }) == errc::invalid_argument);
      CHECK(error_of([&] { message_queue q(open_only, s.c_str(), any_owner); }) == errc::invalid_argument);
    }
    CHECK(error_of([&] { channel c(open_only, nullptr, any_owner); }) == errc::invalid_argument);
    // The longest body is fine, and "..." is a name like any other.
    for (const std::string& s : {"/" + b255, std::string("...")}) {
      INFO("name \"", s, "\"");
      channel c(create_only, s.c_str(), 1, 1);
      CHECK(channel::remove(s.c_str()));
    }
  }

  TEST_CASE("another user's segment is refused without any_owner, accepted with it") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: not root, so no file of another owner can be made (run as root to check it)");
      return;
    }
    scoped_name m("sec-owner-shm"), c("sec-owner-ch"), q("sec-owner-mq");
    const auto child = lockstep::test::run_in_child([&]() -> int {
      if (!lockstep::test::drop_root()) return 1;
      try {
        shared_memory sm(create_only, m.c_str(), 64, 0666);
        channel ch(create_only, c.c_str(), 2, 16, 0666);
        message_queue mq(create_only, q.c_str(), 2, 16, 0666);
        if (!ch.try_send("from-65534", 10) || !mq.try_send("prio-3", 6, 3)) return 2;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 3;
      }
      return 0;  // exits: only the files remain, owned by 65534
    });
    INFO("child ", child.status.describe(), "; stderr: ", child.stderr_text);
    REQUIRE(child.status.ok());
    for (const scoped_name* n : {&m, &c, &q}) {
      REQUIRE(stat_of(*n).st_uid == lockstep::test::unprivileged_uid);
      REQUIRE((stat_of(*n).st_mode & 0777) == 0666);  // the mode bits would let anyone in
    }

    // Refused: permission_denied, and what() says whose it is and how to accept it.
    CHECK(error_of([&] { shared_memory x(open_only, m.c_str()); }) == errc::permission_denied);
    CHECK(error_of([&] { channel x(open_only, c.c_str()); }) == errc::permission_denied);
    CHECK(error_of([&] { channel x(open_or_create, c.c_str(), 2, 8); }) == errc::permission_denied);
    CHECK(error_of([&] { message_queue x(open_only, q.c_str()); }) == errc::permission_denied);
    CHECK(error_of([&] { message_queue x(open_or_create, q.c_str(), 2, 8); }) == errc::permission_denied);
    const std::string why = what_of([&] { channel x(open_only, c.c_str()); });
    CHECK(why.find("owned by uid 65534") != std::string::npos);
    CHECK(why.find("effective uid 0") != std::string::npos);
    CHECK(why.find("any_owner") != std::string::npos);

    // Accepted with the opt-in, and fully usable.
    shared_memory sm(open_only, m.c_str(), any_owner);
    CHECK(sm.size() == 64);
    channel ch(open_only, c.c_str(), any_owner);
    char buf[16];
    std::size_t got = 0;
    REQUIRE(ch.try_receive(buf, sizeof buf, got));
    CHECK(std::string(buf, got) == "from-65534");
    channel och(open_or_create, c.c_str(), 2, 8, any_owner);
    CHECK(och.get_max_msg() == 2);
    message_queue mq(open_only, q.c_str(), any_owner);
    unsigned prio = 0;
    REQUIRE(mq.try_receive(buf, sizeof buf, got, prio));
    CHECK(std::string(buf, got) == "prio-3");
    CHECK(prio == 3);
    message_queue omq(open_or_create, q.c_str(), 2, 8, any_owner);
    CHECK(omq.get_max_msg_size() == 16);
  }

  TEST_CASE("own segments need no opt-in: any_owner accepts them too") {
    scoped_name c("sec-own");
    channel a(create_only, c.c_str(), 1, 4);
    channel b(open_only, c.c_str());
    channel d(open_only, c.c_str(), any_owner);
    CHECK(a.try_send("x", 1));
    CHECK(d.get_num_msg() == 1);
  }
}
