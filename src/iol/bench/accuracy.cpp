#include "iol/bench/accuracy.hpp"

#include <algorithm>
#include <cmath>

#include "iol/core/error.hpp"

namespace iol::bench {
namespace {

// log-softmax in double: the KL of near-identical distributions is a difference of small terms.
std::vector<double> log_softmax(std::span<const float> logits) {
  double max = -INFINITY;
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_sum = max + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
  return out;
}

size_t argmax(std::span<const float> logits) {
  return static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

void AccuracyAccumulator::add(std::span<const float> reference_logits, std::span<const float> candidate_logits,
                              int32_t next_token) {
  if (reference_logits.size() != candidate_logits.size() || reference_logits.empty())
    fail("accuracy: logits rows of {} and {} values", reference_logits.size(), candidate_logits.size());
  if (next_token < 0 || static_cast<size_t>(next_token) >= reference_logits.size())
    fail("accuracy: next token {} outside the vocabulary of {}", next_token, reference_logits.size());
  for (float x : candidate_logits)
    if (!std::isfinite(x)) fail("accuracy: the candidate's logits are not finite");
  const std::vector<double> p = log_softmax(reference_logits), q = log_softmax(candidate_logits);
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
  kl_.push_back(std::max(0.0, kl));  // >= 0 up to rounding
  agree_ += argmax(reference_logits) == argmax(candidate_logits);
  nll_reference_ -= p[static_cast<size_t>(next_token)];
  nll_candidate_ -= q[static_cast<size_t>(next_token)];
}

AccuracySummary AccuracyAccumulator::summary() const {
  AccuracySummary s;
  s.positions = static_cast<int64_t>(kl_.size());
  if (kl_.empty()) return s;
  const double n = static_cast<double>(kl_.size());
  for (double kl : kl_) s.kl_mean += kl / n;
  std::vector<double> sorted = kl_;
  std::sort(sorted.begin(), sorted.end());
  // p99 as the nearest rank: the smallest value with at least 99% of the positions at or below it.
  const size_t rank = static_cast<size_t>(std::ceil(0.99 * n)) - 1;
  s.kl_p99 = sorted[std::min(rank, sorted.size() - 1)];
  s.kl_max = sorted.back();
  s.top1_agreement = static_cast<double>(agree_) / n;
  s.perplexity_reference = std::exp(nll_reference_ / n);
  s.perplexity_candidate = std::exp(nll_candidate_ / n);
  s.perplexity_change = s.perplexity_candidate / s.perplexity_reference - 1.0;
  return s;
}

nlohmann::json AccuracySummary::to_json() const {
  return {{"positions", positions},
          {"kl_mean", kl_mean},
          {"kl_p99", kl_p99},
          {"kl_max", kl_max},
          {"top1_agreement", top1_agreement},
          {"perplexity_reference", perplexity_reference},
          {"perplexity_candidate", perplexity_candidate},
          {"perplexity_change", perplexity_change}};
}

int64_t tokens_before_divergence(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int64_t>(i);
}

}  // namespace iol::bench
