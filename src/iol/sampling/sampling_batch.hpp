// SamplingBatch / SampledBatch: the sampling half of a backend step. One SamplingRow per token to
// draw; several rows may read the same logits row (the n samples of a request draw their first
// token from its prompt's logits). The backend fills a SampledBatch: only token ids and the
// logprobs a request asked for cross back to the engine, never logits.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/sampling/sampling_params.hpp"
#include "iol/sampling/sampling_row.hpp"

namespace iol::sampling {

struct SamplingBatch {
  std::span<const SamplingRow> rows;
  std::span<const int32_t> token_ids;  // the token lists the rows' ranges point into
  // Speculative decoding: the draft model's sampling distributions q, [rows][vocab], read by
  // proposal rows with draft_probs_row >= 0 (empty without a draft model).
  std::span<const float> draft_probs = {};
  // Benchmark only (engine::SpeculativeConfig::forced_acceptance): >= 0 replaces the verifier's
  // verdict by a coin with this acceptance probability.
  double forced_acceptance = -1.0;

  bool has_proposals() const {
    for (const SamplingRow& row : rows)
      if (row.is_proposal()) return true;
    return false;
  }
};

// The token of a row after its run's first rejected proposal: nothing is emitted there.
inline constexpr int32_t kNotEmitted = -2;

// Per row: the drawn token, its logprob under the raw model distribution, and num_top_logprobs
// (id, logprob) pairs in top_ids/top_logprobs[row * kMaxLogprobs + j], most likely first.
struct SampledBatch {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;

  // Sizes the arrays for num_rows rows; keeps capacity (no allocation once warmed up).
  void resize(size_t num_rows) {
    tokens.resize(num_rows);
    logprobs.resize(num_rows);
    top_ids.resize(num_rows * kMaxLogprobs);
    top_logprobs.resize(num_rows * kMaxLogprobs);
  }
};

// The row's parameters as SamplingParams (the host sampler's input).
SamplingParams params_of(const SamplingRow& row);

}  // namespace iol::sampling
