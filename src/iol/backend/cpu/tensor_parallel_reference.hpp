// The fp32 reference of a tensor-parallel forward (docs/tensor-parallel.md): one prompt
// (positions 0..n-1, causal attention, no KV cache) computed by `ranks.size()` simulated ranks,
// each with its own shards only (model/tensor_parallel.hpp). Where the GPUs would communicate,
// the ranks' partials meet here: the vocab-parallel embedding and the row-parallel O and down
// projections are summed (the all-reduce; the biases of O and down added once after it), the
// vocab-parallel LM head's slices concatenated (the gather). It equals the unsharded forward up
// to fp32 summation order, which is what the multi-GPU backend is checked against.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/core/thread_pool.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/tensor_parallel.hpp"

namespace iol::backend::cpu {

// Logits [ids.size()][vocab] of every position. ranks[r] is rank r's weights (shard_weights).
std::vector<float> tensor_parallel_prompt_logits(const model::ModelConfig& config,
                                                 const std::vector<model::RankWeights>& ranks,
                                                 std::span<const int32_t> ids, ThreadPool& pool);

}  // namespace iol::backend::cpu
