// The CUDA sampler (backend/cuda/kernels/sampler.cuh) against its host reference
// (sampling/batch_sampler.hpp): the same tokens, logprobs and top logprobs for the same logits and
// keys, over 256 rows that mix greedy, every filter, penalties, masked ids and top-N logprobs; and
// 100k device draws per parameter combination against sampling_distribution (chi-square).
// Outputs are poisoned before each launch (0xFF: id -1, logprob NaN) and every comparison fails on
// NaN, so a row the kernel skips or garbles cannot pass. The workspace is poisoned too: the kernel
// keeps no state in it across launches. Host code only, C++20 (the host sampler's headers use
// std::span): it builds as a .cpp as well.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/sampler.cuh"
#include "iol/core/rng.hpp"
#include "iol/sampling/batch_sampler.hpp"
#include "iol/sampling/sampler.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using sampling::kMaxLogprobs;
using sampling::SampledBatch;
using sampling::SamplingParams;
using sampling::SamplingRow;

// Logprobs: the device sums exp in fp32, the host in fp64; observed differences are < 1e-6 (H100).
constexpr float kLogprobTolerance = 1e-5f;

// Runs the device sampler `launches` times on one workspace (poisoned before the first) and
// returns the last launch's outputs, poisoned before each launch.
SampledBatch sample_on_device(std::span<const float> logits, int vocab, std::span<const SamplingRow> rows,
                              std::span<const int32_t> token_ids, int launches = 2) {
  const size_t n = rows.size();
  DeviceBuffer d_logits(logits.size_bytes()), d_rows(rows.size_bytes()), d_ids(token_ids.size_bytes() + 4);
  DeviceBuffer workspace(sampler_workspace_bytes(static_cast<int>(n), vocab));
  DeviceBuffer tokens(n * 4), logprobs(n * 4), top_ids(n * kMaxLogprobs * 4), top_logprobs(n * kMaxLogprobs * 4);
  d_logits.upload(logits.data(), logits.size_bytes());
  d_rows.upload(rows.data(), rows.size_bytes());
  d_ids.upload(token_ids.data(), token_ids.size_bytes());
  workspace.fill_bytes(0xFF);
  SamplerParams p;
  p.logits = d_logits.as<float>();
  p.vocab = vocab;
  p.rows = d_rows.as<SamplingRow>();
  p.num_rows = static_cast<int>(n);
  p.token_ids = d_ids.as<int32_t>();
  p.workspace = workspace.data();
  p.out_tokens = tokens.as<int32_t>();
  p.out_logprobs = logprobs.as<float>();
  p.out_top_ids = top_ids.as<int32_t>();
  p.out_top_logprobs = top_logprobs.as<float>();
  for (int launch = 0; launch < launches; ++launch) {
    for (auto* b : {&tokens, &logprobs, &top_ids, &top_logprobs}) b->fill_bytes(0xFF);
    sample(p, nullptr);
    IOL_CUDA_CHECK(cudaDeviceSynchronize());
  }
  SampledBatch out;
  out.resize(n);
  tokens.download(out.tokens.data(), n * 4);
  logprobs.download(out.logprobs.data(), n * 4);
  top_ids.download(out.top_ids.data(), n * kMaxLogprobs * 4);
  top_logprobs.download(out.top_logprobs.data(), n * kMaxLogprobs * 4);
  return out;
}

// Logits on a grid: token i gets -10 + spacing × (rank_i / tie_group) for a random permutation
// rank, so distinct logits are at least `spacing` apart (no fp32/fp64 rounding ties) and, with
// tie_group > 1, groups of tokens share a value exactly (the tie paths of greedy, top-k, top-p).
std::vector<float> grid_logits(int vocab, float spacing, int tie_group, Rng& rng) {
  std::vector<int> rank(static_cast<size_t>(vocab));
  std::iota(rank.begin(), rank.end(), 0);
  for (int i = vocab - 1; i > 0; --i) std::swap(rank[static_cast<size_t>(i)], rank[rng.next_u64() % static_cast<uint64_t>(i + 1)]);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) logits[static_cast<size_t>(i)] = -10.0f + spacing * static_cast<float>(rank[static_cast<size_t>(i)] / tie_group);
  return logits;
}

