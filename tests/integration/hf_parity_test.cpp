// Parity with Hugging Face transformers: checkpoints written like `iol model create` writes them,
// loaded from disk, must give HF's logits (relative error < 1e-4) and the same 32 greedy tokens.
// Expected values: tests/reference/make_hf_reference.py (run with transformers on the GPU machine).
#include <gtest/gtest.h>

#include <string>

#include "../support/hf_reference.hpp"
#include "../support/temp_dir.hpp"
#include "iol/model/presets.hpp"

namespace iol {
namespace {

using testing::expect_matches_reference;
using testing::Reference;

Reference load_reference(const std::string& preset) {
  const std::string base = std::string(IOL_FIXTURES_DIR) + "/hf_reference/" + preset;
  return testing::load_reference(base + ".json", base + ".logits.f32");
}

class HfParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HfParity, LogitsAndGreedyTokensMatchTransformers) {
  const std::string preset = GetParam();
  Reference reference = load_reference(preset);
  ASSERT_FALSE(reference.cases.empty());

  testing::TempDir dir;
  model::ModelConfig created = model::preset_or_throw(preset);
  auto dummy = model::ModelWeights::dummy(created, reference.record["seed"].get<uint64_t>(), created.dtype);
  model::write_model_directory(created, *dummy, dir.str());
  model::ModelSource source;
  source.model_dir = dir.str();
  model::LoadedModel loaded = model::load_model(source);

  expect_matches_reference(loaded, dir.str("tokenizer.json"), reference, preset);
}

TEST_P(HfParity, TokenizerFileDecodesLikeTransformers) {
  Reference reference = load_reference(GetParam());
  testing::TempDir dir;
  model::ModelConfig config = model::preset_or_throw(GetParam());
  model::write_model_directory(config, *model::ModelWeights::dummy(config, 0, DType::BF16), dir.str());
  auto vocabulary = tokenizer::Vocabulary::from_file(dir.str("tokenizer.json"));
  const auto& sample = reference.record["tokenizer_sample"];
  auto ids = sample["ids"].get<std::vector<int64_t>>();
  EXPECT_EQ(vocabulary.decode(ids, /*skip_special_tokens=*/true), sample["decoded"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Presets, HfParity, ::testing::Values("tiny", "tiny-qwen2"),
                         [](const auto& info) { return info.param == "tiny" ? std::string("tiny") : std::string("tiny_qwen2"); });

}  // namespace
}  // namespace iol
