// CPU reference backend: batching, chunking and paging must not change the numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/backend/cpu/cpu_ops.hpp"
#include "iol/core/error.hpp"
#include "iol/backend/rope.hpp"
#include "iol/model/presets.hpp"

namespace iol::backend::cpu {
namespace {

// One sequence's part of a batch: its new tokens, first position and block table.
struct SeqPart {
  std::vector<int32_t> ids;
  int32_t start = 0;
  std::vector<int32_t> blocks;
};

// Runs one forward over several sequences; returns logits of every token (tokens × vocab).
std::vector<float> run(CpuBackend& backend, const std::vector<SeqPart>& parts) {
  const int32_t block_size = static_cast<int32_t>(backend.kv_cache_shape().block_size);
  int32_t max_blocks = 0;
  for (const auto& p : parts) max_blocks = std::max(max_blocks, static_cast<int32_t>(p.blocks.size()));
  std::vector<int32_t> ids, positions, query_start{0}, context_lens, tables, rows;
  std::vector<int64_t> slots;
  for (const auto& p : parts) {
    for (size_t i = 0; i < p.ids.size(); ++i) {
      int32_t pos = p.start + static_cast<int32_t>(i);
      rows.push_back(static_cast<int32_t>(ids.size()));
      ids.push_back(p.ids[i]);
      positions.push_back(pos);
      slots.push_back(static_cast<int64_t>(p.blocks[static_cast<size_t>(pos / block_size)]) * block_size + pos % block_size);
    }
    query_start.push_back(static_cast<int32_t>(ids.size()));
    context_lens.push_back(p.start + static_cast<int32_t>(p.ids.size()));
    std::vector<int32_t> table = p.blocks;
    table.resize(static_cast<size_t>(max_blocks), -1);
    tables.insert(tables.end(), table.begin(), table.end());
  }
  ForwardBatch batch{ids, positions, slots, query_start, context_lens, tables, max_blocks, rows};
  std::vector<float> logits(rows.size() * static_cast<size_t>(backend.vocab_size()));
  backend.compute_logits(batch, logits);
  return logits;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

class CpuBackendTest : public ::testing::Test {
 protected:
  model::ModelConfig config = model::preset_or_throw("tiny");
  std::shared_ptr<const model::ModelWeights> weights = model::ModelWeights::dummy(config, 5, DType::BF16);
  std::vector<int32_t> prompt_a = {256, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190};
  std::vector<int32_t> prompt_b = {256, 7, 8, 9};
};

TEST_F(CpuBackendTest, ChunkedPrefillEqualsOnePrefill) {
  CpuBackend whole(config, weights, 8, 4);
  auto expected = run(whole, {{prompt_a, 0, {0, 1, 2, 3, 4}}});
  CpuBackend chunked(config, weights, 8, 4);
  std::vector<int32_t> first(prompt_a.begin(), prompt_a.begin() + 7), second(prompt_a.begin() + 7, prompt_a.end());
  run(chunked, {{first, 0, {5, 2, 7, 0, 1}}});
  auto last = run(chunked, {{second, 7, {5, 2, 7, 0, 1}}});
  const size_t vocab = static_cast<size_t>(config.vocab_size);
  EXPECT_LT(max_abs_diff(last.data(), expected.data() + 7 * vocab, second.size() * vocab), 1e-4);
}

TEST_F(CpuBackendTest, BatchedSequencesEqualEachAlone) {
  const size_t vocab = static_cast<size_t>(config.vocab_size);
  CpuBackend alone_a(config, weights, 8, 4), alone_b(config, weights, 8, 4), batched(config, weights, 8, 4);
  auto a = run(alone_a, {{prompt_a, 0, {0, 1, 2, 3, 4}}});
  auto b = run(alone_b, {{prompt_b, 0, {0}}});
  auto both = run(batched, {{prompt_b, 0, {6}}, {prompt_a, 0, {1, 3, 5, 7, 0}}});
  EXPECT_LT(max_abs_diff(both.data(), b.data(), b.size()), 1e-4);
  EXPECT_LT(max_abs_diff(both.data() + prompt_b.size() * vocab, a.data(), a.size()), 1e-4);
  // A decode step for both after the prefill.
  auto decode_both = run(batched, {{{42}, 4, {6, 2}}, {{43}, 20, {1, 3, 5, 7, 0, 4}}});
  auto decode_a = run(alone_a, {{{43}, 20, {0, 1, 2, 3, 4, 5}}});
  EXPECT_LT(max_abs_diff(decode_both.data() + vocab, decode_a.data(), vocab), 1e-4);
}

TEST_F(CpuBackendTest, SlidingWindowOfOneMakesTokensIndependent) {
  config.layer_sliding_window.assign(static_cast<size_t>(config.num_hidden_layers), 1);
  CpuBackend together(config, weights, 8, 4), single(config, weights, 8, 4);
  auto all = run(together, {{prompt_b, 0, {0}}});
  const size_t vocab = static_cast<size_t>(config.vocab_size);
  // Token 3 alone at position 3 (its slot only; earlier slots hold nothing of this sequence).
  auto last = run(single, {{{prompt_b[3]}, 3, {1}}});
  EXPECT_LT(max_abs_diff(last.data(), all.data() + 3 * vocab, vocab), 1e-5);
}

TEST(Rope, Llama3ScalingKeepsHighFrequenciesAndDividesLowOnes) {
  model::RopeConfig rope{model::RopeType::Llama3, 500000.0, 8.0, 1.0, 4.0, 8192};
  auto base = backend::rope_inverse_frequencies(model::RopeConfig{}, 128);
  model::RopeConfig plain{model::RopeType::Default, 500000.0};
  auto unscaled = backend::rope_inverse_frequencies(plain, 128);
  auto scaled = backend::rope_inverse_frequencies(rope, 128);
  EXPECT_FLOAT_EQ(base[1], 1.0f / std::pow(10000.0f, 2.0f / 128.0f));
  for (size_t i = 0; i < scaled.size(); ++i) {
    double wavelen = 2 * std::numbers::pi / unscaled[i];
    if (wavelen < 8192.0 / 4) EXPECT_FLOAT_EQ(scaled[i], unscaled[i]) << i;
    else if (wavelen > 8192.0) EXPECT_FLOAT_EQ(scaled[i], unscaled[i] / 8.0f) << i;
    else {
      EXPECT_LE(scaled[i], unscaled[i]);
      EXPECT_GE(scaled[i], unscaled[i] / 8.0f);
    }
  }
  model::RopeConfig linear{model::RopeType::Linear, 10000.0, 4.0};
  EXPECT_FLOAT_EQ(rope_inverse_frequencies(linear, 64)[3], rope_inverse_frequencies(model::RopeConfig{}, 64)[3] / 4.0f);
}

}  // namespace
TEST(CpuOps, SixteenBitWeightsAreReadAtAnyAlignment) {
  // A safetensors header of odd length puts BF16 data at an odd address: reads must not assume
  // alignment (UBSan checks this in the debug preset).
  const uint16_t bf16[3] = {0x3f80, 0x4000, 0xc040};  // 1, 2, -3
  std::vector<std::byte> storage(1 + sizeof bf16);
  std::memcpy(storage.data() + 1, bf16, sizeof bf16);
  model::TensorView view;
  view.name = "w";
  view.dtype = DType::BF16;
  view.shape = {3};
  view.data = storage.data() + 1;
  view.nbytes = sizeof bf16;
  float out[3] = {};
  to_f32(view, 0, 3, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 2.0f);
  EXPECT_EQ(out[2], -3.0f);
}

TEST(CpuBackendSizes, KvBytesOverflowIsAnErrorNotAWrappedSize) {
  const model::ModelConfig config = model::preset_or_throw("tiny");
  EXPECT_THROW(CpuBackend::kv_bytes_per_block(config, int64_t{1} << 52), Error);
  EXPECT_EQ(CpuBackend::kv_bytes_per_block(config, 16), 65536);
}

}  // namespace iol::backend::cpu
