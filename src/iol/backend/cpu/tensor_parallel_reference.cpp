#include "iol/backend/cpu/tensor_parallel_reference.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <fmt/format.h>

#include "iol/backend/cpu/cpu_ops.hpp"
#include "iol/backend/rope.hpp"
#include "iol/core/error.hpp"

namespace iol::backend::cpu {
namespace {

// The rank's linear layer: its weight shard and, when the checkpoint has one, its bias shard.
model::LinearWeights rank_linear(const model::RankWeights& rank, const std::string& stem, bool with_bias) {
  return {&rank.view(stem + ".weight"), with_bias ? &rank.view(stem + ".bias") : nullptr};
}

void add_bias(float* y, int64_t rows, const model::TensorView& bias) {
  const int64_t n = bias.shape[0];
  std::vector<float> b(static_cast<size_t>(n));
  to_f32(bias, 0, n, b.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) y[r * n + j] += b[static_cast<size_t>(j)];
}

// Causal attention of one rank's query heads over its KV heads, contiguous [token][head][dim].
void rank_attention(const model::ModelConfig& config, const model::TensorParallelShape& s, int64_t window,
                    const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                    int64_t num_tokens, std::vector<float>& out, ThreadPool& pool) {
  const int64_t d = config.head_dim, group = config.num_attention_heads / config.num_key_value_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  pool.parallel_for(static_cast<size_t>(num_tokens * s.heads), [&](size_t begin, size_t end) {
    std::vector<float> scores;
    for (size_t item = begin; item < end; ++item) {
      const int64_t t = static_cast<int64_t>(item) / s.heads, h = static_cast<int64_t>(item) % s.heads;
      const int64_t kv = (s.head_begin + h) / group - s.kv_head_begin;  // this rank's KV head index
      const int64_t first = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
      const float* query = q.data() + (t * s.heads + h) * d;
      scores.resize(static_cast<size_t>(t - first + 1));
      float max_score = -INFINITY;
      for (int64_t p = first; p <= t; ++p) {
        const float score = dot(query, k.data() + (p * s.kv_heads + kv) * d, d) * scale;
        scores[static_cast<size_t>(p - first)] = score;
        max_score = std::max(max_score, score);
      }
      float sum = 0.0f;
      for (float& score : scores) sum += (score = std::exp(score - max_score));
      float* o = out.data() + (t * s.heads + h) * d;
      std::fill_n(o, d, 0.0f);
      for (int64_t p = first; p <= t; ++p) {
        const float weight = scores[static_cast<size_t>(p - first)] / sum;
        const float* value = v.data() + (p * s.kv_heads + kv) * d;
        for (int64_t i = 0; i < d; ++i) o[i] += weight * value[i];
      }
    }
  });
}

}  // namespace

std::vector<float> tensor_parallel_prompt_logits(const model::ModelConfig& config,
                                                 const std::vector<model::RankWeights>& ranks,
                                                 std::span<const int32_t> ids, ThreadPool& pool) {
  if (ranks.empty()) fail("tensor parallel reference: no ranks");
  const int64_t n = static_cast<int64_t>(ids.size()), hidden = config.hidden_size, d = config.head_dim;
  const int64_t vocab = config.vocab_size;
  const double eps = config.rms_norm_eps;
  const std::vector<float> inv_freq = rope_inverse_frequencies(config.rope, d);
  std::vector<int32_t> positions(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 0);
  const model::RankWeights& replicated = ranks[0];  // norms and the O/down biases

  // Vocab-parallel embedding: each rank looks up the ids in its slice, zeros elsewhere; summed.
  std::vector<float> residual(static_cast<size_t>(n * hidden), 0.0f), row(static_cast<size_t>(hidden));
  for (int32_t id : ids)
    if (id < 0 || id >= vocab) fail("token id {} is outside the vocabulary [0, {})", id, vocab);
  for (const model::RankWeights& rank : ranks) {
    const model::TensorView& table = rank.view("model.embed_tokens.weight");
    for (int64_t t = 0; t < n; ++t) {
      const int64_t local = ids[static_cast<size_t>(t)] - rank.shape.vocab_begin;
      if (local < 0 || local >= rank.shape.vocab) continue;
      to_f32(table, local * hidden, hidden, row.data());
      for (int64_t i = 0; i < hidden; ++i) residual[static_cast<size_t>(t * hidden + i)] += row[static_cast<size_t>(i)];
    }
  }

  std::vector<float> normed(residual.size()), reduced(residual.size()), partial(residual.size());
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string prefix = fmt::format("model.layers.{}.", layer);
    const int64_t window = config.layer_sliding_window.empty() ? 0 : config.layer_sliding_window[static_cast<size_t>(layer)];

    rms_norm(residual.data(), n, hidden, replicated.view(prefix + "input_layernorm.weight"), eps, normed.data());
    std::fill(reduced.begin(), reduced.end(), 0.0f);
    for (const model::RankWeights& rank : ranks) {
      const model::TensorParallelShape& s = rank.shape;
      std::vector<float> q(static_cast<size_t>(n * s.heads * d)), k(static_cast<size_t>(n * s.kv_heads * d)),
          v(k.size()), attn(q.size());
      linear(normed.data(), n, hidden, rank_linear(rank, prefix + "self_attn.q_proj", config.qkv_bias), q.data(), pool);
      linear(normed.data(), n, hidden, rank_linear(rank, prefix + "self_attn.k_proj", config.qkv_bias), k.data(), pool);
      linear(normed.data(), n, hidden, rank_linear(rank, prefix + "self_attn.v_proj", config.qkv_bias), v.data(), pool);
      apply_rope(positions, q.data(), s.heads, d, inv_freq, pool);
      apply_rope(positions, k.data(), s.kv_heads, d, inv_freq, pool);
      rank_attention(config, s, window, q, k, v, n, attn, pool);
      linear(attn.data(), n, s.heads * d, rank_linear(rank, prefix + "self_attn.o_proj", false), partial.data(), pool);
      for (size_t i = 0; i < reduced.size(); ++i) reduced[i] += partial[i];  // the all-reduce
    }
    if (config.o_bias) add_bias(reduced.data(), n, replicated.view(prefix + "self_attn.o_proj.bias"));
    for (size_t i = 0; i < residual.size(); ++i) residual[i] += reduced[i];

    rms_norm(residual.data(), n, hidden, replicated.view(prefix + "post_attention_layernorm.weight"), eps, normed.data());
    std::fill(reduced.begin(), reduced.end(), 0.0f);
    for (const model::RankWeights& rank : ranks) {
      const int64_t inter = rank.shape.intermediate;
      std::vector<float> gate(static_cast<size_t>(n * inter)), up(gate.size());
      linear(normed.data(), n, hidden, rank_linear(rank, prefix + "mlp.gate_proj", config.mlp_bias), gate.data(), pool);
      linear(normed.data(), n, hidden, rank_linear(rank, prefix + "mlp.up_proj", config.mlp_bias), up.data(), pool);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = silu(gate[i]) * up[i];
      linear(gate.data(), n, inter, rank_linear(rank, prefix + "mlp.down_proj", false), partial.data(), pool);
      for (size_t i = 0; i < reduced.size(); ++i) reduced[i] += partial[i];  // the all-reduce
    }
    if (config.mlp_bias) add_bias(reduced.data(), n, replicated.view(prefix + "mlp.down_proj.bias"));
    for (size_t i = 0; i < residual.size(); ++i) residual[i] += reduced[i];
  }

  // Vocab-parallel LM head: each rank's logits slice, gathered into place.
  rms_norm(residual.data(), n, hidden, replicated.view("model.norm.weight"), eps, normed.data());
  const std::string head = config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  std::vector<float> logits(static_cast<size_t>(n * vocab));
  for (const model::RankWeights& rank : ranks) {
    const int64_t slice = rank.shape.vocab;
    if (slice == 0) continue;
    std::vector<float> part(static_cast<size_t>(n * slice));
    linear(normed.data(), n, hidden, model::LinearWeights{&rank.view(head), nullptr}, part.data(), pool);
    for (int64_t t = 0; t < n; ++t)
      std::copy_n(part.begin() + t * slice, slice, logits.begin() + t * vocab + rank.shape.vocab_begin);
  }
  return logits;
}

}  // namespace iol::backend::cpu
