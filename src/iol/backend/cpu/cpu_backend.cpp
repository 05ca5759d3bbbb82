#include "iol/backend/cpu/cpu_backend.hpp"

#include <algorithm>
#include <cmath>

#include "iol/backend/cpu/cpu_ops.hpp"
#include "iol/backend/rope.hpp"
#include "iol/spec/verifier.hpp"
#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/quant/codec.hpp"

namespace iol::backend::cpu {

int64_t CpuBackend::kv_bytes_per_block(const model::ModelConfig& config, int64_t block_size) {
  return checked_product({2, config.num_hidden_layers, block_size, config.num_key_value_heads, config.head_dim,
                          static_cast<int64_t>(sizeof(float))},
                         "cpu backend: KV bytes per block (--block-size)");
}

CpuBackend::CpuBackend(const model::ModelConfig& config, std::shared_ptr<const model::ModelWeights> weights,
                       int64_t num_kv_blocks, int64_t block_size, size_t num_threads, quant::QuantScheme scheme,
                       quant::KvCacheDtype kv_dtype)
    : config_(config), weights_(std::move(weights)), scheme_(scheme), kv_dtype_(kv_dtype), pool_(num_threads) {
  if (num_kv_blocks <= 0 || block_size <= 0) fail("cpu backend: KV cache needs blocks > 0 and block_size > 0");
  kv_spec_.shape = {num_kv_blocks, block_size, config.num_hidden_layers, config.num_key_value_heads, config.head_dim};
  kv_spec_.dtype = DType::F32;
  kv_spec_.bytes_per_block = kv_bytes_per_block(config, block_size);
  const int64_t elements = checked_product({config.num_hidden_layers, num_kv_blocks, block_size,
                                            config.num_key_value_heads, config.head_dim},
                                           "cpu backend: KV pool size (--kv-cache-memory)");
  try {
    k_cache_ = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(elements));
    v_cache_ = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(elements));
  } catch (const std::bad_alloc&) {
    fail("cpu backend: cannot allocate the KV pool ({} blocks, {} bytes); lower --kv-cache-memory", num_kv_blocks,
         2 * elements * static_cast<int64_t>(sizeof(float)));
  }
  inv_freq_ = rope_inverse_frequencies(config.rope, config.head_dim);
  if (quant::quantizes_weights(scheme_)) {
    const quant::ElementFormat format = quant::element_format(scheme_);
    for (const model::LayerWeights& lw : weights_->layers) {
      QuantizedLayer& q = quantized_.emplace_back();
      const model::LinearWeights* linears[7] = {&lw.q_proj, &lw.k_proj, &lw.v_proj, &lw.o_proj,
                                                &lw.gate_proj, &lw.up_proj, &lw.down_proj};
      for (int i = 0; i < 7; ++i) q.linears[i] = quantize_linear(*linears[i], format);
    }
  }
}

void CpuBackend::project(const float* x, int64_t rows, int64_t in_features, int64_t layer, int which,
                         const model::LinearWeights& w, float* y) {
  if (quantized_.empty()) return linear(x, rows, in_features, w, y, pool_);
  linear_quantized(x, rows, in_features, quantized_[static_cast<size_t>(layer)].linears[which],
                   quant::quantizes_activations(scheme_), y, pool_);
}

void CpuBackend::write_kv(const ForwardBatch& batch, int64_t layer, const float* k, const float* v) {
  const int64_t kv_size = config_.kv_size();
  const int64_t layer_offset = layer * kv_spec_.shape.num_blocks * kv_spec_.shape.elements_per_block_per_layer();
  for (size_t t = 0; t < batch.num_tokens(); ++t) {
    // A slot addresses [block][offset]; each holds kv_heads × head_dim contiguous values.
    const int64_t base = layer_offset + batch.slot_mapping[t] * kv_size;
    std::copy_n(k + static_cast<int64_t>(t) * kv_size, kv_size, k_cache_.get() + base);
    std::copy_n(v + static_cast<int64_t>(t) * kv_size, kv_size, v_cache_.get() + base);
    if (kv_dtype_ == quant::KvCacheDtype::Fp8) {
      // What the CUDA kernels store: the bf16 K/V as E4M3 codes (scale 1), read back exactly.
      for (float* cache : {k_cache_.get(), v_cache_.get()})
        for (int64_t i = base; i < base + kv_size; ++i)
          cache[i] = quant::decode_e4m3(quant::encode_e4m3(bf16_to_f32(f32_to_bf16(cache[i]))));
    }
  }
}

