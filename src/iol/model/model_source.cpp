#include "iol/model/model_source.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/presets.hpp"
#include "iol/model/weight_layout.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::model {

namespace fs = std::filesystem;

LoadFormat parse_load_format(const std::string& text) {
  if (text == "auto") return LoadFormat::Auto;
  if (text == "safetensors") return LoadFormat::Safetensors;
  if (text == "dummy") return LoadFormat::Dummy;
  throw UsageError(fmt::format("--load-format must be auto, safetensors or dummy (got '{}')", text));
}

bool uses_dummy_weights(const ModelSource& source) {
  return source.load_format == LoadFormat::Dummy || (source.load_format == LoadFormat::Auto && !source.preset.empty());
}

LoadedModel load_model(const ModelSource& source, bool load_weights) {
  if (source.model_dir.empty() == source.preset.empty())
    throw UsageError("give exactly one of --model DIR or --preset NAME");
  LoadedModel loaded;
  if (!source.preset.empty()) {
    if (source.load_format == LoadFormat::Safetensors)
      throw UsageError("--preset has no weight files: use --load-format dummy, or --model DIR");
    loaded.config = preset_or_throw(source.preset);
    loaded.description = "preset " + source.preset;
  } else {
    if (!fs::is_directory(source.model_dir)) fail("{}: not a directory", source.model_dir);
    loaded.config = ModelConfig::from_file((fs::path(source.model_dir) / "config.json").string());
    loaded.description = source.model_dir;
  }
  const bool dummy = uses_dummy_weights(source);
  if (dummy) loaded.description += " (dummy weights)";
  if (!load_weights) return loaded;
  loaded.weights = dummy ? ModelWeights::dummy(loaded.config, source.seed,
                                               source.dummy_dtype.value_or(loaded.config.dtype))
                         : ModelWeights::load(loaded.config, source.model_dir);
  return loaded;
}

namespace {
void write_json(const fs::path& path, const nlohmann::json& value) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) fail("{}: cannot create file", path.string());
  out << value.dump(2) << "\n";
  if (!out) fail("{}: write failed", path.string());
}
}  // namespace

void write_model_directory(const ModelConfig& config, const ModelWeights& weights, const std::string& out_dir) {
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error) fail("{}: cannot create directory: {}", out_dir, error.message());
  fs::path dir(out_dir);
  write_json(dir / "config.json", config.to_json());

  std::vector<TensorToWrite> tensors;
  for (const auto& spec : weight_layout(config)) {
    const TensorView& view = weights.tensor(spec.name);
    tensors.push_back({spec.name, view.dtype, view.shape, {view.data, view.nbytes}});
  }
  write_safetensors((dir / "model.safetensors").string(), tensors);

  int64_t bos = config.bos_token_id.value_or(0);
  int64_t eos = config.eos_token_ids.empty() ? bos : config.eos_token_ids.front();
  auto [tokenizer_json, tokenizer_config] = tokenizer::make_byte_level_tokenizer(config.vocab_size, bos, eos);
  write_json(dir / "tokenizer.json", tokenizer_json);
  write_json(dir / "tokenizer_config.json", tokenizer_config);
  nlohmann::json generation = {{"bos_token_id", bos}, {"eos_token_id", config.eos_token_ids}, {"do_sample", false}};
  write_json(dir / "generation_config.json", generation);
}

}  // namespace iol::model
