// models/harness/harness.hpp: shared boilerplate for every model client.
//
// A model client is one small .cpp per primitive: a few rl::test_suite structs that drive the
// production header (compiled against the model seam), and a table of `model` entries naming
// each suite, the property it checks, its thread count and its search. Its binary also runs
// each of the client's mutants: started with --mutant NAME, it switches that one mutation point
// on (seam::mutant, seam/model.hpp) and then expects a model to fail.
//
// Command line of every model binary (tools/verify drives it; humans can too):
//   --list                 one line per model: name, threads, search, property (tab-separated)
//   --mutant NAME          run as that mutant: NAME must be one of this client's rows of
//                          models/mutants.tsv (else exit 2: it would only "survive")
//   --run NAME             run only this model (repeatable; default: all)
//   --search full|bound|random, --bound K, --iterations N
//                          override the model's own search
//   --trace-dir DIR        on a failure, write Relacy's full report to
//                          DIR/<binary>[.<mutant>].<model>.trace, after "# key: value" lines
//                          (binary, model, property, threads, mutant, search, result);
//                          tools/swimlane.py turns it into a swimlane
//   --quiet                no progress lines
// Output: one line per model, machine-readable key=value after a fixed prefix:
//   RESULT model=NAME threads=N search=S iterations=I time_ms=T result=PASS|<failure kind>
// and, with --mutant, a final line
//   MUTANT name=M caught=yes|no by=MODEL kind=<failure kind> reached=yes|no
// where reached=no says that no model ever ran the mutation point (so none could catch it).
// Exit status: 0 when every model passes (or, with --mutant, when some model catches it);
// 1 otherwise; 2 on bad usage.
#pragma once

#include <lockstep/seam.hpp>  // brings Relacy in the model build

#include <string_view>

namespace lockstep::model {

struct search {
  rl::scheduler_type_e type;
  unsigned bound;             // context bound, for sched_bound
  unsigned long iterations;   // for sched_random (ignored by full and bounded search)
};

inline constexpr search full() { return {rl::sched_full, 0, 0}; }
inline constexpr search bounded(unsigned k) { return {rl::sched_bound, k, 0}; }
inline constexpr search random(unsigned long n) { return {rl::sched_random, 0, n}; }

struct model {
  const char* name;
  const char* property;  // what it proves, one line: "mutual exclusion; no deadlock"
  unsigned threads;
  search how;
  bool (*simulate)(rl::test_params&);
};

template <class Suite>
bool simulate(rl::test_params& p) {
  return rl::simulate<Suite>(p);
}

// Runs the models named on the command line; see the header comment.
int main(int argc, char** argv, const model* models, std::size_t count);

}  // namespace lockstep::model

#define LOCKSTEP_MODEL_MAIN(table)                                                              \
  int main(int argc, char** argv) {                                                            \
    return ::lockstep::model::main(argc, argv, table, sizeof(table) / sizeof(table[0]));       \
  }