void CpuBackend::attention(const ForwardBatch& batch, int64_t layer, const float* q, float* out) {
  const int64_t num_heads = config_.num_attention_heads, head_dim = config_.head_dim;
  const int64_t group = num_heads / config_.num_key_value_heads;
  const int64_t kv_size = config_.kv_size(), block_size = kv_spec_.shape.block_size;
  const int64_t window = config_.layer_sliding_window[static_cast<size_t>(layer)];
  const int64_t layer_offset = layer * kv_spec_.shape.num_blocks * kv_spec_.shape.elements_per_block_per_layer();
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  // Token → sequence index, so (token, head) pairs can be spread over threads.
  std::vector<int32_t> seq_of_token(batch.num_tokens());
  for (size_t s = 0; s < batch.num_seqs(); ++s)
    for (int32_t t = batch.query_start_loc[s]; t < batch.query_start_loc[s + 1]; ++t)
      seq_of_token[static_cast<size_t>(t)] = static_cast<int32_t>(s);

  pool_.parallel_for(batch.num_tokens() * static_cast<size_t>(num_heads), [&](size_t begin, size_t end) {
    std::vector<float> scores;
    for (size_t item = begin; item < end; ++item) {
      const size_t t = item / static_cast<size_t>(num_heads);
      const int64_t h = static_cast<int64_t>(item % static_cast<size_t>(num_heads));
      const int64_t kv_head = h / group;
      const int32_t* block_table = batch.block_tables.data() + seq_of_token[t] * batch.max_blocks_per_seq;
      // Causal: the token at position p sees positions [first, p] (first > 0 with a sliding window).
      const int64_t last = batch.positions[t];
      const int64_t first = window > 0 ? std::max<int64_t>(0, last - window + 1) : 0;
      const float* query = q + (static_cast<int64_t>(t) * num_heads + h) * head_dim;
      auto kv_offset = [&](int64_t position) {
        const int64_t block = block_table[position / block_size];
        return layer_offset + (block * block_size + position % block_size) * kv_size + kv_head * head_dim;
      };
      scores.resize(static_cast<size_t>(last - first + 1));
      float max_score = -INFINITY;
      for (int64_t p = first; p <= last; ++p) {
        float score = dot(query, k_cache_.get() + kv_offset(p), head_dim) * scale;
        scores[static_cast<size_t>(p - first)] = score;
        max_score = std::max(max_score, score);
      }
      float sum = 0.0f;
      for (auto& score : scores) sum += (score = std::exp(score - max_score));
      float* o = out + (static_cast<int64_t>(t) * num_heads + h) * head_dim;
      std::fill_n(o, head_dim, 0.0f);
      for (int64_t p = first; p <= last; ++p) {
        const float weight = scores[static_cast<size_t>(p - first)] / sum;
        const float* value = v_cache_.get() + kv_offset(p);
        for (int64_t d = 0; d < head_dim; ++d) o[d] += weight * value[d];
      }
    }
  });
}

void CpuBackend::copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) {
  const int64_t per_block = kv_spec_.shape.elements_per_block_per_layer();
  for (int64_t layer = 0; layer < kv_spec_.shape.num_layers; ++layer) {
    const int64_t layer_offset = layer * kv_spec_.shape.num_blocks * per_block;
    for (const auto& [source, destination] : copies) {
      std::copy_n(k_cache_.get() + layer_offset + source * per_block, per_block, k_cache_.get() + layer_offset + destination * per_block);
      std::copy_n(v_cache_.get() + layer_offset + source * per_block, per_block, v_cache_.get() + layer_offset + destination * per_block);
    }
  }
}

