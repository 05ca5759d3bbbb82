// CpuBackend: the reference Llama forward in fp32 arithmetic over bf16/f16/f32 weights,
// multi-threaded, attention reading K/V through block tables. Clarity over speed: every other
// backend is checked against it.
#pragma once
#include <memory>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/backend/cpu/cpu_ops.hpp"
#include "iol/core/thread_pool.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/model_weights.hpp"

namespace iol::backend::cpu {

class CpuBackend final : public Backend {
 public:
  // num_threads 0 = all cores. A quantization scheme other than none simulates it (quantize,
  // dequantize, fp32 math: docs/quantization.md) on the decoder layers' linear layers; embeddings,
  // norms and the LM head stay in the checkpoint's dtype. kv_dtype fp8 simulates the CUDA FP8 KV
  // cache: each K/V value is stored as decode(encode_e4m3(bf16(x))) (scale 1), still in fp32.
  CpuBackend(const model::ModelConfig& config, std::shared_ptr<const model::ModelWeights> weights,
             int64_t num_kv_blocks, int64_t block_size, size_t num_threads = 0,
             quant::QuantScheme scheme = quant::QuantScheme::None,
             quant::KvCacheDtype kv_dtype = quant::KvCacheDtype::Auto);

  std::string name() const override { return "cpu"; }
  const KvCacheSpec& kv_cache_spec() const override { return kv_spec_; }
  int64_t vocab_size() const override { return config_.vocab_size; }
  void execute(const ForwardBatch& batch, const sampling::SamplingBatch& sampling, sampling::SampledBatch& out) override;
  void compute_logits(const ForwardBatch& batch, std::span<float> logits) override;
  void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) override;
  bool supports_speculative_decoding() const override { return true; }

  // Bytes of KV cache per block (K and V, all layers, fp32) for sizing the pool from a budget.
  static int64_t kv_bytes_per_block(const model::ModelConfig& config, int64_t block_size);

 private:
  void attention(const ForwardBatch& batch, int64_t layer, const float* q, float* out);
  void write_kv(const ForwardBatch& batch, int64_t layer, const float* k, const float* v);
  // One decoder linear layer (`which` indexes QuantizedLayer::linears) in the backend's scheme.
  void project(const float* x, int64_t rows, int64_t in_features, int64_t layer, int which,
               const model::LinearWeights& w, float* y);

  model::ModelConfig config_;
  std::shared_ptr<const model::ModelWeights> weights_;
  quant::QuantScheme scheme_ = quant::QuantScheme::None;
  quant::KvCacheDtype kv_dtype_ = quant::KvCacheDtype::Auto;
  // Per layer, when the scheme quantizes: q, k, v, o, gate, up, down.
  struct QuantizedLayer {
    QuantizedLinear linears[7];
  };
  std::vector<QuantizedLayer> quantized_;
  KvCacheSpec kv_spec_;
  std::vector<float> logits_;  // execute()'s logits, reused
  // [layer][block][offset][kv_head][head_dim]; left uninitialized: pages are touched only when used.
  std::unique_ptr<float[]> k_cache_, v_cache_;
  std::vector<float> inv_freq_;           // RoPE inverse frequencies, head_dim / 2
  ThreadPool pool_;
};

}  // namespace iol::backend::cpu
