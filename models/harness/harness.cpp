// models/harness/harness.cpp: the command line, search set-up and reporting of model binaries.
// See harness.hpp for the interface. Compiled once into a static library that every model
// binary links (models/CMakeLists.txt); each binary is one client, and the generated
// <client>_client.cpp tells it its name and its mutants (client.hpp).
// Standard headers first: Relacy (pulled in by the harness) #defines names they use.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "client.hpp"
#include "harness.hpp"

namespace lockstep::model {
namespace {

const char* search_name(rl::scheduler_type_e t) {
  switch (t) {
    case rl::sched_full: return "full";
    case rl::sched_bound: return "bound";
    case rl::sched_random: return "random";
    default: return "?";
  }
}

std::string describe(const search& s) {
  if (s.type == rl::sched_bound) return "bound:" + std::to_string(s.bound);
  if (s.type == rl::sched_random) return "random:" + std::to_string(s.iterations);
  return search_name(s.type);
}

// Relacy writes its reports and progress from inside the simulation, where its own operator new
// serves allocations from per-iteration memory; a growing std::stringbuf there would be freed
// later by the real allocator. So both streams write into buffers allocated up front.

// Relacy's failure report (history included), kept whole up to a fixed size. The buffer is left
// uninitialised: its pages are mapped only as a report is written, so a model that passes does
// not pay for touching 64 MiB (that was a quarter of a second per run).
class report_buf : public std::streambuf {
 public:
  explicit report_buf(std::size_t capacity) : buf_(std::make_unique_for_overwrite<char[]>(capacity)) {
    setp(buf_.get(), buf_.get() + capacity);
  }
  std::string text() const { return std::string(pbase(), pptr()) + (truncated_ ? "\n[report truncated]\n" : ""); }

 protected:
  int overflow(int) override {
    truncated_ = true;
    return 0;  // drop the rest, never allocate
  }

 private:
  std::unique_ptr<char[]> buf_;
  bool truncated_ = false;
};

// Relacy prints its progress as "NN% (i/total)"; each line goes to stderr prefixed with the
// model, so a runner can show which model it belongs to.
class progress_buf : public std::streambuf {
 public:
  progress_buf(const char* model, bool quiet) : model_(model), quiet_(quiet) { setp(line_, line_ + sizeof line_ - 1); }

 protected:
  int overflow(int c) override {
    sync();
    if (c != EOF) sputc(char(c));
    return 0;
  }
  int sync() override {
    std::size_t n = std::size_t(pptr() - pbase());
    while (n > 0 && (line_[n - 1] == '\n' || line_[n - 1] == '\r')) --n;
    if (!quiet_ && n > 0) std::fprintf(stderr, "PROGRESS model=%s %.*s\n", model_, int(n), line_);
    setp(line_, line_ + sizeof line_ - 1);
    return 0;
  }

 private:
  const char* model_;
  bool quiet_;
  char line_[256];
};

struct options {
  std::vector<std::string> run;
  bool list = false, quiet = false;
  bool override_search = false;
  search how{};
  bool override_iterations = false;
  unsigned long iterations = 0;
  bool override_bound = false;
  unsigned bound = 0;
  std::string trace_dir;
  std::string mutant;
  std::string first;  // run this model before the others (tools/verify: a mutant's last catcher)
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "error: %s\nusage: model [--list] [--mutant NAME] [--run NAME]... [--first NAME]\n"
               "             [--search full|bound|random] [--bound K] [--iterations N] [--trace-dir DIR]\n"
               "             [--quiet]\n",
               why);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + std::string(a)).c_str());
      return argv[++i];
    };
    auto number = [&]() -> unsigned long {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') usage(("not a number: " + v).c_str());
      return n;
    };
    if (a == "--list") o.list = true;
    else if (a == "--quiet") o.quiet = true;
    else if (a == "--run") o.run.push_back(value());
    else if (a == "--trace-dir") o.trace_dir = value();
    else if (a == "--mutant") o.mutant = value();
    else if (a == "--first") o.first = value();
    else if (a == "--iterations") { o.override_iterations = true; o.iterations = number(); }
    else if (a == "--bound") { o.override_bound = true; o.bound = unsigned(number()); }
    else if (a == "--search") {
      const std::string v = value();
      o.override_search = true;
      if (v == "full") o.how = full();
      else if (v == "bound") o.how = bounded(2);
      else if (v == "random") o.how = random(100000);
      else usage(("unknown search: " + v).c_str());
    } else usage(("unknown option: " + std::string(a)).c_str());
  }
  return o;
}

// A mutant of another client, or a name with no row in models/mutants.tsv, would run the clean
// models and "survive": refuse it instead.
void check_mutant(const std::string& name) {
  for (std::string_view m : this_client.mutants)
    if (m == name) return;
  std::string known;
  for (std::string_view m : this_client.mutants) known += (known.empty() ? "" : ", ") + std::string(m);
  usage(("no mutant named " + name + " in client " + std::string(this_client.name) +
         " (models/mutants.tsv); its mutants: " + (known.empty() ? "none" : known))
            .c_str());
}