void CpuBackend::execute(const ForwardBatch& batch, const sampling::SamplingBatch& sampling,
                         sampling::SampledBatch& out) {
  // Reused across steps: after the first steps of a run no allocation happens here.
  logits_.resize(batch.logits_indices.size() * static_cast<size_t>(config_.vocab_size));
  compute_logits(batch, logits_);
  // Plain rows as sampling::sample_batch_on_host draws them; speculative runs verified.
  spec::sample_and_verify_on_host(logits_, config_.vocab_size, sampling, out);
}

void CpuBackend::compute_logits(const ForwardBatch& batch, std::span<float> logits) {
  const int64_t num_tokens = static_cast<int64_t>(batch.num_tokens());
  const int64_t hidden = config_.hidden_size, q_size = config_.q_size(), kv_size = config_.kv_size();
  const int64_t inter = config_.intermediate_size, vocab = config_.vocab_size;
  if (logits.size() != batch.logits_indices.size() * static_cast<size_t>(vocab))
    fail("cpu backend: logits buffer holds {} values, batch needs {}", logits.size(),
         batch.logits_indices.size() * static_cast<size_t>(vocab));
  const model::ModelWeights& w = *weights_;

  std::vector<float> residual(static_cast<size_t>(num_tokens * hidden));
  std::vector<float> normed(residual.size()), attn_out(static_cast<size_t>(num_tokens * q_size));
  std::vector<float> q(static_cast<size_t>(num_tokens * q_size)), k(static_cast<size_t>(num_tokens * kv_size)),
      v(static_cast<size_t>(num_tokens * kv_size));
  std::vector<float> gate(static_cast<size_t>(num_tokens * inter)), up(gate.size()), projected(residual.size());

  embedding_lookup(*w.embed_tokens, batch.token_ids, residual.data());
  for (int64_t layer = 0; layer < config_.num_hidden_layers; ++layer) {
    const model::LayerWeights& lw = w.layers[static_cast<size_t>(layer)];
    rms_norm(residual.data(), num_tokens, hidden, *lw.input_norm, config_.rms_norm_eps, normed.data());
    project(normed.data(), num_tokens, hidden, layer, 0, lw.q_proj, q.data());
    project(normed.data(), num_tokens, hidden, layer, 1, lw.k_proj, k.data());
    project(normed.data(), num_tokens, hidden, layer, 2, lw.v_proj, v.data());
    apply_rope(batch.positions, q.data(), config_.num_attention_heads, config_.head_dim, inv_freq_, pool_);
    apply_rope(batch.positions, k.data(), config_.num_key_value_heads, config_.head_dim, inv_freq_, pool_);
    write_kv(batch, layer, k.data(), v.data());
    attention(batch, layer, q.data(), attn_out.data());
    project(attn_out.data(), num_tokens, q_size, layer, 3, lw.o_proj, projected.data());
    for (size_t i = 0; i < residual.size(); ++i) residual[i] += projected[i];

    rms_norm(residual.data(), num_tokens, hidden, *lw.post_attention_norm, config_.rms_norm_eps, normed.data());
    project(normed.data(), num_tokens, hidden, layer, 4, lw.gate_proj, gate.data());
    project(normed.data(), num_tokens, hidden, layer, 5, lw.up_proj, up.data());
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = silu(gate[i]) * up[i];
    project(gate.data(), num_tokens, inter, layer, 6, lw.down_proj, projected.data());
    for (size_t i = 0; i < residual.size(); ++i) residual[i] += projected[i];
  }

  // Final norm and LM head only for the rows whose logits are wanted.
  const int64_t num_rows = static_cast<int64_t>(batch.logits_indices.size());
  std::vector<float> selected(static_cast<size_t>(num_rows * hidden));
  for (int64_t r = 0; r < num_rows; ++r)
    std::copy_n(residual.begin() + batch.logits_indices[static_cast<size_t>(r)] * hidden, hidden,
                selected.begin() + r * hidden);
  rms_norm(selected.data(), num_rows, hidden, *w.final_norm, config_.rms_norm_eps, selected.data());
  linear(selected.data(), num_rows, hidden, model::LinearWeights{w.lm_head, nullptr}, logits.data(), pool_);
}

}  // namespace iol::backend::cpu
