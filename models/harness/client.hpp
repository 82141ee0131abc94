// models/harness/client.hpp: what a model binary knows of its client besides its models.
//
// models/CMakeLists.txt generates the definition (<build>/models/<client>_client.cpp) from the
// client's line there and its rows of models/mutants.tsv, so the binary accepts exactly the
// mutants registered for it (--mutant) and editing mutants.tsv recompiles only that small file.
// No Relacy here: the generated file stays quick to compile.
#pragma once

#include <span>
#include <string_view>

namespace lockstep::model {

struct client {
  std::string_view name;                      // "mutex": models/mutex_model.cpp, binary model_mutex
  std::span<const std::string_view> mutants;  // its rows of models/mutants.tsv, in file order
};

// This binary's client (defined in the generated <client>_client.cpp).
extern const client this_client;

}  // namespace lockstep::model
