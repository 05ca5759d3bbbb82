// CudaBackend: the Llama-family forward in bf16 on an NVIDIA GPU. Weights in one allocation (QKV
// and gate/up fused), activations reserved for the largest step, the paged KV pool in one
// allocation; cuBLASLt GEMMs, the kernels under kernels/, sampling on the device, and decode-only
// steps replayed from CUDA graphs captured per batch-size bucket. Nothing is allocated per step.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "iol/backend/backend.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/model_weights.hpp"
#include "iol/quant/quant_scheme.hpp"

namespace iol::backend::cuda {

struct CudaBackendOptions {
  int64_t block_size = 16;
  int64_t num_kv_blocks = 0;          // > 0: exactly this many blocks (tests)
  int64_t kv_cache_memory = 0;        // > 0: the pool's bytes; else gpu_memory_utilization decides
  double gpu_memory_utilization = 0.90;  // of total device memory, for weights + activations + KV
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;          // 0 = the config's max_position_embeddings
  int64_t max_logits_rows = 0;       // rows compute_logits may ask for; 0 = max_num_seqs (engine steps)
  // Speculative decoding: a verified run is k + 1 sampling and logits rows of one sequence, and
  // runs happen in steps of at most speculative_max_batch sequences (0 = max_num_seqs); both
  // size the per-step row buffers (the sampler's workspace is ~1 MiB per row at 128k tokens).
  int64_t max_speculative_tokens = 0;
  int64_t speculative_max_batch = 0;
  bool cuda_graphs = true;
  // Steps of at most gemv_max_rows tokens run their linear layers through kernels::gemv (norm,
  // SwiGLU and residual fused in) instead of cuBLASLt + separate kernels. 0 = the measured
  // crossover: 1 row in bf16 (on the H200 the GEMV beats cuBLASLt at 1 row by ~2% and loses at 2
  // and 4 rows by 9% and 24%; docs/performance.md), kernels::kMaxGemvRows for 8-bit weights.
  bool decode_gemv = true;
  int gemv_max_rows = 0;
  // 8-bit weights of the decoder layers' linear layers, quantized per output channel at load time
  // (docs/quantization.md); embeddings, norms and the LM head stay bf16.
  quant::QuantScheme quantization = quant::QuantScheme::None;
  // Fp8: K and V stored as E4M3 codes with a per-tensor scale of 1 (docs/quantization.md), written
  // by rope_kv_write and widened to bf16 tiles inside the attention kernels.
  quant::KvCacheDtype kv_cache_dtype = quant::KvCacheDtype::Auto;
  int device = 0;
};

class CudaBackend final : public Backend {
 public:
  // Weights copied from host tensors (a checkpoint, or host dummy weights), converted to bf16.
  CudaBackend(const model::ModelConfig& config, const model::ModelWeights& weights, const CudaBackendOptions& options);
  // Dummy weights drawn on the device: the values of ModelWeights::dummy(config, seed, BF16).
  CudaBackend(const model::ModelConfig& config, uint64_t dummy_seed, const CudaBackendOptions& options);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }
  const KvCacheSpec& kv_cache_spec() const override;
  int64_t vocab_size() const override;
  void execute(const ForwardBatch& batch, const sampling::SamplingBatch& sampling, sampling::SampledBatch& out) override;
  void compute_logits(const ForwardBatch& batch, std::span<float> logits) override;
  void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) override;
  std::optional<HardwareCeilings> measure_ceilings() override;
  std::optional<DeviceTimeline> device_timeline() const override;
  // Proposals are verified after the device sampler's plain draws (spec::verify_sampled_runs);
  // draft-model proposals under sampling fetch their rows' logits.
  bool supports_speculative_decoding() const override { return true; }

  double load_seconds() const;
  // "bf16", "fp8 W8A8 (cuBLASLt scale vectors)", ...: what the linear layers run as.
  std::string linear_description() const;
  // The KV cache of one layer as host values (bf16 → float), [num_blocks][block_size][kv_heads][head_dim].
  std::vector<float> read_kv_cache(int64_t layer, bool values) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iol::backend::cuda
