#include "iol/sampling/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "iol/core/error.hpp"

namespace iol::sampling {

void SamplingParams::validate(int64_t vocab_size) const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    fail("sampling: temperature must be >= 0 (got {})", temperature);
  if (top_k < -1) fail("sampling: top_k must be -1, 0 (disabled) or positive (got {})", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("sampling: top_p must be in (0, 1] (got {})", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail("sampling: min_p must be in [0, 1] (got {})", min_p);
  if (!(repetition_penalty > 0.0f)) fail("sampling: repetition_penalty must be > 0 (got {})", repetition_penalty);
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    fail("sampling: presence_penalty must be in [-2, 2] (got {})", presence_penalty);
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    fail("sampling: frequency_penalty must be in [-2, 2] (got {})", frequency_penalty);
  if (max_tokens < 1) fail("sampling: max_tokens must be >= 1 (got {})", max_tokens);
  if (n < 1 || n > kMaxParallelSamples) fail("sampling: n must be in [1, {}] (got {})", kMaxParallelSamples, n);
  if (min_tokens < 0 || min_tokens > max_tokens)
    fail("sampling: min_tokens must be in [0, max_tokens] (got {})", min_tokens);
  if (logprobs < 0 || logprobs > vocab_size) fail("sampling: logprobs must be in [0, {}] (got {})", vocab_size, logprobs);
  for (auto id : stop_token_ids)
    if (id < 0 || id >= vocab_size) fail("sampling: stop token id {} is outside the vocabulary [0, {})", id, vocab_size);
  for (const auto& s : stop)
    if (s.empty()) fail("sampling: stop strings must not be empty");
}

void apply_penalties(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> prompt_ids,
                     std::span<const int32_t> output_ids) {
  if (params.repetition_penalty != 1.0f) {
    // Each token seen in prompt or output once: positive logits divided, negative multiplied.
    std::vector<bool> seen(logits.size(), false);
    for (auto ids : {prompt_ids, output_ids})
      for (auto id : ids) seen[static_cast<size_t>(id)] = true;
    for (size_t i = 0; i < logits.size(); ++i)
      if (seen[i]) logits[i] = logits[i] > 0 ? logits[i] / params.repetition_penalty : logits[i] * params.repetition_penalty;
  }
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int32_t> counts;
    for (auto id : output_ids) ++counts[id];
    for (const auto& [id, count] : counts)
      logits[static_cast<size_t>(id)] -= params.presence_penalty + params.frequency_penalty * static_cast<float>(count);
  }
}

void mask_tokens(std::span<float> logits, std::span<const int32_t> tokens) {
  for (auto id : tokens)
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[static_cast<size_t>(id)] = -INFINITY;
}

int32_t argmax(std::span<const float> logits) {
  // First maximum wins, as torch.argmax.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<float> log_softmax(std::span<const float> logits) {
  double max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max_logit);
  double log_sum = max_logit + std::log(sum);
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - log_sum);
  return out;
}

std::vector<double> sampling_distribution(std::span<const float> logits, const SamplingParams& params) {
  const size_t n = logits.size();
  std::vector<double> probs(n);
  double max_logit = -INFINITY;
  for (float x : logits) max_logit = std::max(max_logit, static_cast<double>(x));
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += (probs[i] = std::exp((logits[i] - max_logit) / params.temperature));
  for (auto& p : probs) p /= sum;

  std::vector<bool> keep(n, true);
  // Rank tokens by probability (ties: lower id first), only when top-k or top-p needs it.
  std::vector<int32_t> order;
  if (params.top_k > 0 || params.top_p < 1.0f) {
    order.resize(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  }
  if (params.top_k > 0)
    for (size_t r = static_cast<size_t>(params.top_k); r < n; ++r) keep[static_cast<size_t>(order[r])] = false;
  if (params.top_p < 1.0f) {
    // Keep the smallest head of the ranking whose mass reaches top_p (the most likely token always stays).
    double kept_mass = 0.0, cumulative = 0.0;
    for (auto id : order) if (keep[static_cast<size_t>(id)]) kept_mass += probs[static_cast<size_t>(id)];
    for (auto id : order) {
      if (!keep[static_cast<size_t>(id)]) continue;
      if (cumulative >= params.top_p * kept_mass) keep[static_cast<size_t>(id)] = false;
      cumulative += probs[static_cast<size_t>(id)];
    }
  }
  if (params.min_p > 0.0f) {
    const double p_max = *std::max_element(probs.begin(), probs.end());
    for (size_t i = 0; i < n; ++i)
      if (probs[i] < params.min_p * p_max) keep[i] = false;
  }
  double kept = 0.0;
  for (size_t i = 0; i < n; ++i) kept += keep[i] ? probs[i] : 0.0;
  for (size_t i = 0; i < n; ++i) probs[i] = keep[i] ? probs[i] / kept : 0.0;
  return probs;
}

SampledToken sample(std::span<float> logits, const SamplingParams& params, std::span<const int32_t> prompt_ids,
                    std::span<const int32_t> output_ids, std::span<const int32_t> masked_tokens, const RandomKey& key) {
  SampledToken result;
  std::vector<float> raw_logprobs = log_softmax(logits);
  apply_penalties(logits, params, prompt_ids, output_ids);
  mask_tokens(logits, masked_tokens);
  if (params.greedy()) {
    result.token = argmax(logits);
  } else {
    // Gumbel-max over the kept tokens (probability > 0). The score is formed in float exactly as
    // the CUDA sampler forms it (one division, one addition), so both pick the same token.
    const std::vector<double> probs = sampling_distribution(logits, params);
    float best = -INFINITY;
    result.token = -1;
    for (size_t i = 0; i < probs.size(); ++i) {
      if (probs[i] == 0.0) continue;
      const float score = logits[i] / params.temperature + gumbel_noise(key, static_cast<int32_t>(i));
      if (result.token < 0 || score > best) {
        best = score;
        result.token = static_cast<int32_t>(i);
      }
    }
  }
  result.logprob = raw_logprobs[static_cast<size_t>(result.token)];
  if (params.logprobs > 0) {
    std::vector<int32_t> order(raw_logprobs.size());
    std::iota(order.begin(), order.end(), 0);
    auto top = order.begin() + params.logprobs;
    std::partial_sort(order.begin(), top, order.end(), [&](int32_t a, int32_t b) {
      return raw_logprobs[a] != raw_logprobs[b] ? raw_logprobs[a] > raw_logprobs[b] : a < b;
    });
    for (auto it = order.begin(); it != top; ++it) result.top_logprobs.emplace_back(*it, raw_logprobs[*it]);
  }
  return result;
}

}  // namespace iol::sampling
