// Sampling against hand-computed distributions; statistical checks use fixed seeds and state
// their tolerance (5 standard errors of a binomial proportion unless noted).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "iol/core/error.hpp"
#include "iol/sampling/sampler.hpp"

namespace iol::sampling {
namespace {

std::vector<double> softmax(const std::vector<double>& x) {
  double m = *std::max_element(x.begin(), x.end()), s = 0;
  std::vector<double> p;
  for (double v : x) s += std::exp(v - m);
  for (double v : x) p.push_back(std::exp(v - m) / s);
  return p;
}

const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f};

TEST(Sampler, TemperatureScalesTheSoftmax) {
  SamplingParams p;
  p.temperature = 0.5f;
  auto probs = sampling_distribution(kLogits, p);
  auto expected = softmax({4.0, 2.0, 1.0, 0.0, -2.0});
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected[i], 1e-12);
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  SamplingParams p;
  p.top_k = 2;
  auto probs = sampling_distribution(kLogits, p);
  auto expected = softmax({2.0, 1.0});
  EXPECT_NEAR(probs[0], expected[0], 1e-12);
  EXPECT_NEAR(probs[1], expected[1], 1e-12);
  EXPECT_EQ(probs[2] + probs[3] + probs[4], 0.0);
}

TEST(Sampler, TopPKeepsTheSmallestHeadReachingP) {
  // softmax(kLogits) ≈ [0.563, 0.207, 0.126, 0.076, 0.028]: 0.563 + 0.207 = 0.770 ≥ 0.7.
  SamplingParams p;
  p.top_p = 0.7f;
  auto probs = sampling_distribution(kLogits, p);
  EXPECT_GT(probs[0], 0);
  EXPECT_GT(probs[1], 0);
  EXPECT_EQ(probs[2], 0.0);
  EXPECT_NEAR(probs[0] + probs[1], 1.0, 1e-12);
  p.top_p = 0.78f;  // needs the third token too
  EXPECT_GT(sampling_distribution(kLogits, p)[2], 0);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMax) {
  // p_max ≈ 0.563; min_p 0.3 → threshold ≈ 0.169: keeps tokens 0 and 1.
  SamplingParams p;
  p.min_p = 0.3f;
  auto probs = sampling_distribution(kLogits, p);
  auto expected = softmax({2.0, 1.0});
  EXPECT_NEAR(probs[0], expected[0], 1e-12);
  EXPECT_NEAR(probs[1], expected[1], 1e-12);
  EXPECT_EQ(probs[2], 0.0);
}

TEST(Sampler, PenaltiesFollowTheirDefinitions) {
  std::vector<float> logits = {2.0f, -1.0f, 1.0f, 0.5f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<int32_t> prompt = {0}, output = {1, 2, 2};
  apply_penalties(logits, p, prompt, output);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);                          // prompt only: 2 / 2
  EXPECT_FLOAT_EQ(logits[1], -2.0f - 0.5f - 0.25f);          // -1 * 2, presence, frequency × 1
  EXPECT_FLOAT_EQ(logits[2], 0.5f - 0.5f - 0.5f);            // 1 / 2, presence, frequency × 2
  EXPECT_FLOAT_EQ(logits[3], 0.5f);                          // untouched
}

TEST(Sampler, GreedyIsArgmaxAfterPenaltiesAndIgnoresTheRng) {
  std::vector<float> logits = {1.0f, 3.0f, 2.9f};
  SamplingParams p;
  p.temperature = 0.0f;
  Rng rng(1);
  EXPECT_EQ(sample(logits, p, {}, {}, {}, rng).token, 1);
  p.repetition_penalty = 1.5f;
  std::vector<float> again = {1.0f, 3.0f, 2.9f};
  std::vector<int32_t> output = {1};
  EXPECT_EQ(sample(again, p, {}, output, {}, rng).token, 2);  // 3 / 1.5 = 2 < 2.9
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 4;
  auto expected = sampling_distribution(kLogits, p);
  Rng rng(12345);
  const int n = 200000;
  std::vector<int> counts(kLogits.size());
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = kLogits;
    counts[static_cast<size_t>(sample(logits, p, {}, {}, {}, rng).token)]++;
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    double freq = static_cast<double>(counts[i]) / n;
    double se = std::sqrt(expected[i] * (1 - expected[i]) / n);
    EXPECT_NEAR(freq, expected[i], 5 * se + 1e-12) << "token " << i;
  }
  EXPECT_EQ(counts[4], 0);  // outside top-k: never drawn
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  auto run = [&](uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> logits = kLogits;
      tokens.push_back(sample(logits, p, {}, {}, {}, rng).token);
    }
    return tokens;
  };
  EXPECT_EQ(run(9), run(9));
  EXPECT_NE(run(9), run(10));
}

TEST(Sampler, LogprobsAreOfTheRawDistributionAndMaskedTokensNeverWin) {
  std::vector<float> logits = kLogits;
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 3;
  Rng rng(0);
  std::vector<int32_t> masked = {0};
  SampledToken t = sample(logits, p, {}, {}, masked, rng);
  auto expected = softmax({2.0, 1.0, 0.5, 0.0, -1.0});
  EXPECT_EQ(t.token, 1);
  EXPECT_NEAR(t.logprob, std::log(expected[1]), 1e-6);
  ASSERT_EQ(t.top_logprobs.size(), 3u);
  EXPECT_EQ(t.top_logprobs[0].first, 0);
  EXPECT_NEAR(t.top_logprobs[0].second, std::log(expected[0]), 1e-6);
  EXPECT_EQ(t.top_logprobs[2].first, 2);
}

TEST(Sampler, ValidateNamesTheField) {
  auto error = [](auto edit) {
    SamplingParams p;
    edit(p);
    try {
      p.validate(100);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(error([](auto& p) { p.top_p = 0.0f; }), "sampling: top_p must be in (0, 1] (got 0)");
  EXPECT_EQ(error([](auto& p) { p.temperature = -1.0f; }), "sampling: temperature must be >= 0 (got -1)");
  EXPECT_EQ(error([](auto& p) { p.max_tokens = 0; }), "sampling: max_tokens must be >= 1 (got 0)");
  EXPECT_EQ(error([](auto& p) { p.stop_token_ids = {100}; }),
            "sampling: stop token id 100 is outside the vocabulary [0, 100)");
  EXPECT_EQ(error([](auto& p) { p.repetition_penalty = 0.0f; }), "sampling: repetition_penalty must be > 0 (got 0)");
  EXPECT_EQ(error([](auto&) {}), "(no error)");
}

}  // namespace
}  // namespace iol::sampling
