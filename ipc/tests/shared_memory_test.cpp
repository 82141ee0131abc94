// ipc/tests/shared_memory_test.cpp: unit tests of <lockstep/ipc/shared_memory.hpp>.
//
// Every name rule, accepted and refused, and that a refused name reaches no system call (a
// seccomp filter in a child makes file system calls fail with a code no check expects);
// create / open / remove and their errors (O_EXCL, missing, permission as an unprivileged user
// in a forked child, a name that is not a regular file); the mode bits on the file; RAII:
// unmapped and no descriptor left.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <lockstep/ipc/shared_memory.hpp>

#include "ipc_support.hpp"

#include <cstring>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <sys/stat.h>
#include <sys/statvfs.h>

using lockstep::ipc::create_only;
using lockstep::ipc::is_valid_name;
using lockstep::ipc::open_only;
using lockstep::ipc::shared_memory;
using lockstep::test::error_of;
using lockstep::test::scoped_name;
using std::errc;

static_assert(!std::is_copy_constructible_v<shared_memory> && std::is_nothrow_move_constructible_v<shared_memory>);
static_assert(is_valid_name("a") && is_valid_name("/a") && !is_valid_name("a/b") && !is_valid_name(""),
              "the name rule is usable at compile time");

namespace {

const std::string body255(255, 'n');
const std::string body256(256, 'n');

std::vector<std::string> accepted_names() {
  return {"a", "/a", "lockstep-demo", "/lockstep-demo", "x.y", ".a", "a.", "...", "-", "with space", "\x7f\x01",
          body255, "/" + body255};
}
// (nullptr is refused too; checked separately, a std::string cannot hold it.)
std::vector<std::string> refused_names() {
  return {"", "/", "//", "//a", "a/b", "/a/b", "a/", "/a/", ".", "/.", "..", "/..", body256, "/" + body256};
}

}  // namespace

TEST_SUITE("names") {
  TEST_CASE("accepted: name and /name, bodies of 1 to 255 bytes without '/', dots other than . and ..") {
    for (const auto& n : accepted_names()) {
      INFO("name \"", n, "\"");
      CHECK(is_valid_name(n.c_str()));
    }
  }

  TEST_CASE("refused: empty, inner or extra '/', . and .., bodies over 255 bytes, nullptr") {
    CHECK_FALSE(is_valid_name(nullptr));
    for (const auto& n : refused_names()) {
      INFO("name \"", n, "\"");
      CHECK_FALSE(is_valid_name(n.c_str()));
    }
  }

  TEST_CASE("a refused name is errc::invalid_argument from create, open and remove, and creates nothing") {
    for (const auto& n : refused_names()) {
      INFO("name \"", n, "\"");
      CHECK(error_of([&] { shared_memory m(create_only, n.c_str(), 64); }) == errc::invalid_argument);
      CHECK(error_of([&] { shared_memory m(open_only, n.c_str()); }) == errc::invalid_argument);
      CHECK(shared_memory::remove_checked(n.c_str()) == errc::invalid_argument);
      CHECK_FALSE(shared_memory::remove(n.c_str()));
    }
    CHECK(error_of([] { shared_memory m(create_only, nullptr, 64); }) == errc::invalid_argument);
    CHECK(error_of([] { shared_memory m(open_only, nullptr); }) == errc::invalid_argument);
    CHECK(shared_memory::remove_checked(nullptr) == errc::invalid_argument);
    // "//x" would be /dev/shm/x to glibc (it strips every leading '/'): it must not appear.
    scoped_name x("strip");
    const std::string doubled = std::string("//") + x.c_str();
    CHECK(error_of([&] { shared_memory m(create_only, doubled.c_str(), 64); }) == errc::invalid_argument);
    CHECK_FALSE(x.exists());
  }

  TEST_CASE("a refused name is refused before any system call (file system calls fail in the child)") {
    constexpr int marker = EHWPOISON;  // no shared-memory call reports this by itself
    scoped_name good("seccomp");
    const auto d = lockstep::test::run_in_child([&]() -> int {
      if (!lockstep::test::fail_file_syscalls(marker)) return 100;
      int check = 0;
      for (const auto& n : refused_names()) {
        ++check;
        if (error_of([&] { shared_memory m(create_only, n.c_str(), 64); }) != errc::invalid_argument) return check;
        if (error_of([&] { shared_memory m(open_only, n.c_str()); }) != errc::invalid_argument) return 30 + check;
        if (shared_memory::remove_checked(n.c_str()) != errc::invalid_argument) return 60 + check;
      }
      // The control: a valid name does reach the kernel, and the filter answers it.
      if (error_of([&] { shared_memory m(create_only, good.c_str(), 64); }).value() != marker) return 101;
      if (shared_memory::remove_checked(good.c_str()).value() != marker) return 102;
      return 0;
    });
    INFO("child ", d.status.describe(), " (1-99: refused name k made a system call; 101/102: the filter let a valid "
         "name through); stderr: ", d.stderr_text);
    CHECK(d.status.ok());
    CHECK_FALSE(good.exists());
  }

  TEST_CASE("\"name\" and \"/name\" are the same segment, /dev/shm/name") {
    scoped_name n("forms");
    const std::string slashed = std::string("/") + n.c_str();
    shared_memory a(create_only, n.c_str(), 64);
    CHECK(n.exists());
    shared_memory b(open_only, slashed.c_str());
    a.data()[5] = std::byte{42};
    CHECK(b.data()[5] == std::byte{42});
    CHECK(shared_memory::remove(slashed.c_str()));
    CHECK_FALSE(n.exists());
  }

  TEST_CASE("a 255-byte name works end to end: the limit is the file system's") {
    std::string exact = "lockstep-test-" + std::to_string(::getpid()) + "-long-";
    exact.resize(255, 'x');
    shared_memory::remove(exact.c_str());
    {
      shared_memory a(create_only, exact.c_str(), 64);
      shared_memory b(open_only, exact.c_str());
      CHECK(b.size() == 64);
    }
    CHECK(shared_memory::remove(exact.c_str()));
  }
}

