// Backend: runs one engine step — the model forward for a ForwardBatch against the paged KV cache
// it owns, then sampling — and returns token ids. Implementations: cpu/ (the fp32 reference) and
// cuda/. The engine sizes its block pool from kv_cache_spec(), which the backend fixes after
// loading the weights.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "iol/backend/forward_batch.hpp"
#include "iol/core/dtype.hpp"
#include "iol/sampling/sampling_batch.hpp"

namespace iol::backend {

// Shape of the paged KV cache. Layout per layer, for K and V separately:
// [num_blocks][block_size][num_kv_heads][head_dim] (docs/kv-cache.md).
struct KvCacheShape {
  int64_t num_blocks = 0;
  int64_t block_size = 16;
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;

  int64_t elements_per_block_per_layer() const { return block_size * num_kv_heads * head_dim; }
};

// What the engine needs to know about the KV pool the backend allocated.
struct KvCacheSpec {
  KvCacheShape shape;
  DType dtype = DType::F32;
  int64_t bytes_per_block = 0;  // K and V, all layers
};

// Measured limits of the device a backend runs on (bytes/s and FLOP/s; 0 when not measured).
struct HardwareCeilings {
  double read_bytes_per_s = 0;   // read-only stream over stream_bytes
  double copy_bytes_per_s = 0;   // device-to-device copy, bytes read + written
  double bf16_gemm_flops = 0;    // BF16 GEMM 8192³, fp32 accumulation
  int64_t stream_bytes = 0;
};

// Cumulative device time of execute() calls, for backends that can time the device: busy is from
// each step's first upload to its last download, idle is from the end of one step to the start of
// the next (the host work the device waited for: scheduling, staging, output processing).
struct DeviceTimeline {
  int64_t steps = 0;
  double busy_s = 0.0;
  double idle_s = 0.0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual const KvCacheSpec& kv_cache_spec() const = 0;
  const KvCacheShape& kv_cache_shape() const { return kv_cache_spec().shape; }
  virtual int64_t vocab_size() const = 0;
  // One step: writes the new tokens' K/V into their slots, computes the logits of the rows in
  // batch.logits_indices and draws one token per sampling row into `out` (resized to the rows);
  // speculative runs are verified, their rows after a rejection emitting sampling::kNotEmitted.
  virtual void execute(const ForwardBatch& batch, const sampling::SamplingBatch& sampling,
                       sampling::SampledBatch& out) = 0;
  // The forward alone: logits_indices.size() × vocab_size fp32 logits on the host. For tests and
  // parity checks; the engine never asks for logits.
  virtual void compute_logits(const ForwardBatch& batch, std::span<float> logits) = 0;
  // Copies whole KV blocks (every layer, K and V), {source, destination} pairs: copy-on-write
  // of blocks shared by parallel samples. Runs before the step's forward.
  virtual void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) = 0;
  // The device's bandwidth and GEMM ceilings, measured now (seconds of device time), where the
  // backend can; the benchmark stores them beside its figures.
  virtual std::optional<HardwareCeilings> measure_ceilings() { return std::nullopt; }
  // Whether execute() verifies speculative runs (SamplingRow::proposed_token, spec/verifier.hpp):
  // logits for every position of a run and the verifier's rule behind the backend.
  virtual bool supports_speculative_decoding() const { return false; }
  virtual std::optional<DeviceTimeline> device_timeline() const { return std::nullopt; }
};

}  // namespace iol::backend
