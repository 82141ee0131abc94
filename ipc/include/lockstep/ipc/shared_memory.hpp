// lockstep/ipc/shared_memory.hpp: named POSIX shared memory: names, the open-mode tags, and
// lockstep::ipc::shared_memory, one mapped segment (shm_open + mmap) with RAII.
//
// This is the one place in lockstep that names, creates, opens, maps and removes shared
// memory; the channel and the message queue both build on it (through segment.hpp). It knows
// nothing of what a segment holds.
//
// Names (the rule both Boost.Interprocess and POSIX users already write):
//   "name" (Boost's form) and "/name" (POSIX's form) both mean /dev/shm/name. The body, `name`,
//   is 1 to 255 bytes (NAME_MAX, the longest file name /dev/shm holds), contains no '/', and is
//   neither "." nor "..". Anything else ("", "/", "//name", "a/b", a 256-byte body, nullptr)
//   is refused with errc::invalid_argument before any system call: glibc would strip extra
//   leading slashes and map "." to the directory itself, so a wrong name would otherwise reach a
//   file it does not name.
//
// Security defaults (docs/fault-tolerance.md): created mode 0600 exactly (fchmod, whatever the
// umask) and O_EXCL; names checked before any system call; an open refuses a segment another
// user owns unless the caller passes any_owner (see any_owner_t).
//
// Errors are std::system_error carrying the POSIX code (std::generic_category, so
// `e.code() == std::errc::file_exists` holds), and the call and name in what():
//   errc::invalid_argument            a bad name, size or mode (before any system call)
//   errc::file_exists                 create_only on a name that exists (O_EXCL)
//   errc::no_such_file_or_directory   open_only on a name that does not exist
//   errc::permission_denied           the caller may not read and write the segment, or (open)
//                                     another user owns it and the caller did not pass any_owner
//   errc::no_space_on_device, ...     whatever else shm_open/posix_fallocate/mmap report
//   ipc::errc::foreign_segment        open_only on a name that is not a regular file
#pragma once

#include <lockstep/ipc/errc.hpp>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace lockstep::ipc {

// How a constructor treats the name, spelled as Boost.Interprocess spells it.
struct create_only_t {
  explicit create_only_t() = default;
};
struct open_only_t {
  explicit open_only_t() = default;
};
struct open_or_create_t {
  explicit open_or_create_t() = default;
};
inline constexpr create_only_t create_only{};        // create; errc::file_exists if the name exists
inline constexpr open_only_t open_only{};            // open; errc::no_such_file_or_directory if it does not
inline constexpr open_or_create_t open_or_create{};  // open if the name exists, else create

// Opt-in, after the name of an open (open_only, open_or_create): accept a segment that another
// user owns. Without it an open refuses, with errc::permission_denied, any segment whose owner
// (the file's st_uid) is not this process's effective uid, even when its permission bits (or
// root) would allow the open: every byte of a segment drives this process (it is untrusted
// input), and whoever owns the file can read every message, rewrite it at any time, and chmod
// it; a name in /dev/shm, which every user may create in, can be taken first by anyone
// ("squatting"). Pass any_owner only for a name whose owner you trust, e.g. a service's user.
// (Boost.Interprocess and POSIX mq have no such check; it is the rule of ssh's and systemd's
// "refuse files owned by someone else".)
struct any_owner_t {
  explicit any_owner_t() = default;
};
inline constexpr any_owner_t any_owner{};

// The longest name body (without the optional leading '/'), in bytes: NAME_MAX.
inline constexpr std::size_t max_name_length = NAME_MAX;

