// The trained reference pair (tests/fixtures/reference_models, README there): a 4-layer target
// and a 1-layer draft on the same byte-level tokenizer, as transformers saved them.
#pragma once
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

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

// The speculative-decoding prompts: 6 windows of the held-out text, 40 to 90 bytes after BOS, the
// odd ones repeated (so prompt lookup finds matches).
inline std::vector<std::vector<int32_t>> reference_speculative_prompts() {
  std::ifstream in(kReferenceModelsDir + "/heldout-sample.txt", std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < 6; ++i) {
    std::vector<int32_t> ids = {kReferenceBos};
    const std::string window = text.substr(1000 + i * 7919, 40 + i * 10);
    for (int rep = 0; rep < (i % 2 ? 2 : 1); ++rep)
      for (unsigned char c : window) ids.push_back(c);
    prompts.push_back(ids);
  }
  return prompts;
}

}  // namespace iol::testing
