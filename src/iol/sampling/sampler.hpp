// Sampler: logits → next token for one sequence. Order (as vLLM): penalties, then greedy argmax
// or temperature → top-k → top-p → min-p → draw. Logprobs are of the model's raw distribution.
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "iol/core/rng.hpp"
#include "iol/sampling/sampling_params.hpp"

namespace iol::sampling {

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;                                // log p(token) under the raw model distribution
  std::vector<std::pair<int32_t, float>> top_logprobs;  // params.logprobs entries, most likely first
};

// Repetition, presence and frequency penalties, in place.
void apply_penalties(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> prompt_ids,
                     std::span<const int32_t> output_ids);
// Sets logits of `tokens` to -inf (EOS and stop tokens before min_tokens).
void mask_tokens(std::span<float> logits, std::span<const int32_t> tokens);
// Probabilities after temperature, top-k, top-p and min-p (zeros for filtered tokens, sum 1).
std::vector<double> sampling_distribution(std::span<const float> logits, const SamplingParams& params);
// log_softmax of the raw logits.
std::vector<float> log_softmax(std::span<const float> logits);
int32_t argmax(std::span<const float> logits);

// Full pipeline; `logits` is modified (penalties). `rng` is the sequence's generator.
SampledToken sample(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> prompt_ids,
                    std::span<const int32_t> output_ids, std::span<const int32_t> masked_tokens, Rng& rng);

}  // namespace iol::sampling
