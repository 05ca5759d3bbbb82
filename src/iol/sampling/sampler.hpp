// Sampler: logits → next token for one sequence. Order (as vLLM): penalties, then greedy argmax
// or temperature → top-k → top-p → min-p → draw. Logprobs are of the model's raw distribution.
// This is the reference of the contract the CUDA sampler (backend/cuda/kernels/sampler.cuh) meets.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "iol/core/philox.hpp"
#include "iol/sampling/sampling_params.hpp"

namespace iol::sampling {

// What a draw is a function of (core/philox.hpp): the request's seed, which of its n samples, and
// the index of the token being drawn among that sample's output tokens.
struct RandomKey {
  uint64_t seed = 0;
  uint32_t sample_index = 0;
  uint32_t position = 0;
  uint32_t stream = kSamplingStream;  // core/philox.hpp: the target's stream unless a draft draws
};

// Gumbel(0, 1) noise of `token` for the draw keyed by `key`: -log(-log u). Computed in double and
// rounded once to float so host and device agree bit for bit (a float logf may differ by an ulp);
// the CUDA sampler (backend/cuda/kernels/sampler.cu, C++17) computes the same formula.
IOL_HOST_DEVICE float gumbel_noise(const RandomKey& key, int32_t token) {
  const double u = stream_uniform(key.seed, key.sample_index, key.position, static_cast<uint32_t>(token), key.stream);
  return static_cast<float>(-::log(-::log(u)));
}

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

// Full pipeline; `logits` is modified (penalties). The draw is Gumbel-max (Gumbel 1954; Maddison
// et al. 2014): argmax over kept tokens of logit / temperature + gumbel_noise(key, token), ties to
// the lower id. That samples exactly the renormalised kept distribution, needs no prefix sum, and
// makes the token a pure function of (logits, params, key).
SampledToken sample(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> prompt_ids,
                    std::span<const int32_t> output_ids, std::span<const int32_t> masked_tokens, const RandomKey& key);

}  // namespace iol::sampling
