// iol model create | info: write HF-format model directories with seeded weights, inspect models.
#include <unistd.h>

#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "iol/cli/commands.hpp"
#include "iol/cli/model_options.hpp"
#include "iol/cli/numeric_flags.hpp"
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
  bool force = false;
};

// Writes the model into a temporary sibling directory and renames it into place: a failed write
// leaves nothing half-written, and a process that has the old files mapped keeps reading them
// (their inodes live on until unmapped) instead of dying of SIGBUS as files are rewritten under it.
void write_model_atomically(const model::ModelConfig& config, const model::ModelWeights& weights,
                            const std::string& out, bool force) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path target = fs::path(out).lexically_normal();
  if (target.empty() || target.filename().empty() || target.filename() == "." || target.filename() == "..")
    throw UsageError(fmt::format("--out '{}' must name a directory to create", out));
  const bool exists = fs::exists(fs::symlink_status(target, error));
  if (exists && !fs::is_directory(fs::symlink_status(target, error)))
    throw UsageError(fmt::format("--out {}: exists and is not a directory", out));
  const bool non_empty = exists && !fs::is_empty(target, error);
  if (non_empty && !force)
    throw UsageError(fmt::format("--out {}: exists and is not empty; pass --force to replace it", out));
  if (!target.parent_path().empty()) {
    fs::create_directories(target.parent_path(), error);
    if (error) fail("--out {}: cannot create {}: {}", out, target.parent_path().string(), error.message());
  }
  const std::string suffix = fmt::format(".tmp-{}", ::getpid());
  const fs::path staging = target.string() + suffix;
  fs::remove_all(staging, error);
  try {
    model::write_model_directory(config, weights, staging.string());
  } catch (...) {
    fs::remove_all(staging, error);
    throw;
  }
  const fs::path old = target.string() + fmt::format(".old-{}", ::getpid());
  if (exists) {
    fs::rename(target, old, error);
    if (error) {
      fs::remove_all(staging, error);
      fail("--out {}: cannot move the existing directory aside: {}", out, error.message());
    }
  }
  fs::rename(staging, target, error);
  if (error) {
    const std::string message = error.message();
    if (exists) fs::rename(old, target, error);  // put the old model back
    fs::remove_all(staging, error);
    fail("--out {}: cannot rename {} into place: {}", out, staging.string(), message);
  }
  if (exists) fs::remove_all(old, error);
}

void run_create(const CreateOptions& o) {
  if (o.preset.empty() == o.config_path.empty()) throw UsageError("give exactly one of --preset NAME or --config FILE");
  model::ModelConfig config =
      o.preset.empty() ? model::ModelConfig::from_file(o.config_path) : model::preset_or_throw(o.preset);
  if (!o.dtype.empty()) {
    auto dtype = dtype_from_user_name(o.dtype);
    if (!dtype) throw UsageError(fmt::format("--dtype must be bf16, f16 or f32 (got '{}')", o.dtype));
    config.dtype = *dtype;
  }
  // Refuse a bad --out before drawing (possibly large) weights.
  {
    std::error_code error;
    if (!o.force && std::filesystem::is_directory(o.out, error) && !std::filesystem::is_empty(o.out, error))
      throw UsageError(fmt::format("--out {}: exists and is not empty; pass --force to replace it", o.out));
  }
  auto weights = model::ModelWeights::dummy(config, o.seed, config.dtype);
  write_model_atomically(config, *weights, o.out, o.force);
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
  create_cmd->add_option("--seed", create->seed, "Weight seed")->check(uint_range())->capture_default_str();
  create_cmd->add_option("--dtype", create->dtype, "bf16 | f16 | f32 (default: the config's)");
  create_cmd->add_flag("--force", create->force, "Replace --out if it exists and is not empty");
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