// Whether `name` follows the name rule above. No system call; usable in constant expressions.
[[nodiscard]] constexpr bool is_valid_name(const char* name) noexcept {
  if (name == nullptr) return false;
  if (*name == '/') ++name;
  std::size_t n = 0;
  for (; name[n] != '\0'; ++n)
    if (name[n] == '/' || n == max_name_length) return false;
  if (n == 0) return false;
  return !(name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')));
}

namespace detail {

// A valid name in the form shm_open wants, "/" + body, without allocating.
struct posix_name {
  char text[max_name_length + 2];
};

[[nodiscard]] constexpr bool to_posix_name(const char* name, posix_name& out) noexcept {
  if (!is_valid_name(name)) return false;
  if (*name == '/') ++name;
  out.text[0] = '/';
  std::size_t i = 0;
  for (; name[i] != '\0'; ++i) out.text[i + 1] = name[i];
  out.text[i + 1] = '\0';
  return true;
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_invalid(const char* why, const char* name) {
  throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                          std::string("lockstep::ipc: ") + why + " (name \"" + (name ? name : "(null)") + "\")");
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_errno(int err, const char* call, const char* name) {
  throw std::system_error(err, std::generic_category(), std::string("lockstep::ipc: ") + call + "(\"" + name + "\")");
}

inline const char* bad_name_reason() noexcept {
  return "invalid shared-memory name: want \"name\" or \"/name\", 1-255 bytes, no other '/', not \".\" or \"..\"";
}

}  // namespace detail

// One named shared-memory segment, mapped read-write and MAP_SHARED into this process: every
// process that maps the same name sees the same bytes (at its own address).
//
// Move-only. The destructor unmaps; the file descriptor is closed as soon as the segment is
// mapped (the mapping alone keeps the memory, so an open segment costs no descriptor). The
// segment itself lives until it is removed by name and every mapping of it is gone.
// Thread safety: the object is a value; distinct objects may be used from any threads.
class shared_memory {
 public:
  // An empty object: data() == nullptr, size() == 0.
  shared_memory() noexcept = default;

  // Creates /dev/shm/<name> (O_CREAT | O_EXCL: never an existing segment), exactly `size` bytes,
  // all zero, with permission bits exactly `mode` (fchmod after creation, as Boost does: the
  // caller's umask does not narrow them), and maps it. The memory is allocated up front
  // (posix_fallocate), so a tmpfs too small fails here with errc::no_space_on_device, never
  // later with SIGBUS on first touch. On any failure after shm_open the name is removed again.
  // Errors: errc::invalid_argument for a bad name, size == 0, size beyond off_t, or mode bits
  // outside 0777; errc::file_exists; errc::permission_denied; errc::no_space_on_device; ...
  shared_memory(create_only_t, const char* name, std::size_t size, mode_t mode = 0600) {
    detail::posix_name n{};
    if (!detail::to_posix_name(name, n)) detail::throw_invalid(detail::bad_name_reason(), name);
    if (size == 0 || size > static_cast<std::uintmax_t>(std::numeric_limits<off_t>::max()))
      detail::throw_invalid("segment size must be in [1, the largest off_t]", name);
    if ((mode & ~mode_t{0777}) != 0) detail::throw_invalid("mode has bits outside 0777", name);
    const int fd = ::shm_open(n.text, O_RDWR | O_CREAT | O_EXCL, mode);
    if (fd < 0) detail::throw_errno(errno, "shm_open", n.text);
    int err = 0;
    const char* call = nullptr;
    if (::fchmod(fd, mode) != 0) {
      err = errno;
      call = "fchmod";
    } else if ((err = fallocate_all(fd, size)) != 0) {
      call = "posix_fallocate";
    } else if ((err = map(fd, size)) != 0) {
      call = "mmap";
    }
    ::close(fd);
    if (call != nullptr) {
      ::shm_unlink(n.text);
      detail::throw_errno(err, call, n.text);
    }
  }

  // Opens the existing /dev/shm/<name> read-write and maps all of it, at its current size
  // (fstat). A segment of size 0 (its creator has not sized it yet) is opened but not mapped:
  // data() == nullptr, size() == 0. Only a segment this process's effective uid owns: with
  // any_owner, one of any owner (see any_owner_t; the permission bits still apply).
  // Errors: errc::invalid_argument (bad name), errc::no_such_file_or_directory,
  // errc::permission_denied (the caller may not both read and write it; or, without
  // any_owner, another user owns it: what() names both uids), ipc::errc::foreign_segment
  // (not a regular file), ...
  shared_memory(open_only_t, const char* name) : shared_memory(open_only, name, false) {}
  shared_memory(open_only_t, const char* name, any_owner_t) : shared_memory(open_only, name, true) {}

 private:
  shared_memory(open_only_t, const char* name, bool any_owner) {
    detail::posix_name n{};
    if (!detail::to_posix_name(name, n)) detail::throw_invalid(detail::bad_name_reason(), name);
    const int fd = ::shm_open(n.text, O_RDWR, 0);
    if (fd < 0) detail::throw_errno(errno, "shm_open", n.text);
    struct stat st {};
    int err = 0;
    const char* call = nullptr;
    if (::fstat(fd, &st) != 0) {
      err = errno;
      call = "fstat";
    } else if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw std::system_error(make_error_code(errc::foreign_segment),
                              std::string("lockstep::ipc: \"") + n.text + "\" is not a regular file");
    } else if (!any_owner && st.st_uid != ::geteuid()) {
      // Checked on the descriptor we map (fstat), not on the name: a swap of the file after
      // the check cannot slip another owner's segment in.
      ::close(fd);
      throw std::system_error(std::make_error_code(std::errc::permission_denied),
                              std::string("lockstep::ipc: \"") + n.text + "\" is owned by uid " +
                                  std::to_string(st.st_uid) + ", not by this process's effective uid " +
                                  std::to_string(::geteuid()) + " (open it with any_owner to accept that)");
    } else if (static_cast<std::uintmax_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
      err = EOVERFLOW;
      call = "mmap";
    } else if (st.st_size > 0 && (err = map(fd, static_cast<std::size_t>(st.st_size))) != 0) {
      call = "mmap";
    }
    ::close(fd);
    if (call != nullptr) detail::throw_errno(err, call, n.text);
  }

 public:
  shared_memory(shared_memory&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  shared_memory& operator=(shared_memory&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  shared_memory(const shared_memory&) = delete;
  shared_memory& operator=(const shared_memory&) = delete;
  ~shared_memory() { unmap(); }

  // The mapping: page-aligned, size() bytes, readable and writable; nullptr/0 if empty.
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  // Removes the name (shm_unlink). Processes that have it mapped keep their memory; a later
  // open of the name fails, and a create makes a new segment. Returns true if a segment was
  // removed, false on any failure (no such name, a bad name, no permission), as Boost's
  // remove() does; remove_checked() says which: {} or the POSIX error (errc::invalid_argument
  // for a bad name, before any system call).
  static bool remove(const char* name) noexcept { return !remove_checked(name); }
  [[nodiscard]] static std::error_code remove_checked(const char* name) noexcept {
    detail::posix_name n{};
    if (!detail::to_posix_name(name, n)) return std::make_error_code(std::errc::invalid_argument);
    if (::shm_unlink(n.text) != 0) return {errno, std::generic_category()};
    return {};
  }

 private:
  // Each returns 0 or an errno value.
  static int fallocate_all(int fd, std::size_t size) noexcept {
    int err;
    while ((err = ::posix_fallocate(fd, 0, static_cast<off_t>(size))) == EINTR) {
    }
    return err;
  }
  int map(int fd, std::size_t size) noexcept {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return errno;
    data_ = static_cast<std::byte*>(p);
    size_ = size;
    return 0;
  }
  void unmap() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lockstep::ipc
