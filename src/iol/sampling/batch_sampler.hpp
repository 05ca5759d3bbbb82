// The host implementation of a backend step's sampling half: SamplingBatch + logits → SampledBatch,
// one sample() per row. The CPU backend uses it; it is also the reference the CUDA sampler is
// tested against (tests/gpu/sampler_kernel_test.cu).
#pragma once
#include <cstdint>
#include <span>

#include "iol/sampling/sampling_batch.hpp"

namespace iol::sampling {

// A row whose logits hold NaN or Inf gets this token (and NaN logprobs): the engine fails that
// request with a clear error instead of emitting token 0 for ever. Any backend's sampler meets
// the same contract (an id outside [0, vocab) marks a failed row).
inline constexpr int32_t kInvalidToken = -1;

// `logits` holds the step's logits rows, [num_logits_rows][vocab]; row r reads row
// batch.rows[r].logits_row. Resizes `out` to the batch's rows.
void sample_batch_on_host(std::span<const float> logits, int64_t vocab, const SamplingBatch& batch, SampledBatch& out);

}  // namespace iol::sampling
