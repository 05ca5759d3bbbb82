// SamplingRow: how to draw one token from one row of a step's logits. A plain struct copied as
// is to the device (the CUDA sampler reads it there), so it holds no pointers and no std types.
#pragma once
#include <cstdint>

namespace iol::sampling {

// Top logprobs per token at most (vLLM's default max_logprobs).
inline constexpr int32_t kMaxLogprobs = 20;

struct SamplingRow {
  int32_t logits_row = 0;  // which row of the step's logits (ForwardBatch::logits_indices order)
  float temperature = 0.0f;  // 0 = greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Random key: draws are a function of (seed, sample_index, position, token), core/philox.hpp.
  uint64_t seed = 0;
  uint32_t sample_index = 0;
  uint32_t position = 0;  // index of the token being drawn among the sequence's output tokens
  int32_t num_top_logprobs = 0;  // top-N logprobs to return, 0..kMaxLogprobs
  // Ranges into SamplingBatch::token_ids. Prompt and output ids are there only when a penalty
  // needs them; masked ids (EOS and stop ids before min_tokens) get logit -inf.
  int32_t prompt_begin = 0, prompt_end = 0;  // [prompt_begin, prompt_end)
  int32_t output_end = 0;                    // output ids: [prompt_end, output_end)
  int32_t masked_begin = 0, masked_end = 0;  // [masked_begin, masked_end)
  // Speculative decoding (docs/speculative.md). The rows of one sequence's verified run are
  // consecutive, one per position: every row but the last carries the proposed token at its
  // position; the last (the bonus row) has proposed_token -1, as a plain row does. A run ends at
  // its first rejected proposal: the rows after it emit nothing (kNotEmitted).
  int32_t proposed_token = -1;
  // Row of SamplingBatch::draft_probs holding the draft's distribution q for this proposal, or
  // -1 when the proposal is deterministic (n-gram: q is one-hot at proposed_token).
  int32_t draft_probs_row = -1;

  constexpr bool greedy() const { return temperature == 0.0f; }
  constexpr bool is_proposal() const { return proposed_token >= 0; }
  constexpr bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

}  // namespace iol::sampling
