// Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): which slice of every weight each of
// `world` ranks holds (docs/tensor-parallel.md). Per layer, QKV and gate/up are column-parallel
// (their output rows split: q by query heads, k/v by KV heads, gate/up by the intermediate size),
// O and down are row-parallel (their input columns split the same way, so each rank's partial sum
// is completed by one all-reduce), the embedding and LM head are vocab-parallel (rows split), and
// norms and the biases of O and down (added once, after the all-reduce) are replicated. With fewer
// KV heads than ranks, each KV head is replicated over world / num_kv_heads consecutive ranks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "iol/model/model_config.hpp"
#include "iol/model/safetensors.hpp"

namespace iol::model {

// What one rank computes: its query heads, KV heads, intermediate slice and vocabulary slice.
struct TensorParallelShape {
  int rank = 0, world = 1;
  int64_t head_begin = 0, heads = 0;        // query heads
  int64_t kv_head_begin = 0, kv_heads = 0;  // KV heads (replicated when num_kv_heads < world)
  int64_t intermediate_begin = 0, intermediate = 0;
  int64_t vocab_begin = 0, vocab = 0;  // ceil(vocab / world) per rank, the last rank's shorter
};

// Throws iol::Error unless world >= 1, rank in [0, world), the query heads and the intermediate
// size divide by world, and num_kv_heads divides by world or world by num_kv_heads.
TensorParallelShape tensor_parallel_shape(const ModelConfig& config, int rank, int world);

enum class ShardAxis { Rows, Columns, Replicated };

// The part of a tensor a rank holds: rows [begin, begin + count) of dimension 0, or columns
// [begin, begin + count) of dimension 1, or all of it.
struct ShardSlice {
  ShardAxis axis = ShardAxis::Replicated;
  int64_t begin = 0, count = 0;
};

// The slice of the named checkpoint tensor (Hugging Face names, weight_layout) a rank holds.
// Throws for a name the layout does not know.
ShardSlice shard_slice(const std::string& name, const ModelConfig& config, const TensorParallelShape& shape);

// A rank's copy of its slice, in the tensor's dtype, bytes exactly the original's.
struct TensorShard {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
  TensorView view() const;  // points into data
};

TensorShard shard_tensor(const TensorView& tensor, const ShardSlice& slice);

// The full tensor's bytes back from every rank's shard and slice (ranks in order): rows and
// columns written where their slices say (a replicated KV head is written by each of its ranks,
// the same bytes), replicated tensors from rank 0. Throws unless the slices cover the tensor.
std::vector<std::byte> reassemble_tensor(const std::vector<const TensorShard*>& shards,
                                         const std::vector<ShardSlice>& slices, const std::vector<int64_t>& full_shape);

// Every tensor of a model, one rank's shards, by name (tied LM head: the embedding's shard).
struct RankWeights {
  TensorParallelShape shape;
  std::map<std::string, TensorShard> shards;
  const TensorView& view(const std::string& name) const;  // throws for an unknown name

 private:
  mutable std::map<std::string, TensorView> views_;
};

RankWeights shard_weights(const ModelConfig& config, const std::map<std::string, const TensorView*>& tensors, int rank,
                          int world);

}  // namespace iol::model
