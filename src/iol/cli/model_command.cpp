// iol model create | info: write HF-format model directories with seeded weights, inspect models.
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "iol/cli/commands.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/core/error.hpp"
#include "iol/model/presets.hpp"

namespace iol::cli {

namespace {

struct CreateOptions {
  std::string preset;
  std::string config_path;
  std::string out;
  uint64_t seed = 0;
  std::string dtype;
};

void run_create(const CreateOptions& o) {
  if (o.preset.empty() == o.config_path.empty()) throw UsageError("give exactly one of --preset NAME or --config FILE");
  model::ModelConfig config =
      o.preset.empty() ? model::ModelConfig::from_file(o.config_path) : model::preset_or_throw(o.preset);
  if (!o.dtype.empty()) {
    auto dtype = dtype_from_user_name(o.dtype);
    if (!dtype) throw UsageError(fmt::format("--dtype must be bf16, f16 or f32 (got '{}')", o.dtype));
    config.dtype = *dtype;
  }
  auto weights = model::ModelWeights::dummy(config, o.seed, config.dtype);
  model::write_model_directory(config, *weights, o.out);
  fmt::print(stderr, "iol model create: wrote {} ({}, {:.2f} M parameters, {}, seed {})\n", o.out,
             config.architecture, static_cast<double>(config.num_parameters()) / 1e6, dtype_name(config.dtype), o.seed);
}

void run_info(const ModelOptions& options) {
  model::LoadedModel loaded = model::load_model(options.to_source());
  const model::ModelConfig& c = loaded.config;
  fmt::print("model: {}\narchitecture: {}\nparameters: {:.3f} B\nlayers: {}\nhidden: {}\nintermediate: {}\n"
             "heads: {} (kv {}, head_dim {})\nvocab: {}\nmax_position_embeddings: {}\nweights: {} tensors, OK\n",
             loaded.description, c.architecture, static_cast<double>(c.num_parameters()) / 1e9, c.num_hidden_layers,
             c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
             c.vocab_size, c.max_position_embeddings, loaded.weights->all().size());
}

}  // namespace

void add_model_command(CLI::App& app, CommandRunner& runner) {
  CLI::App* model = app.add_subcommand("model", "Create or inspect models");
  model->require_subcommand(1);

  auto create = std::make_shared<CreateOptions>();
  CLI::App* create_cmd = model->add_subcommand("create", "Write a Hugging Face model directory with seeded random weights");
  create_cmd->footer(
      "Examples:\n"
      "  iol model create --preset tiny --out models/tiny\n"
      "  iol model create --preset tiny-qwen2 --out models/tiny-qwen2 --seed 1 --dtype f32\n"
      "  iol model create --config my/config.json --out models/custom");
  create_cmd->add_option("--preset", create->preset,
                         fmt::format("Preset: {}", fmt::join(model::preset_names(), ", ")));
  create_cmd->add_option("--config", create->config_path, "A config.json to take the shape from");
  create_cmd->add_option("--out", create->out, "Output directory")->required();
  create_cmd->add_option("--seed", create->seed, "Weight seed")->capture_default_str();
  create_cmd->add_option("--dtype", create->dtype, "bf16 | f16 | f32 (default: the config's)");
  create_cmd->callback([create, &runner] { runner = [create] { run_create(*create); }; });

  auto info = std::make_shared<ModelOptions>();
  CLI::App* info_cmd = model->add_subcommand("info", "Validate a model and print its shape");
  info_cmd->footer("Examples:\n  iol model info --model models/tiny\n  iol model info --preset llama-3.1-8b");
  info->add_to(*info_cmd);
  info_cmd->callback([info, &runner] {
    runner = [info] {
      // A preset has no weight files: checking its shape needs no dummy weights.
      if (!info->preset.empty() && info->model_dir.empty()) {
        model::ModelConfig c = model::preset_or_throw(info->preset);
        fmt::print("preset: {}\narchitecture: {}\nparameters: {:.3f} B\nlayers: {}\nhidden: {}\nheads: {} (kv {}, "
                   "head_dim {})\nvocab: {}\n", info->preset, c.architecture,
                   static_cast<double>(c.num_parameters()) / 1e9, c.num_hidden_layers, c.hidden_size,
                   c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size);
        return;
      }
      run_info(*info);
    };
  });
}

}  // namespace iol::cli
