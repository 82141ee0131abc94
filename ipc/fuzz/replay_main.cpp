// ipc/fuzz/replay_main.cpp: a main() for segment_fuzz.cpp without libFuzzer: runs the target
// once on every file of the given directories (the committed corpus, which holds the seeds and
// every reproducer a fuzz run ever found). Built by the ordinary presets as the unit test
// unit.segment_fuzz_corpus, so a regression of a fixed crash fails `ctest -L unit` under g++,
// ASan and TSan too, without clang.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: segment_fuzz_replay DIR...\n");
    return 2;
  }
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& e : std::filesystem::directory_iterator(argv[i])) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      std::printf("%s (%zu bytes)\n", e.path().filename().c_str(), bytes.size());
      std::fflush(stdout);
      (void)LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++files;
    }
  }
  std::printf("segment_fuzz_replay: %d inputs, no failure\n", files);
  return files > 0 ? 0 : 1;  // an empty corpus checks nothing
}
