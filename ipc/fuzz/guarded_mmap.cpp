// ipc/fuzz/guarded_mmap.cpp: every shared file mapping the fuzz target makes sits between two
// PROT_NONE guard pages, and the bytes of its last page past the file's end are poisoned for
// AddressSanitizer.
//
// Why: ASan knows heap, stack and globals, not mmap. A segment's mapping ends wherever the
// kernel put it: a read past its end would land in the rest of its last page (readable zeros)
// or in whatever mapping follows, and go unnoticed. Here a read or write even one byte outside
// [data(), data() + size()) is an ASan report (the poisoned tail) or a SEGV (the guards), both
// crashes to libFuzzer.
//
// How: the fuzz target is linked with -Wl,--wrap=mmap,--wrap=munmap, so the library's mmap and
// munmap calls in it (shared_memory.hpp, compiled into the target) come here. Only
// MAP_SHARED file mappings at a kernel-chosen address are guarded; everything else (the
// sanitizer runtimes' own mappings never come through --wrap) goes straight to the real call.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>
#include <unistd.h>

extern "C" void* __real_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off);
extern "C" int __real_munmap(void* addr, std::size_t len);

namespace {

struct reservation {
  char* base;         // the first guard page
  std::size_t total;  // guard + the mapping rounded up to pages + guard
};

std::mutex guard_lock;
std::unordered_map<void*, reservation>& guarded() {
  static auto* m = new std::unordered_map<void*, reservation>;  // never destroyed: used at exit
  return *m;
}

std::size_t page() {
  static const std::size_t p = std::size_t(::sysconf(_SC_PAGESIZE));
  return p;
}

}  // namespace

extern "C" void* __wrap_mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  if (addr != nullptr || fd < 0 || (flags & MAP_SHARED) == 0 || len == 0)
    return __real_mmap(addr, len, prot, flags, fd, off);
  const std::size_t span = (len + page() - 1) / page() * page();
  const std::size_t total = span + 2 * page();
  auto* base = static_cast<char*>(__real_mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (base == MAP_FAILED) return MAP_FAILED;
  void* p = __real_mmap(base + page(), len, prot, flags | MAP_FIXED, fd, off);
  if (p == MAP_FAILED) {
    __real_munmap(base, total);
    return MAP_FAILED;
  }
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + len, span - len);
  const std::lock_guard<std::mutex> hold(guard_lock);
  guarded()[p] = {base, total};
  return p;
}

extern "C" int __wrap_munmap(void* addr, std::size_t len) {
  reservation r{};
  {
    const std::lock_guard<std::mutex> hold(guard_lock);
    const auto it = guarded().find(addr);
    if (it == guarded().end()) return __real_munmap(addr, len);
    r = it->second;
    guarded().erase(it);
  }
  ASAN_UNPOISON_MEMORY_REGION(r.base + page(), r.total - 2 * page());
  return __real_munmap(r.base, r.total);
}