// The logits a row's filters see: its logits row after penalties and masks, as sample() does.
std::vector<float> edited_logits(std::span<const float> logits, int vocab, const SamplingRow& row,
                                 std::span<const int32_t> ids) {
  std::vector<float> l(logits.begin() + static_cast<ptrdiff_t>(row.logits_row) * vocab,
                       logits.begin() + static_cast<ptrdiff_t>(row.logits_row + 1) * vocab);
  auto range = [&](int32_t b, int32_t e) { return ids.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b)); };
  sampling::apply_penalties(l, sampling::params_of(row), range(row.prompt_begin, row.prompt_end),
                            range(row.prompt_end, row.output_end));
  sampling::mask_tokens(l, range(row.masked_begin, row.masked_end));
  return l;
}

// fp32 (device) and fp64 (host) may disagree when a token sits on a filter's edge: a cumulative
// mass within 1e-5 of top_p × kept mass, or p / p_max within 1e-4 (relative) of min_p. Such
// parameters are moved off the edge before both samplers see them.
void keep_off_filter_edges(SamplingRow& row, const std::vector<float>& logits) {
  if (row.temperature == 0.0f) return;
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  const auto min_p_near_a_token = [&] {
    for (float l : logits)
      if (std::abs(std::exp((l - max_logit) / row.temperature) - row.min_p) < 1e-4 * row.min_p) return true;
    return false;
  };
  for (int attempt = 0; row.min_p > 0.0f && attempt < 100 && min_p_near_a_token(); ++attempt) row.min_p *= 1.01f;
  const auto top_p_near_a_cumulative_mass = [&] {
    SamplingParams only_top_k = sampling::params_of(row);
    only_top_k.top_p = 1.0f;
    only_top_k.min_p = 0.0f;
    const auto probs = sampling::sampling_distribution(logits, only_top_k);  // sums to 1 over top-k
    std::vector<int32_t> order(probs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
    double before = 0.0;
    for (int32_t id : order) {
      if (probs[static_cast<size_t>(id)] == 0.0) break;
      if (std::abs(before - row.top_p) < 1e-5) return true;
      before += probs[static_cast<size_t>(id)];
    }
    return false;
  };
  for (int attempt = 0; row.top_p < 1.0f && attempt < 100 && top_p_near_a_cumulative_mass(); ++attempt)
    row.top_p = std::min(row.top_p + 0.003f, 0.999f);
}

// 256 rows over 32 logits rows: greedy, temperature, top-k (with ties at the threshold), top-p,
// min-p and their combinations, with and without penalties and masked ids, N = 0, 5 or 20. Each
// kind of row appears 32 times; its variant, logits row, penalties and masks are drawn at random.
void expect_device_matches_host(int vocab) {
  Rng rng(static_cast<uint64_t>(vocab));
  const int num_logits_rows = 32, num_rows = 256;
  std::vector<float> logits;
  std::vector<std::vector<int32_t>> by_logit;  // token ids by descending logit, per logits row
  for (int j = 0; j < num_logits_rows; ++j) {
    const float spacings[] = {1e-3f, 0.01f, 0.05f, 0.002f};
    const auto row = grid_logits(vocab, spacings[j % 4], j % 4 == 3 ? 4 : 1, rng);
    logits.insert(logits.end(), row.begin(), row.end());
    auto& order = by_logit.emplace_back(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  }
  const auto random_below = [&](int n) { return static_cast<int>(rng.next_u64() % static_cast<uint64_t>(n)); };
  std::vector<int32_t> ids;
  std::vector<SamplingRow> rows(num_rows);
  for (int r = 0; r < num_rows; ++r) {
    SamplingRow& row = rows[static_cast<size_t>(r)];
    row.logits_row = random_below(num_logits_rows);
    row.seed = 1000 + static_cast<uint64_t>(r);
    row.sample_index = static_cast<uint32_t>(r % 3);
    row.position = static_cast<uint32_t>(7 * r);
    row.num_top_logprobs = std::array{0, 5, 20}[r % 3];
    const int kind = r % 8, variant = random_below(4);
    const float temperatures[] = {1.0f, 0.5f, 1.5f, 0.8f};
    row.temperature = kind == 0 || kind == 7 ? 0.0f : temperatures[variant];
    if (kind == 2 || kind == 5 || kind == 6) row.top_k = std::array{1, 7, 50, 1000}[variant];
    if (kind == 3 || kind == 5 || kind == 6) row.top_p = std::array{0.3f, 0.8f, 0.95f, 0.6f}[variant];
    if (kind == 4 || kind == 6) row.min_p = std::array{0.02f, 0.1f, 0.3f, 0.05f}[variant];
    if (r == 9) row.top_k = vocab;  // top-k of the whole vocabulary: no filter
    const bool penalties = kind == 7 || random_below(2) == 1, masked = random_below(2) == 1;
    // Token lists: the prompt anywhere, the output among the 100 most likely (penalties matter).
    const auto& order = by_logit[static_cast<size_t>(row.logits_row)];
    row.prompt_begin = static_cast<int32_t>(ids.size());
    if (penalties) {
      row.repetition_penalty = std::array{1.3f, 0.8f, 1.0f, 1.1f}[variant];
      row.presence_penalty = std::array{0.5f, 0.0f, -0.3f, 0.2f}[variant];
      row.frequency_penalty = std::array{0.2f, 0.1f, 0.0f, 0.3f}[variant];
      for (int i = 0; i < 64; ++i) ids.push_back(random_below(vocab));
      row.prompt_end = static_cast<int32_t>(ids.size());
      for (int i = 0; i < 32; ++i) ids.push_back(order[static_cast<size_t>(random_below(100))]);
    } else {
      row.prompt_end = row.prompt_begin;
    }
    row.output_end = static_cast<int32_t>(ids.size());
    row.masked_begin = row.masked_end = row.output_end;
    if (masked) {
      ids.push_back(order[0]);  // the most likely token
      ids.push_back(order[static_cast<size_t>(1 + random_below(10))]);
      ids.push_back(random_below(vocab));
      row.masked_end = static_cast<int32_t>(ids.size());
    }
  }
  for (auto& row : rows) keep_off_filter_edges(row, edited_logits(logits, vocab, row, ids));

  SampledBatch host;
  sampling::sample_batch_on_host(logits, vocab, sampling::SamplingBatch{rows, ids}, host);
  const SampledBatch device = sample_on_device(logits, vocab, rows, ids);
  float max_error = 0.0f;
  for (int r = 0; r < num_rows; ++r) {
    SCOPED_TRACE(::testing::Message() << "row " << r << " (temperature " << rows[r].temperature << ", top_k "
                                    << rows[r].top_k << ", top_p " << rows[r].top_p << ", min_p " << rows[r].min_p
                                    << ", logits row " << rows[r].logits_row << ")");
    EXPECT_EQ(device.tokens[r], host.tokens[r]);
    // NaN fails EXPECT_NEAR; the explicit check says so in the log.
    EXPECT_TRUE(std::isfinite(device.logprobs[r]));
    EXPECT_NEAR(device.logprobs[r], host.logprobs[r], kLogprobTolerance);
    if (std::isfinite(device.logprobs[r])) max_error = std::max(max_error, std::abs(device.logprobs[r] - host.logprobs[r]));
    for (int j = 0; j < rows[r].num_top_logprobs; ++j) {
      const size_t k = static_cast<size_t>(r * kMaxLogprobs + j);
      EXPECT_EQ(device.top_ids[k], host.top_ids[k]) << "top logprob " << j;
      EXPECT_NEAR(device.top_logprobs[k], host.top_logprobs[k], kLogprobTolerance) << "top logprob " << j;
      if (std::isfinite(device.top_logprobs[k])) max_error = std::max(max_error, std::abs(device.top_logprobs[k] - host.top_logprobs[k]));
    }
  }
  std::printf("vocab %d: largest logprob difference %.3g\n", vocab, max_error);
}

TEST(SamplerKernel, MatchesTheHostSamplerOnA128kVocabulary) { expect_device_matches_host(128256); }

TEST(SamplerKernel, MatchesTheHostSamplerOnA1000TokenVocabulary) { expect_device_matches_host(1000); }

TEST(SamplerKernel, AnEmptyBatchLaunchesNothing) {
  SamplerParams p;
  p.vocab = 1000;
  sample(p, nullptr);
  IOL_CUDA_CHECK(cudaDeviceSynchronize());
}

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

// 100k draws per combination in one launch: rows share logits row 0 and differ in position.
// Pearson's chi-square against sampling_distribution of the penalised, masked logits at p-value
// 1e-4, tokens expected fewer than 5 times pooled into one category; filtered tokens never drawn.
// IOL_TEST_SAMPLER_DRAWS lowers the count for compute-sanitizer runs (racecheck instruments every
// shared-memory access; 100k rows take it past any budget); the test stays a valid chi-square test.
int sampler_test_draws() {
  const char* env = std::getenv("IOL_TEST_SAMPLER_DRAWS");
  const int draws = env != nullptr ? std::atoi(env) : 0;
  return draws >= 1000 ? draws : 100000;
}

TEST(SamplerKernel, DrawsPassAChiSquareTestAgainstTheFilteredDistribution) {
  const int vocab = 1000, draws = sampler_test_draws();
  Rng rng(3);
  // Spaced 0.05 apart: a few dozen tokens carry the mass, ~150 are expected at least 5 times.
  const std::vector<float> logits = grid_logits(vocab, 0.05f, 1, rng);
  std::vector<int32_t> by_logit(static_cast<size_t>(vocab));
  std::iota(by_logit.begin(), by_logit.end(), 0);
  std::stable_sort(by_logit.begin(), by_logit.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  // Prompt {by_logit[3], by_logit[40]}, output {by_logit[0], by_logit[0], by_logit[5]}, masked {by_logit[1]}.
  const std::vector<int32_t> ids = {by_logit[3], by_logit[40], by_logit[0], by_logit[0], by_logit[5], by_logit[1]};
  struct Combination {
    const char* name;
    float temperature;
    int32_t top_k;
    float top_p, min_p;
    bool penalties;
  };
  const Combination combinations[] = {{"temperature 0.7", 0.7f, 0, 1.0f, 0.0f, false},
                                      {"top_k 5", 1.0f, 5, 1.0f, 0.0f, false},
                                      {"top_p 0.8", 1.0f, 0, 0.8f, 0.0f, false},
                                      {"min_p 0.1", 1.0f, 0, 1.0f, 0.1f, false},
                                      {"combined", 0.9f, 50, 0.9f, 0.05f, false},
                                      {"penalties and a masked id, top_p 0.95", 1.0f, 0, 0.95f, 0.0f, true}};
  for (const auto& c : combinations) {
    SCOPED_TRACE(c.name);
    SamplingRow row;
    row.temperature = c.temperature;
    row.top_k = c.top_k;
    row.top_p = c.top_p;
    row.min_p = c.min_p;
    row.seed = 77;
    if (c.penalties) {
      row.repetition_penalty = 1.3f;
      row.presence_penalty = 0.4f;
      row.frequency_penalty = 0.2f;
      row.prompt_end = 2, row.output_end = 5, row.masked_begin = 5, row.masked_end = 6;
    }
    const std::vector<float> edited = edited_logits(logits, vocab, row, ids);
    keep_off_filter_edges(row, edited);
    const std::vector<double> expected = sampling::sampling_distribution(edited, sampling::params_of(row));
    std::vector<SamplingRow> rows(draws, row);
    for (int i = 0; i < draws; ++i) rows[static_cast<size_t>(i)].position = static_cast<uint32_t>(i);
    const SampledBatch device = sample_on_device(logits, vocab, rows, ids, 1);

    std::vector<int64_t> counts(static_cast<size_t>(vocab));
    for (int32_t t : device.tokens) {
      ASSERT_TRUE(t >= 0 && t < vocab) << "token " << t;
      counts[static_cast<size_t>(t)]++;
    }
    double statistic = 0.0, pooled_expected = 0.0;
    int64_t pooled_count = 0;
    int categories = 0;
    for (int i = 0; i < vocab; ++i) {
      const double e = expected[static_cast<size_t>(i)] * draws;
      const int64_t o = counts[static_cast<size_t>(i)];
      if (expected[static_cast<size_t>(i)] == 0.0) {
        EXPECT_EQ(o, 0) << "token " << i << " is filtered out but was drawn";
      } else if (e < 5.0) {
        pooled_expected += e;
        pooled_count += o;
      } else {
        statistic += (static_cast<double>(o) - e) * (static_cast<double>(o) - e) / e;
        ++categories;
      }
    }
    if (pooled_expected > 0.0) {
      statistic += (static_cast<double>(pooled_count) - pooled_expected) *
                   (static_cast<double>(pooled_count) - pooled_expected) / pooled_expected;
      ++categories;
    }
    ASSERT_GE(categories, 2);
    const double p_value = chi_square_p_value(statistic, categories - 1);
    std::printf("%s: chi-square %.1f, %d degrees of freedom, p-value %.3g\n", c.name, statistic, categories - 1, p_value);
    EXPECT_GT(p_value, 1e-4);
  }
}

}  // namespace
}  // namespace iol::backend::cuda::kernels
