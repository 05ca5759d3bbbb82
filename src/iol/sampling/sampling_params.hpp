// SamplingParams: how one request turns logits into tokens and when it stops (vLLM semantics).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iol::sampling {

inline constexpr int32_t kMaxParallelSamples = 256;

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = 0;                // 0 or -1 = all tokens
  float top_p = 1.0f;               // (0, 1]
  float min_p = 0.0f;               // [0, 1]: drop tokens with p < min_p * p_max
  float repetition_penalty = 1.0f;  // > 0; applies to prompt and output tokens (CTRL, Keskar et al. 2019)
  float presence_penalty = 0.0f;    // [-2, 2]; output tokens (OpenAI semantics)
  float frequency_penalty = 0.0f;   // [-2, 2]; output tokens, scaled by count
  std::optional<uint64_t> seed;     // same seed → same tokens
  int32_t max_tokens = 16;
  int32_t min_tokens = 0;           // EOS and stop tokens are masked until this many tokens exist
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;    // stop strings; the matched string is not part of the output
  int32_t logprobs = 0;             // top-n logprobs per generated token (0 = only the sampled token's)
  int32_t n = 1;                    // parallel samples of one prompt, sharing its KV blocks (copy-on-write)

  bool greedy() const { return temperature == 0.0f; }
  // Throws iol::Error naming the offending field and its allowed range.
  void validate(int64_t vocab_size) const;
};

}  // namespace iol::sampling
