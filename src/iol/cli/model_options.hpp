// The model-selection flags shared by subcommands: --model / --preset / --load-format / --dtype.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "iol/model/model_source.hpp"

namespace iol::cli {

struct ModelOptions {
  std::string model_dir;
  std::string preset;
  std::string load_format = "auto";
  uint64_t weights_seed = 0;
  std::string dtype;

  void add_to(CLI::App& command);
  model::ModelSource to_source() const;  // throws UsageError on bad combinations
};

}  // namespace iol::cli
