// Sampling against hand-computed distributions; statistical checks use fixed seeds and state
// their tolerance (5 standard errors of a binomial proportion, or a chi-square test at p-value
// 1e-4). Draws are Philox-keyed (core/philox.hpp), so every run sees the same draws.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "iol/core/error.hpp"
#include "iol/sampling/batch_sampler.hpp"
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

// Twelve tokens spread over five nats: every filter below keeps several of them.
const std::vector<float> kWideLogits = {3.0f, 2.6f, 2.2f, 2.0f, 1.5f, 1.1f, 0.7f, 0.3f, 0.0f, -0.4f, -1.0f, -2.0f};

// Upper tail of the chi-square distribution with `df` degrees of freedom: Q(df/2, statistic/2), the
// regularised incomplete gamma function by its series or continued fraction (Numerical Recipes 6.2).
double chi_square_p_value(double statistic, int df) {
  const double a = df / 2.0, x = statistic / 2.0;
  if (x <= 0) return 1.0;
  const double prefactor = std::exp(-x + a * std::log(x) - std::lgamma(a));
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000 && term > sum * 1e-16; ++n) sum += (term *= x / (a + n));
    return 1.0 - sum * prefactor;
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    if (std::abs(d * c - 1) < 1e-16) break;
  }
  return prefactor * h;
}

// Pearson's chi-square test of `counts` against `expected` probabilities; categories of probability
// 0 must stay empty. Returns the p-value (1 when fewer than two categories can occur).
double chi_square_test(const std::vector<int64_t>& counts, const std::vector<double>& expected) {
  int64_t n = 0;
  for (auto c : counts) n += c;
  double statistic = 0.0;
  int categories = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is filtered out but was drawn";
      continue;
    }
    const double e = expected[i] * static_cast<double>(n);
    statistic += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
    ++categories;
  }
  return categories < 2 ? 1.0 : chi_square_p_value(statistic, categories - 1);
}

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

TEST(Sampler, GreedyIsArgmaxAfterPenaltiesAndIgnoresTheKey) {
  std::vector<float> logits = {1.0f, 3.0f, 2.9f};
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_EQ(sample(logits, p, {}, {}, {}, RandomKey{1, 0, 0}).token, 1);
  p.repetition_penalty = 1.5f;
  std::vector<float> again = {1.0f, 3.0f, 2.9f};
  std::vector<int32_t> output = {1};
  EXPECT_EQ(sample(again, p, {}, output, {}, RandomKey{2, 3, 4}).token, 2);  // 3 / 1.5 = 2 < 2.9
}

