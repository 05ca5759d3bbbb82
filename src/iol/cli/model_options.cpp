#include "iol/cli/model_options.hpp"

#include <fmt/ranges.h>

#include "iol/cli/numeric_flags.hpp"
#include "iol/core/error.hpp"
#include "iol/model/presets.hpp"

namespace iol::cli {

void ModelOptions::add_to(CLI::App& command) {
  command.add_option("--model", model_dir, "Hugging Face model directory (config.json, *.safetensors, tokenizer.json)");
  command.add_option("--preset", preset,
                     fmt::format("Built-in model shape, dummy weights: {}", fmt::join(model::preset_names(), ", ")));
  command.add_option("--load-format", load_format, "auto | safetensors | dummy (seeded random weights)")
      ->capture_default_str();
  command.add_option("--weights-seed", weights_seed, "Seed of dummy weights")->check(uint_range())->capture_default_str();
  command.add_option("--dtype", dtype, "Dummy-weight dtype: bf16 | f16 | f32 (default: the config's)");
}

model::ModelSource ModelOptions::to_source() const {
  model::ModelSource source;
  source.model_dir = model_dir;
  source.preset = preset;
  source.load_format = model::parse_load_format(load_format);
  source.seed = weights_seed;
  if (!dtype.empty()) {
    source.dummy_dtype = dtype_from_user_name(dtype);
    if (!source.dummy_dtype) throw UsageError(fmt::format("--dtype must be bf16, f16 or f32 (got '{}')", dtype));
  }
  return source;
}

}  // namespace iol::cli