TEST_SUITE("segments") {
  TEST_CASE("create: exactly size bytes, zero-filled, shared with every other mapping of the name") {
    scoped_name n("create");
    shared_memory a(create_only, n.c_str(), 10000);
    REQUIRE(a.data() != nullptr);
    CHECK(a.size() == 10000);
    CHECK(stat_of(n).st_size == 10000);
    bool zero = true;
    for (std::size_t i = 0; i < a.size(); ++i) zero = zero && a.data()[i] == std::byte{0};
    CHECK(zero);
    shared_memory b(open_only, n.c_str());
    CHECK(b.size() == 10000);
    CHECK(b.data() != a.data());  // two mappings, one memory
    std::memcpy(a.data() + 9990, "0123456789", 10);
    CHECK(std::memcmp(b.data() + 9990, "0123456789", 10) == 0);
  }

  TEST_CASE("create_only refuses an existing name (O_EXCL) and leaves it untouched") {
    scoped_name n("excl");
    shared_memory a(create_only, n.c_str(), 64);
    a.data()[0] = std::byte{7};
    CHECK(error_of([&] { shared_memory b(create_only, n.c_str(), 128); }) == errc::file_exists);
    CHECK(stat_of(n).st_size == 64);
    CHECK(a.data()[0] == std::byte{7});
  }

  TEST_CASE("mode: 0600 by default; another mode exactly as given, whatever the umask") {
    scoped_name d("mode-default");
    shared_memory a(create_only, d.c_str(), 64);
    CHECK(S_ISREG(stat_of(d).st_mode));
    CHECK((stat_of(d).st_mode & 07777) == 0600);

    scoped_name g("mode-group");
    const mode_t old = ::umask(077);
    shared_memory b(create_only, g.c_str(), 64, 0640);
    ::umask(old);
    CHECK((stat_of(g).st_mode & 07777) == 0640);
  }

  TEST_CASE("bad size or mode: errc::invalid_argument, nothing created") {
    scoped_name n("bad-args");
    CHECK(error_of([&] { shared_memory m(create_only, n.c_str(), 0); }) == errc::invalid_argument);
    CHECK(error_of([&] { shared_memory m(create_only, n.c_str(), ~std::size_t{0}); }) == errc::invalid_argument);
    CHECK(error_of([&] { shared_memory m(create_only, n.c_str(), 64, 04600); }) == errc::invalid_argument);
    CHECK(error_of([&] { shared_memory m(create_only, n.c_str(), 64, 01777); }) == errc::invalid_argument);
    CHECK_FALSE(n.exists());
  }

  TEST_CASE("a size beyond the file system: an error at creation (not SIGBUS later), and the name removed") {
    scoped_name n("too-big");
    constexpr std::size_t huge = std::size_t{1} << 44;  // 16 TiB
    struct statvfs fs {};
    REQUIRE(::statvfs("/dev/shm", &fs) == 0);
    if (fs.f_blocks == 0 || double(fs.f_blocks) * double(fs.f_frsize) >= double(huge)) {
      MESSAGE("skipped: /dev/shm is not smaller than 16 TiB");
      return;
    }
    const std::error_code ec = error_of([&] { shared_memory m(create_only, n.c_str(), huge); });
    CHECK(ec == errc::no_space_on_device);
    CHECK_FALSE(n.exists());
  }

  TEST_CASE("open_only and remove on a missing name: no_such_file_or_directory") {
    scoped_name n("missing");
    CHECK(error_of([&] { shared_memory m(open_only, n.c_str()); }) == errc::no_such_file_or_directory);
    CHECK_FALSE(shared_memory::remove(n.c_str()));
    CHECK(shared_memory::remove_checked(n.c_str()) == errc::no_such_file_or_directory);
  }

  TEST_CASE("remove: the name goes, mappings keep their memory, a new create makes a new segment") {
    scoped_name n("remove");
    shared_memory a(create_only, n.c_str(), 64);
    a.data()[1] = std::byte{9};
    CHECK(shared_memory::remove(n.c_str()));
    CHECK_FALSE(n.exists());
    CHECK(a.data()[1] == std::byte{9});
    CHECK(error_of([&] { shared_memory m(open_only, n.c_str()); }) == errc::no_such_file_or_directory);
    shared_memory b(create_only, n.c_str(), 64);
    CHECK(b.data()[1] == std::byte{0});
    a.data()[1] = std::byte{3};
    CHECK(b.data()[1] == std::byte{0});
  }

  TEST_CASE("a segment not yet sized opens unmapped: data() == nullptr, size() == 0") {
    scoped_name n("unsized");
    const int fd = ::shm_open(n.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    shared_memory m(open_only, n.c_str());
    CHECK(m.data() == nullptr);
    CHECK(m.size() == 0);
  }

  TEST_CASE("a name that is not a regular file: a directory is refused by glibc, a FIFO as foreign") {
    scoped_name dir("dir");
    REQUIRE(::mkdir(dir.path().c_str(), 0700) == 0);
    // shm_open reports EISDIR as EINVAL.
    CHECK(error_of([&] { shared_memory m(open_only, dir.c_str()); }) == errc::invalid_argument);
    ::rmdir(dir.path().c_str());

    scoped_name fifo("fifo");
    REQUIRE(::mkfifo(fifo.path().c_str(), 0600) == 0);
    CHECK(error_of([&] { shared_memory m(open_only, fifo.c_str()); }) == lockstep::ipc::errc::foreign_segment);
  }

  TEST_CASE("permission: an unprivileged user cannot open a 0400 segment read-write, nor another user's 0600 one") {
    // We run as root, which bypasses permission bits: the checks run in a child that dropped
    // root for good (setresuid).
    REQUIRE(::geteuid() == 0);
    scoped_name own("perm-own");
    scoped_name root_owned("perm-root");
    shared_memory r(create_only, root_owned.c_str(), 64);
    const auto d = lockstep::test::run_in_child([&]() -> int {
      if (!lockstep::test::drop_root()) return 1;
      // Its own segment, created read-only for its owner: creating succeeds (the creator gets
      // the descriptor it asked for), opening read-write does not.
      try {
        shared_memory mine(create_only, own.c_str(), 64, 0400);
      } catch (...) {
        return 2;
      }
      if (error_of([&] { shared_memory m(open_only, own.c_str()); }) != errc::permission_denied) return 3;
      if (error_of([&] { shared_memory m(open_only, root_owned.c_str()); }) != errc::permission_denied) return 4;
      // /dev/shm is sticky: only a file's owner may remove it (the kernel's EPERM, which
      // shm_unlink reports as EACCES).
      if (shared_memory::remove_checked(root_owned.c_str()) != errc::permission_denied) return 5;
      if (!shared_memory::remove(own.c_str())) return 6;
      return 0;
    });
    INFO("child ", d.status.describe(), "; stderr: ", d.stderr_text);
    CHECK(d.status.ok());
    CHECK(root_owned.exists());
    CHECK_FALSE(own.exists());
  }

  TEST_CASE("RAII: the destructor unmaps, and no file descriptor stays open") {
    scoped_name n("raii");
    const int fds = lockstep::test::open_fds();
    const std::byte* p = nullptr;
    std::size_t size = 0;
    {
      shared_memory a(create_only, n.c_str(), 3 * 4096);
      shared_memory b(open_only, n.c_str());
      CHECK(lockstep::test::open_fds() == fds);  // closed once mapped
      p = a.data();
      size = a.size();
      CHECK(lockstep::test::is_mapped(p, size));
    }
    CHECK_FALSE(lockstep::test::is_mapped(p, size));
    CHECK(lockstep::test::open_fds() == fds);
    CHECK(n.exists());  // unmapping does not remove the name
  }

  TEST_CASE("move: the moved-from object is empty; assignment unmaps what the target held") {
    scoped_name n1("move-1");
    scoped_name n2("move-2");
    shared_memory a(create_only, n1.c_str(), 4096);
    std::byte* const pa = a.data();
    shared_memory b(std::move(a));
    CHECK(a.data() == nullptr);
    CHECK(a.size() == 0);
    CHECK(b.data() == pa);
    shared_memory c(create_only, n2.c_str(), 4096);
    std::byte* const pc = c.data();
    c = std::move(b);
    CHECK(c.data() == pa);
    CHECK_FALSE(lockstep::test::is_mapped(pc, 4096));
    CHECK(lockstep::test::is_mapped(pa, 4096));
  }
}