TEST(Sampler, GreedyTiesGoToTheLowerId) {
  std::vector<float> logits = {1.0f, 3.0f, 0.0f, 3.0f};
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_EQ(sample(logits, p, {}, {}, {}, RandomKey{}).token, 1);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 4;
  auto expected = sampling_distribution(kLogits, p);
  const int n = 200000;
  std::vector<int> counts(kLogits.size());
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = kLogits;
    counts[static_cast<size_t>(sample(logits, p, {}, {}, {}, RandomKey{12345, 0, static_cast<uint32_t>(i)}).token)]++;
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
    std::vector<int32_t> tokens;
    for (uint32_t i = 0; i < 50; ++i) {
      std::vector<float> logits = kLogits;
      tokens.push_back(sample(logits, p, {}, {}, {}, RandomKey{seed, 0, i}).token);
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
  std::vector<int32_t> masked = {0};
  SampledToken t = sample(logits, p, {}, {}, masked, RandomKey{});
  auto expected = softmax({2.0, 1.0, 0.5, 0.0, -1.0});
  EXPECT_EQ(t.token, 1);
  EXPECT_NEAR(t.logprob, std::log(expected[1]), 1e-6);
  ASSERT_EQ(t.top_logprobs.size(), 3u);
  EXPECT_EQ(t.top_logprobs[0].first, 0);
  EXPECT_NEAR(t.top_logprobs[0].second, std::log(expected[0]), 1e-6);
  EXPECT_EQ(t.top_logprobs[2].first, 2);
}

TEST(Sampler, ChiSquarePValueMatchesKnownQuantiles) {
  EXPECT_NEAR(chi_square_p_value(18.420681, 2), 1e-4, 1e-9);  // df 2: Q = exp(-x / 2) exactly
  EXPECT_NEAR(chi_square_p_value(3.841459, 1), 0.05, 1e-6);
  EXPECT_NEAR(chi_square_p_value(35.5640, 10), 1e-4, 1e-7);   // tabulated 0.9999 quantile
  EXPECT_NEAR(chi_square_p_value(9.341818, 10), 0.5, 1e-6);   // median
}

TEST(Sampler, TheDrawIsAPureFunctionOfLogitsParamsAndKey) {
  SamplingParams p;
  auto draw = [&](const RandomKey& key) {
    std::vector<float> logits = kWideLogits;
    return sample(logits, p, {}, {}, {}, key).token;
  };
  std::vector<int32_t> by_seed[2], by_sample[2];
  for (uint32_t position = 0; position < 100; ++position) {
    const RandomKey key{42, 3, position};
    EXPECT_EQ(draw(key), draw(key));
    by_seed[0].push_back(draw(key));
    by_seed[1].push_back(draw(RandomKey{43, 3, position}));
    by_sample[0].push_back(draw(RandomKey{42, 0, position}));
    by_sample[1].push_back(draw(RandomKey{42, 1, position}));
  }
  EXPECT_NE(by_seed[0], by_seed[1]);
  EXPECT_NE(by_sample[0], by_sample[1]);

  // Consecutive positions are independent: they agree with probability sum_i p_i^2.
  const auto probs = sampling_distribution(kWideLogits, p);
  double agree_expected = 0.0;
  for (double q : probs) agree_expected += q * q;
  const int n = 100000;
  int32_t previous = draw(RandomKey{42, 0, 0});
  int agree = 0;
  for (int i = 1; i <= n; ++i) {
    const int32_t token = draw(RandomKey{42, 0, static_cast<uint32_t>(i)});
    agree += token == previous;
    previous = token;
  }
  const double se = std::sqrt(agree_expected * (1 - agree_expected) / n);
  EXPECT_NEAR(static_cast<double>(agree) / n, agree_expected, 5 * se);
}

// 100k draws per parameter combination against sampling_distribution, Pearson's chi-square at
// p-value 1e-4 (fixed keys: the outcome is the same on every run).
TEST(Sampler, GumbelMaxDrawsPassAChiSquareTestAgainstTheFilteredDistribution) {
  struct Combination {
    const char* name;
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
  };
  const Combination combinations[] = {{"temperature 0.7", 0.7f, 0, 1.0f, 0.0f},
                                      {"top_k 5", 1.0f, 5, 1.0f, 0.0f},
                                      {"top_p 0.8", 1.0f, 0, 0.8f, 0.0f},
                                      {"min_p 0.1", 1.0f, 0, 1.0f, 0.1f},
                                      {"combined", 0.9f, 8, 0.9f, 0.05f}};
  for (const auto& c : combinations) {
    SCOPED_TRACE(c.name);
    SamplingParams p;
    p.temperature = c.temperature;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    const auto expected = sampling_distribution(kWideLogits, p);
    std::vector<int64_t> counts(kWideLogits.size());
    for (uint32_t position = 0; position < 100000; ++position) {
      std::vector<float> logits = kWideLogits;
      counts[static_cast<size_t>(sample(logits, p, {}, {}, {}, RandomKey{7, 0, position}).token)]++;
    }
    EXPECT_GT(chi_square_test(counts, expected), 1e-4);
  }
}

TEST(BatchSampler, RowsSharingALogitsRowDrawIndependentlyAndEachMatchesSample) {
  const int64_t vocab = static_cast<int64_t>(kWideLogits.size());
  std::vector<float> logits = kWideLogits;  // logits row 0; row 1 reversed
  logits.insert(logits.end(), kWideLogits.rbegin(), kWideLogits.rend());
  // Prompt {1, 2}, output {3, 3}, masked {0}.
  const std::vector<int32_t> token_ids = {1, 2, 3, 3, 0};
  SamplingRow base;
  base.temperature = 1.0f;
  base.repetition_penalty = 1.3f;
  base.presence_penalty = 0.2f;
  base.frequency_penalty = 0.1f;
  base.seed = 5;
  base.num_top_logprobs = 3;
  base.prompt_begin = 0, base.prompt_end = 2, base.output_end = 4, base.masked_begin = 4, base.masked_end = 5;
  std::vector<SamplingRow> rows(3, base);
  rows[1].sample_index = 1;
  rows[2].logits_row = 1;
  rows[2].temperature = 0.0f;
  rows[2].num_top_logprobs = 5;
  SampledBatch out;
  int differ = 0;
  for (uint32_t position = 0; position < 200; ++position) {
    for (auto& row : rows) row.position = position;
    sample_batch_on_host(logits, vocab, SamplingBatch{rows, token_ids}, out);
    ASSERT_EQ(out.tokens.size(), rows.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      std::vector<float> row_logits(logits.begin() + rows[r].logits_row * vocab,
                                    logits.begin() + (rows[r].logits_row + 1) * vocab);
      const std::span<const int32_t> ids = token_ids;
      const SampledToken alone = sample(row_logits, params_of(rows[r]), ids.subspan(0, 2), ids.subspan(2, 2),
                                        ids.subspan(4, 1), RandomKey{rows[r].seed, rows[r].sample_index, position});
      EXPECT_EQ(out.tokens[r], alone.token);
      EXPECT_EQ(out.logprobs[r], alone.logprob);
      ASSERT_EQ(alone.top_logprobs.size(), static_cast<size_t>(rows[r].num_top_logprobs));
      for (size_t j = 0; j < alone.top_logprobs.size(); ++j) {
        EXPECT_EQ(out.top_ids[r * kMaxLogprobs + j], alone.top_logprobs[j].first);
        EXPECT_EQ(out.top_logprobs[r * kMaxLogprobs + j], alone.top_logprobs[j].second);
      }
      EXPECT_NE(out.tokens[r], 0);  // masked
    }
    differ += out.tokens[0] != out.tokens[1];
  }
  // Two samples agree with probability sum_i p_i^2 ≈ 0.2 here: about 160 of 200 differ.
  EXPECT_GT(differ, 100);
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
TEST(BatchSampler, NonFiniteLogitsMarkOnlyTheirRowAsFailed) {
  const int64_t vocab = 8;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> logits(2 * vocab, 0.0f);
    logits[3] = 2.0f;               // row 0: token 3 wins
    logits[vocab + 5] = bad;        // row 1: one non-finite value
    logits[vocab + 1] = 4.0f;
    std::vector<SamplingRow> rows(2);
    rows[1].logits_row = 1;
    const std::vector<int32_t> token_ids;
    SampledBatch out;
    sample_batch_on_host(logits, vocab, SamplingBatch{rows, token_ids}, out);
    EXPECT_EQ(out.tokens[0], 3) << bad;
    EXPECT_EQ(out.tokens[1], kInvalidToken) << bad;  // never token 0 or argmax of garbage
    EXPECT_TRUE(std::isnan(out.logprobs[1]));
  }
}

}  // namespace iol::sampling
