// The trained reference pair (tests/fixtures/reference_models, README there): a 4-layer target
// and a 1-layer draft on the same byte-level tokenizer, as transformers saved them.
#pragma once
#include <cstdint>
#include <string>

#include "iol/model/model_source.hpp"

namespace iol::testing {

inline const std::string kReferenceModelsDir = std::string(IOL_FIXTURES_DIR) + "/reference_models";
inline constexpr int32_t kReferenceBos = 256;  // the byte-level tokenizer's BOS (ids 0..255 are bytes)

// "target" or "draft", weights loaded.
inline model::LoadedModel load_reference_model(const std::string& name) {
  model::ModelSource source;
  source.model_dir = kReferenceModelsDir + "/" + name;
  return model::load_model(source);
}

}  // namespace iol::testing
