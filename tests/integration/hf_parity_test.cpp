// Parity with Hugging Face transformers: checkpoints written like `iol model create` writes them,
// loaded from disk, must give HF's logits (relative error < 1e-4) and the same 32 greedy tokens.
// Expected values: tests/reference/make_hf_reference.py (run with transformers on the GPU machine).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "../support/temp_dir.hpp"
#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/engine/llm.hpp"
#include "iol/model/model_source.hpp"
#include "iol/model/presets.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol {
namespace {

constexpr double kMaxRelativeError = 1e-4;

struct ReferenceCase {
  std::vector<int32_t> prompt_ids, greedy_ids;
  int64_t num_positions = 0;
  std::vector<float> logits;  // num_positions × vocab
};

struct Reference {
  nlohmann::json record;
  std::vector<ReferenceCase> cases;
};

Reference load_reference(const std::string& preset) {
  std::string base = std::string(IOL_FIXTURES_DIR) + "/hf_reference/" + preset;
  Reference reference;
  std::ifstream meta(base + ".json");
  reference.record = nlohmann::json::parse(meta);
  int64_t vocab = reference.record["vocab_size"];
  std::ifstream blob(base + ".logits.f32", std::ios::binary);
  for (const auto& c : reference.record["cases"]) {
    ReferenceCase rc;
    rc.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    rc.greedy_ids = c["greedy_ids"].get<std::vector<int32_t>>();
    rc.num_positions = c["num_positions"];
    rc.logits.resize(static_cast<size_t>(rc.num_positions * vocab));
    blob.read(reinterpret_cast<char*>(rc.logits.data()), static_cast<std::streamsize>(rc.logits.size() * 4));
    reference.cases.push_back(std::move(rc));
  }
  EXPECT_TRUE(blob.good()) << base << ".logits.f32 is shorter than its .json says";
  return reference;
}

// ‖a − b‖ / ‖b‖ over one row of logits.
double relative_error(const float* a, const float* b, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
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
  const int64_t vocab = loaded.config.vocab_size;
  ASSERT_EQ(vocab, reference.record["vocab_size"].get<int64_t>());

  for (const auto& rc : reference.cases) {
    SCOPED_TRACE("prompt of " + std::to_string(rc.prompt_ids.size()) + " tokens");
    const int64_t block_size = 16;
    const int64_t num_blocks = (rc.num_positions + block_size - 1) / block_size;

    // 1. The whole sequence (prompt + HF's greedy tokens) as one prefill: logits at every position.
    {
      backend::cpu::CpuBackend backend(loaded.config, loaded.weights, num_blocks, block_size);
      std::vector<int32_t> ids = rc.prompt_ids;
      ids.insert(ids.end(), rc.greedy_ids.begin(), rc.greedy_ids.end());
      const int32_t n = static_cast<int32_t>(ids.size());
      std::vector<int32_t> positions(ids.size()), rows(ids.size()), blocks(static_cast<size_t>(num_blocks));
      std::vector<int64_t> slots(ids.size());
      std::iota(positions.begin(), positions.end(), 0);
      std::iota(rows.begin(), rows.end(), 0);
      // Blocks in reverse order: attention must follow the block table, not assume contiguity.
      for (int32_t b = 0; b < num_blocks; ++b) blocks[static_cast<size_t>(b)] = static_cast<int32_t>(num_blocks - 1 - b);
      for (int32_t i = 0; i < n; ++i) slots[static_cast<size_t>(i)] = blocks[static_cast<size_t>(i / block_size)] * block_size + i % block_size;
      const int32_t query_start[2] = {0, n};
      backend::ForwardBatch batch{ids, positions, slots, query_start, {&n, 1}, blocks,
                                  static_cast<int32_t>(num_blocks), rows};
      std::vector<float> logits(ids.size() * static_cast<size_t>(vocab));
      backend.compute_logits(batch, logits);
      double worst = 0;
      for (int32_t i = 0; i < n; ++i)
        worst = std::max(worst, relative_error(logits.data() + i * vocab, rc.logits.data() + i * vocab, vocab));
      EXPECT_LT(worst, kMaxRelativeError) << "prefill logits differ from transformers";
      std::printf("[ parity ] %s, %zu positions: worst relative logit error %.3g\n", preset.c_str(), ids.size(), worst);
    }

    // 2. Greedy generation through the KV cache, one decode step per token: same tokens as HF.
    {
      backend::cpu::CpuBackend backend(loaded.config, loaded.weights, num_blocks, block_size);
      auto vocabulary = tokenizer::Vocabulary::from_file(dir.str("tokenizer.json"));
      engine::EngineConfig engine_config;
      engine_config.num_kv_blocks = num_blocks;
      engine_config.block_size = block_size;
      engine_config.max_model_len = rc.num_positions;
      engine::Engine engine(engine_config, backend, loaded.config, &vocabulary);
      sampling::SamplingParams params;
      params.temperature = 0.0f;
      params.max_tokens = static_cast<int32_t>(rc.greedy_ids.size());
      params.ignore_eos = true;
      params.logprobs = 1;
      engine::Completion result = engine::generate(engine, {rc.prompt_ids}, {params})[0];
      EXPECT_EQ(result.output_ids, rc.greedy_ids);
      // The decode-step logprob of each token matches log_softmax of HF's logits at that position.
      for (size_t k = 0; k < result.tokens.size() && k < rc.greedy_ids.size(); ++k) {
        const float* row = rc.logits.data() + (static_cast<int64_t>(rc.prompt_ids.size() + k) - 1) * vocab;
        double max_logit = *std::max_element(row, row + vocab), sum = 0;
        for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max_logit);
        double expected = row[rc.greedy_ids[k]] - max_logit - std::log(sum);
        EXPECT_NEAR(result.tokens[k].logprob, expected, 1e-3 + 1e-4 * std::abs(expected)) << "token " << k;
      }
    }
  }
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
