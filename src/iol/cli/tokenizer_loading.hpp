// The tokenizer a command uses: the model directory's tokenizer.json, or for a preset the
// synthetic byte-level tokenizer `iol model create` writes.
#pragma once
#include <memory>

#include "iol/cli/model_options.hpp"
#include "iol/model/model_config.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::cli {

// Null for a model directory without tokenizer.json.
std::unique_ptr<tokenizer::Tokenizer> load_tokenizer(const ModelOptions& options, const model::ModelConfig& config);

}  // namespace iol::cli
