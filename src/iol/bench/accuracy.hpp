// Accuracy of a quantized model against its unquantized reference (docs/quantization.md,
// "Accuracy"): teacher-forced over the same tokens, the KL divergence of the next-token
// distributions KL(p_ref || p_q) (mean and p99 over positions), top-1 agreement, and each side's
// perplexity of the actual next tokens; for greedy generation, the tokens produced before the
// two first differ.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace iol::bench {

struct AccuracySummary {
  int64_t positions = 0;
  double kl_mean = 0, kl_p99 = 0, kl_max = 0;  // nats
  double top1_agreement = 0;                    // fraction of positions with the same argmax
  double perplexity_reference = 0, perplexity_candidate = 0;
  double perplexity_change = 0;  // candidate / reference - 1
  nlohmann::json to_json() const;
};

class AccuracyAccumulator {
 public:
  // One position: both sides' logits over the vocabulary and the token that came next.
  void add(std::span<const float> reference_logits, std::span<const float> candidate_logits, int32_t next_token);
  AccuracySummary summary() const;

 private:
  std::vector<double> kl_;
  int64_t agree_ = 0;
  double nll_reference_ = 0, nll_candidate_ = 0;
};

// Tokens before the first position where the two greedy outputs differ (the shorter length when
// one is a prefix of the other).
int64_t tokens_before_divergence(std::span<const int32_t> a, std::span<const int32_t> b);

}  // namespace iol::bench