std::string binary_name(const char* argv0) {
  const char* slash = std::strrchr(argv0, '/');
  return slash ? slash + 1 : argv0;
}

}  // namespace

int main(int argc, char** argv, const model* models, std::size_t count) {
  const options o = parse(argc, argv);
  const std::string bin = binary_name(argv[0]);
  const std::string_view mutant = o.mutant;
  if (!mutant.empty()) check_mutant(o.mutant);
  seam::mutants.active = mutant;  // before any model runs; never changed after (seam/model.hpp)

  if (o.list) {
    for (std::size_t i = 0; i < count; ++i)
      std::printf("%s\t%u\t%s\t%s\n", models[i].name, models[i].threads, describe(models[i].how).c_str(),
                  models[i].property);
    return 0;
  }
  std::vector<std::string> named = o.run;
  if (!o.first.empty()) named.push_back(o.first);
  for (const std::string& name : named) {
    bool known = false;
    for (std::size_t i = 0; i < count; ++i) known = known || name == models[i].name;
    if (!known) usage(("no model named " + name + " (see --list)").c_str());
  }
  // The table's order, with --first moved to the front. Only the order changes: a mutant still
  // runs every selected model until one catches it, so one that survives ran them all.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < count; ++i)
    if (o.first == models[i].name) order.insert(order.begin(), i);
    else order.push_back(i);

  bool all_passed = true;
  std::string caught_by, caught_kind;
  for (const std::size_t i : order) {
    const model& m = models[i];
    if (!o.run.empty()) {
      bool selected = false;
      for (const std::string& name : o.run) selected = selected || name == m.name;
      if (!selected) continue;
    }
    search how = o.override_search ? o.how : m.how;
    if (o.override_bound) how.bound = o.bound;
    if (o.override_iterations) how.iterations = o.iterations;

    report_buf rbuf(std::size_t(64) << 20);
    std::ostream report(&rbuf);
    progress_buf pbuf(m.name, o.quiet);
    std::ostream progress(&pbuf);
    rl::test_params p;
    p.search_type = how.type;
    p.context_bound = how.bound;
    p.iteration_count = how.type == rl::sched_random ? how.iterations : 0;
    p.output_stream = &report;
    p.progress_stream = &progress;
    std::fprintf(stderr, "START model=%s threads=%u search=%s property=\"%s\"\n", m.name, m.threads,
                 describe(how).c_str(), m.property);

    const auto t0 = std::chrono::steady_clock::now();
    const bool passed = m.simulate(p);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();

    const char* kind = passed ? "PASS" : rl::test_result_str(p.test_result);
    std::printf("RESULT model=%s threads=%u search=%s iterations=%llu time_ms=%lld result=%s\n", m.name,
                m.threads, describe(how).c_str(), (unsigned long long)p.stop_iteration, (long long)ms, kind);
    std::fflush(stdout);
    if (passed) continue;

    all_passed = false;
    std::string path;
    if (!o.trace_dir.empty()) {
      // Mutants of one binary may run at the same time: the mutant is part of the name.
      path = o.trace_dir + "/" + bin + (mutant.empty() ? "" : "." + std::string(mutant)) + "." + m.name + ".trace";
      std::ofstream f(path);
      f << "# binary: " << bin << "\n# model: " << m.name << "\n# property: " << m.property
        << "\n# threads: " << m.threads << "\n# mutant: " << (mutant.empty() ? "none" : std::string(mutant))
        << "\n# search: " << describe(how) << "\n# result: " << kind << "\n" << rbuf.text();
      if (!f) std::fprintf(stderr, "warning: could not write %s\n", path.c_str());
    }
    if (mutant.empty()) {
      // A real failure: show it at once, in full.
      std::printf("FAILURE model=%s kind=%s%s%s\n%s\n", m.name, kind, path.empty() ? "" : " trace=",
                  path.c_str(), rbuf.text().c_str());
    } else {
      std::printf("CAUGHT model=%s kind=%s%s%s\n", m.name, kind, path.empty() ? "" : " trace=", path.c_str());
      caught_by = m.name;
      caught_kind = kind;
      break;  // one catch is enough; later models would only spend time
    }
  }

  if (!mutant.empty()) {
    std::printf("MUTANT name=%.*s caught=%s by=%s kind=%s reached=%s\n", int(mutant.size()), mutant.data(),
                caught_by.empty() ? "no" : "yes", caught_by.empty() ? "-" : caught_by.c_str(),
                caught_by.empty() ? "-" : caught_kind.c_str(), seam::mutants.reached ? "yes" : "no");
    return caught_by.empty() ? 1 : 0;
  }
  return all_passed ? 0 : 1;
}

}  // namespace lockstep::model
