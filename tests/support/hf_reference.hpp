// Hugging Face reference fixtures (tests/reference/make_hf_reference.py and
// train_reference_models.py write them): prompts, transformers' greedy tokens and its fp32 logits
// at every position, and the check that iol's CPU backend reproduces both.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/engine/llm.hpp"
#include "iol/model/model_source.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::testing {

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

// json_path: the record (vocab_size, cases); logits_path: the cases' logits, little-endian fp32.
inline Reference load_reference(const std::string& json_path, const std::string& logits_path) {
  Reference reference;
  std::ifstream meta(json_path);
  EXPECT_TRUE(meta.good()) << json_path << " cannot be read";
  reference.record = nlohmann::json::parse(meta);
  int64_t vocab = reference.record["vocab_size"];
  std::ifstream blob(logits_path, std::ios::binary);
  for (const auto& c : reference.record["cases"]) {
    ReferenceCase rc;
    rc.prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    rc.greedy_ids = c["greedy_ids"].get<std::vector<int32_t>>();
    rc.num_positions = c["num_positions"];
    rc.logits.resize(static_cast<size_t>(rc.num_positions * vocab));
    blob.read(reinterpret_cast<char*>(rc.logits.data()), static_cast<std::streamsize>(rc.logits.size() * 4));
    reference.cases.push_back(std::move(rc));
  }
  EXPECT_TRUE(blob.good()) << logits_path << " is shorter than " << json_path << " says";
  return reference;
}

// ‖a − b‖ / ‖b‖ over one row of logits.
inline double relative_error(const float* a, const float* b, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

// The fp32 logits of every position of `ids` prefilled as one sequence on the CPU backend, its KV
// blocks in reverse order (attention must follow the block table, not assume contiguity).
inline std::vector<float> prefill_logits_cpu(const model::LoadedModel& loaded, const std::vector<int32_t>& ids) {
  const int64_t block_size = 16, vocab = loaded.config.vocab_size;
  const int32_t n = static_cast<int32_t>(ids.size());
  const int64_t num_blocks = (n + block_size - 1) / block_size;
  backend::cpu::CpuBackend backend(loaded.config, loaded.weights, num_blocks, block_size);
  std::vector<int32_t> positions(ids.size()), rows(ids.size()), blocks(static_cast<size_t>(num_blocks));
  std::vector<int64_t> slots(ids.size());
  std::iota(positions.begin(), positions.end(), 0);
  std::iota(rows.begin(), rows.end(), 0);
  for (int32_t b = 0; b < num_blocks; ++b) blocks[static_cast<size_t>(b)] = static_cast<int32_t>(num_blocks - 1 - b);
  for (int32_t i = 0; i < n; ++i) slots[static_cast<size_t>(i)] = blocks[static_cast<size_t>(i / block_size)] * block_size + i % block_size;
  const int32_t query_start[2] = {0, n};
  backend::ForwardBatch batch{ids, positions, slots, query_start, {&n, 1}, blocks, static_cast<int32_t>(num_blocks), rows};
  std::vector<float> logits(ids.size() * static_cast<size_t>(vocab));
  backend.compute_logits(batch, logits);
  return logits;
}

// For every case: (1) prompt + greedy tokens as one prefill give transformers' logits at every
// position (relative error < kMaxRelativeError); (2) greedy generation through the KV cache gives
// the same tokens, each with the logprob of transformers' logits.
inline void expect_matches_reference(const model::LoadedModel& loaded, const std::string& tokenizer_json,
                                     const Reference& reference, const std::string& label) {
  const int64_t vocab = loaded.config.vocab_size;
  ASSERT_EQ(vocab, reference.record["vocab_size"].get<int64_t>());
  const std::string& preset = label;
  for (const auto& rc : reference.cases) {
    SCOPED_TRACE("prompt of " + std::to_string(rc.prompt_ids.size()) + " tokens");
    const int64_t block_size = 16;
    const int64_t num_blocks = (rc.num_positions + block_size - 1) / block_size;

    // 1. The whole sequence (prompt + HF's greedy tokens) as one prefill: logits at every position.
    {
      std::vector<int32_t> ids = rc.prompt_ids;
      ids.insert(ids.end(), rc.greedy_ids.begin(), rc.greedy_ids.end());
      const int32_t n = static_cast<int32_t>(ids.size());
      const std::vector<float> logits = prefill_logits_cpu(loaded, ids);
      double worst = 0;
      for (int32_t i = 0; i < n; ++i)
        worst = std::max(worst, relative_error(logits.data() + i * vocab, rc.logits.data() + i * vocab, vocab));
      EXPECT_LT(worst, kMaxRelativeError) << "prefill logits differ from transformers";
      std::printf("[ parity ] %s, %zu positions: worst relative logit error %.3g\n", preset.c_str(), ids.size(), worst);
    }

    // 2. Greedy generation through the KV cache, one decode step per token: same tokens as HF
    //    (cases that record logits only, with no greedy tokens, stop at 1).
    if (!rc.greedy_ids.empty()) {
      backend::cpu::CpuBackend backend(loaded.config, loaded.weights, num_blocks, block_size);
      auto vocabulary = tokenizer::Vocabulary::from_file(tokenizer_json);
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

}  // namespace iol::testing
