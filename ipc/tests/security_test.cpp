// ipc/tests/security_test.cpp: the security defaults of lockstep's shared memory, for every
// kind (raw shared_memory, channel, message_queue), as issue 15 lists them:
//   - segments are created 0600 (owner read-write only), whatever the umask;
//   - creation is O_EXCL: create_only never opens (or truncates, or re-initializes) an existing
//     name, and ipc::open_or_create opens it as it is;
//   - names are validated before any system call (edge cases: the 255/256-byte limit, ".",
//     "..", extra slashes, nullptr);
//   - a segment another user owns is refused (std::errc::permission_denied, what() names both uids)
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
using namespace lockstep::ipc;  // the kinds, the tags, any_owner (errors are spelled std::errc)
using lockstep::test::error_of;
using lockstep::test::scoped_name;
using lockstep::test::stat_of;

TEST_SUITE("security") {

  TEST_CASE("created 0600 by default, whatever the umask: shared_memory, channel, message_queue") {
    const mode_t old = ::umask(0);  // a umask that would leave 0666 as it is
    scoped_name m("sec-mode-shm"), c("sec-mode-ch"), q("sec-mode-mq"), oc("sec-mode-oc");
    shared_memory sm(ipc::create_only, m.c_str(), 64);
    channel ch(ipc::create_only, c.c_str(), 1, 8);
    message_queue mq(ipc::create_only, q.c_str(), 1, 8);
    channel och(ipc::open_or_create, oc.c_str(), 1, 8);
    ::umask(old);
    for (const scoped_name* n : {&m, &c, &q, &oc}) {
      INFO(n->c_str());
      CHECK((stat_of(*n).st_mode & 07777) == 0600);
      CHECK(stat_of(*n).st_uid == ::geteuid());
    }
  }

  TEST_CASE("O_EXCL: create_only on an existing name fails and changes nothing in it") {
    scoped_name n("sec-excl");
    channel a(ipc::create_only, n.c_str(), 2, 8);
    REQUIRE(a.try_send("kept", 4));
    CHECK(error_of([&] { channel b(ipc::create_only, n.c_str(), 4, 16); }) == std::errc::file_exists);
    CHECK(error_of([&] { message_queue b(ipc::create_only, n.c_str(), 4, 16); }) == std::errc::file_exists);
    CHECK(error_of([&] { shared_memory b(ipc::create_only, n.c_str(), 64); }) == std::errc::file_exists);
    // Neither re-initialized nor resized: the message is still there, the sizes are the first's.
    channel b(ipc::open_only, n.c_str());
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
      CHECK(error_of([&] { shared_memory m(ipc::create_only, s.c_str(), 64); }) == std::errc::invalid_argument);
      CHECK(error_of([&] { channel c(ipc::create_only, s.c_str(), 1, 1); }) == std::errc::invalid_argument);
      CHECK(error_of([&] { message_queue q(ipc::create_only, s.c_str(), 1, 1); }) == std::errc::invalid_argument);
      CHECK(error_of([&] { message_queue q(ipc::open_only, s.c_str(), any_owner); }) == std::errc::invalid_argument);
    }
    CHECK(error_of([&] { channel c(ipc::open_only, nullptr, any_owner); }) == std::errc::invalid_argument);
    // The longest body is fine, and "..." is a name like any other.
    for (const std::string& s : {"/" + b255, std::string("...")}) {
      INFO("name \"", s, "\"");
      channel c(ipc::create_only, s.c_str(), 1, 1);
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
        shared_memory sm(ipc::create_only, m.c_str(), 64, 0666);
        channel ch(ipc::create_only, c.c_str(), 2, 16, 0666);
        message_queue mq(ipc::create_only, q.c_str(), 2, 16, 0666);
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
    CHECK(error_of([&] { shared_memory x(ipc::open_only, m.c_str()); }) == std::errc::permission_denied);
    CHECK(error_of([&] { channel x(ipc::open_only, c.c_str()); }) == std::errc::permission_denied);
    CHECK(error_of([&] { channel x(ipc::open_or_create, c.c_str(), 2, 8); }) == std::errc::permission_denied);
    CHECK(error_of([&] { message_queue x(ipc::open_only, q.c_str()); }) == std::errc::permission_denied);
    CHECK(error_of([&] { message_queue x(ipc::open_or_create, q.c_str(), 2, 8); }) == std::errc::permission_denied);
    std::string why;
    try {
      channel x(ipc::open_only, c.c_str());
    } catch (const std::system_error& e) {
      why = e.what();
    }
    CHECK(why.find("owned by uid 65534") != std::string::npos);
    CHECK(why.find("effective uid 0") != std::string::npos);
    CHECK(why.find("any_owner") != std::string::npos);

    // Accepted with the opt-in, and fully usable.
    shared_memory sm(ipc::open_only, m.c_str(), any_owner);
    CHECK(sm.size() == 64);
    channel ch(ipc::open_only, c.c_str(), any_owner);
    char buf[16];
    std::size_t got = 0;
    REQUIRE(ch.try_receive(buf, sizeof buf, got));
    CHECK(std::string(buf, got) == "from-65534");
    channel och(ipc::open_or_create, c.c_str(), 2, 8, any_owner);
    CHECK(och.get_max_msg() == 2);
    message_queue mq(ipc::open_only, q.c_str(), any_owner);
    unsigned prio = 0;
    REQUIRE(mq.try_receive(buf, sizeof buf, got, prio));
    CHECK(std::string(buf, got) == "prio-3");
    CHECK(prio == 3);
    message_queue omq(ipc::open_or_create, q.c_str(), 2, 8, any_owner);
    CHECK(omq.get_max_msg_size() == 16);
  }

  TEST_CASE("own segments need no opt-in: any_owner accepts them too") {
    scoped_name c("sec-own");
    channel a(ipc::create_only, c.c_str(), 1, 4);
    channel b(ipc::open_only, c.c_str());
    channel d(ipc::open_only, c.c_str(), any_owner);
    CHECK(a.try_send("x", 1));
    CHECK(d.get_num_msg() == 1);
  }
}
