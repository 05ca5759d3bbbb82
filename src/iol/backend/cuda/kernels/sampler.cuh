// The sampler on the device: the same contract as the host sampler (sampling/sampler.hpp):
// raw logprobs, then penalties and masked tokens, then greedy argmax or temperature → top-k →
// top-p → min-p → a Gumbel-max draw with the Philox uniforms of core/philox.hpp.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "iol/sampling/sampling_row.hpp"  // C++17-clean: kernels compile as C++17

namespace iol::backend::cuda::kernels {

struct SamplerParams {
  const float* logits = nullptr;           // [num_logits_rows][vocab] fp32
  int vocab = 0;
  const sampling::SamplingRow* rows = nullptr;  // device copy, [num_rows]
  int num_rows = 0;
  const int32_t* token_ids = nullptr;      // device copy of SamplingBatch::token_ids
  void* workspace = nullptr;               // sampler_workspace_bytes(max_rows, vocab)
  int32_t* out_tokens = nullptr;           // [num_rows]
  float* out_logprobs = nullptr;           // [num_rows]
  int32_t* out_top_ids = nullptr;          // [num_rows][kMaxLogprobs]
  float* out_top_logprobs = nullptr;       // [num_rows][kMaxLogprobs]
};

void sample(const SamplerParams& params, cudaStream_t stream);
size_t sampler_workspace_bytes(int max_rows, int vocab);

}  // namespace iol::backend::cuda::kernels
