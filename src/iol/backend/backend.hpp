// Backend: runs the model forward for a ForwardBatch against a paged KV cache it owns.
// Implementations: cpu/ (the fp32 reference) and, later, cuda/.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "iol/backend/forward_batch.hpp"

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

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual const KvCacheShape& kv_cache_shape() const = 0;
  virtual int64_t vocab_size() const = 0;
  // Writes the new tokens' K/V into their slots, then fills `logits` with
  // logits_indices.size() × vocab_size fp32 values.
  virtual void forward(const ForwardBatch& batch, std::span<float> logits) = 0;
  // Copies whole KV blocks (every layer, K and V), {source, destination} pairs: copy-on-write
  // of blocks shared by parallel samples. Runs before the step's forward.
  virtual void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) = 0;
};

}  // namespace iol::backend
