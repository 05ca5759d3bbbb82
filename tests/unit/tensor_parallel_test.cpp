// Tensor parallelism on the CPU (issue 17, acceptance 1): every weight's shards reassemble into
// exactly its bytes, and a forward over 2 or 4 simulated ranks (all-reduce by summation) equals
// the unsharded CPU backend within fp32 summation-order error: 1e-4 × the row's max |logit|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "../support/backend_batches.hpp"
#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/backend/cpu/tensor_parallel_reference.hpp"
#include "iol/core/error.hpp"
#include "iol/model/model_weights.hpp"
#include "iol/model/presets.hpp"
#include "iol/model/tensor_parallel.hpp"

namespace iol::model {
namespace {

struct Case {
  const char* preset;
  int world;
};

// tiny: 4 heads, 2 KV heads (world 4 replicates each KV head on 2 ranks); tiny-qwen2: q/k/v
// biases, tied embeddings, 1 KV head; tiny-llama3.1: head_dim 128, untied LM head, 1 KV head.
const Case kCases[] = {{"tiny", 1},       {"tiny", 2},          {"tiny", 4},          {"tiny-qwen2", 2},
                       {"tiny-qwen2", 4}, {"tiny-llama3.1", 2}, {"tiny-llama3.1", 4}};

std::string case_name(const Case& c) { return std::string(c.preset) + " over " + std::to_string(c.world); }

TEST(TensorParallel, ShardsReassembleEveryWeightExactly) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(case_name(c));
    ModelConfig config = preset_or_throw(c.preset);
    config.vocab_size = 509;  // not a multiple of the world: the last vocab slice is shorter
    auto weights = ModelWeights::dummy(config, 11, DType::BF16);
    std::vector<RankWeights> ranks;
    for (int r = 0; r < c.world; ++r) ranks.push_back(shard_weights(config, weights->all(), r, c.world));
    for (const auto& [name, tensor] : weights->all()) {
      SCOPED_TRACE(name);
      std::vector<const TensorShard*> shards;
      std::vector<ShardSlice> slices;
      int64_t rows = 0, columns = 0;
      for (const RankWeights& rank : ranks) {
        const TensorShard& shard = rank.shards.at(name);
        shards.push_back(&shard);
        slices.push_back(shard_slice(name, config, rank.shape));
        ASSERT_EQ(shard.data.size(), static_cast<size_t>(shard.view().numel()) * dtype_size(shard.dtype));
        rows += shard.shape[0];
        if (shard.shape.size() == 2) columns += shard.shape[1];
      }
      // Split along one axis, or replicated; KV heads replicate when there are fewer than ranks.
      const ShardAxis axis = slices[0].axis;
      const bool kv = name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos;
      const int64_t copies = kv && config.num_key_value_heads < c.world ? c.world / config.num_key_value_heads : 1;
      if (axis == ShardAxis::Rows) EXPECT_EQ(rows, tensor->shape[0] * copies);
      if (axis == ShardAxis::Columns) EXPECT_EQ(columns, tensor->shape[1]);
      const std::vector<std::byte> full = reassemble_tensor(shards, slices, tensor->shape);
      ASSERT_EQ(full.size(), tensor->nbytes);
      EXPECT_EQ(std::memcmp(full.data(), tensor->data, full.size()), 0);
    }
    // The vocabulary slices: ceil(509 / world) each, the last one shorter, covering it once.
    int64_t vocab = 0;
    for (const RankWeights& rank : ranks) {
      EXPECT_EQ(rank.shape.vocab_begin, vocab);
      vocab += rank.shape.vocab;
    }
    EXPECT_EQ(vocab, 509);
  }
}

TEST(TensorParallel, ShapesThatDoNotDivideAreRefusedWithTheReason) {
  const ModelConfig tiny = preset_or_throw("tiny");  // 4 heads, 2 KV heads, intermediate 768
  const auto message = [&](int rank, int world) {
    try {
      tensor_parallel_shape(tiny, rank, world);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(0, 3), "tensor parallel: 4 attention heads do not divide over 3 ranks");
  EXPECT_EQ(message(2, 2), "tensor parallel: rank 2 outside [0, 2)");
  EXPECT_EQ(message(0, 0), "tensor parallel: world size 0 must be >= 1");
  const auto message_for = [](const ModelConfig& config, int world) {
    try {
      tensor_parallel_shape(config, 0, world);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ModelConfig odd_kv = tiny;
  odd_kv.num_attention_heads = 12;
  odd_kv.num_key_value_heads = 3;
  EXPECT_EQ(message_for(odd_kv, 2), "tensor parallel: 3 KV heads neither divide over 2 ranks nor replicate evenly onto them");
  ModelConfig odd_mlp = tiny;
  odd_mlp.intermediate_size = 770;
  EXPECT_EQ(message_for(odd_mlp, 4), "tensor parallel: intermediate size 770 does not divide over 4 ranks");
  EXPECT_THROW(shard_slice("model.layers.0.self_attn.rotary_emb.inv_freq", tiny, tensor_parallel_shape(tiny, 0, 2)), Error);
}

// Every position's logits of one prompt, the simulated ranks against the CPU backend.
TEST(TensorParallel, SimulatedRanksEqualTheUnshardedForward) {
  ThreadPool pool(0);
  for (const Case& c : kCases) {
    SCOPED_TRACE(case_name(c));
    const ModelConfig config = preset_or_throw(c.preset);
    auto weights = ModelWeights::dummy(config, 5, DType::BF16);
    const auto prompt = testing::random_prompts({23}, 3, config.vocab_size)[0];
    backend::cpu::CpuBackend cpu(config, weights, 8, 4);
    const std::vector<float> reference = testing::prefill_logits(cpu, {prompt});
    std::vector<RankWeights> ranks;
    for (int r = 0; r < c.world; ++r) ranks.push_back(shard_weights(config, weights->all(), r, c.world));
    const std::vector<float> sharded = backend::cpu::tensor_parallel_prompt_logits(config, ranks, prompt, pool);
    ASSERT_EQ(sharded.size(), reference.size());
    const size_t vocab = static_cast<size_t>(config.vocab_size);
    double worst = 0;
    for (size_t t = 0; t < prompt.size(); ++t) {
      float row_max = 0, row_diff = 0;
      for (size_t j = 0; j < vocab; ++j) {
        const float ref = reference[t * vocab + j], got = sharded[t * vocab + j];
        ASSERT_TRUE(std::isfinite(ref) && std::isfinite(got)) << "position " << t << ", token " << j;
        row_max = std::max(row_max, std::fabs(ref));
        row_diff = std::max(row_diff, std::fabs(got - ref));
      }
      ASSERT_GT(row_max, 0.0f) << "position " << t;
      EXPECT_LE(row_diff, 1e-4f * row_max) << "position " << t;
      worst = std::max(worst, static_cast<double>(row_diff / row_max));
    }
    std::printf("[ tensor parallel ] %s: worst max|dlogit|/max|logit| %.2e over %zu positions\n", case_name(c).c_str(),
                worst, prompt.size());
  }
}

}  // namespace
}  // namespace iol::model
