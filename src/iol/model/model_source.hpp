// Where a model comes from: a Hugging Face directory or a built-in preset, with real
// (safetensors) or seeded random (dummy) weights. Used by every CLI subcommand.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "iol/model/model_config.hpp"
#include "iol/model/model_weights.hpp"

namespace iol::model {

enum class LoadFormat { Auto, Safetensors, Dummy };

struct ModelSource {
  std::string model_dir;   // HF directory (config.json [+ weights]); or
  std::string preset;      // a preset name
  LoadFormat load_format = LoadFormat::Auto;  // Auto: safetensors for a directory, dummy for a preset
  uint64_t seed = 0;       // dummy weights
  std::optional<DType> dummy_dtype;  // default: the config's dtype
};

struct LoadedModel {
  ModelConfig config;
  std::shared_ptr<const ModelWeights> weights;
  std::string description;  // "DIR" or "preset NAME", for summaries
};

LoadFormat parse_load_format(const std::string& text);  // throws UsageError
// load_weights false: the config and description only (a backend that draws dummy weights itself).
LoadedModel load_model(const ModelSource& source, bool load_weights = true);
bool uses_dummy_weights(const ModelSource& source);

// Writes a complete HF directory: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, generation_config.json.
void write_model_directory(const ModelConfig& config, const ModelWeights& weights, const std::string& out_dir);

}  // namespace iol::model
