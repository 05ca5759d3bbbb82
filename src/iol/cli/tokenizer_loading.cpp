#include "iol/cli/tokenizer_loading.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

namespace iol::cli {

std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const ModelOptions& options, const model::ModelConfig& config) {
  if (!options.model_dir.empty()) {
    if (!std::filesystem::exists(std::filesystem::path(options.model_dir) / "tokenizer.json")) return nullptr;
    return tokenizer::Tokenizer::from_directory(options.model_dir);
  }
  const int64_t bos = config.bos_token_id.value_or(0);
  const int64_t eos = config.eos_token_ids.empty() ? bos : config.eos_token_ids.front();
  auto [tokenizer_json, tokenizer_config] = tokenizer::make_byte_level_tokenizer(config.vocab_size, bos, eos);
  return tokenizer::Tokenizer::from_json(tokenizer_json, tokenizer_config, "synthetic tokenizer of preset " + options.preset);
}

}  // namespace iol::cli
