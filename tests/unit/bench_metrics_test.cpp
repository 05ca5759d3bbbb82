// Benchmark metrics on synthetic traces with hand-computed expectations.
#include <gtest/gtest.h>

#include <cmath>

#include "iol/bench/accuracy.hpp"
#include "iol/bench/metrics.hpp"
#include "iol/core/error.hpp"

namespace iol::bench {
namespace {

RequestTrace trace(double arrival, std::vector<double> token_times, int64_t input = 10) {
  RequestTrace t;
  t.arrival = arrival;
  t.input_tokens = input;
  t.token_times = std::move(token_times);
  t.output_tokens = static_cast<int64_t>(t.token_times.size());
  t.first_token = t.token_times.front();
  t.finished = t.token_times.back();
  return t;
}

TEST(BenchMetrics, PerRequestDefinitions) {
  // Arrives at 1.0 s; tokens at 1.2, 1.25, 1.35, 1.40 s.
  RequestMetrics m = request_metrics(trace(1.0, {1.2, 1.25, 1.35, 1.40}));
  EXPECT_NEAR(m.ttft_ms, 200, 1e-9);
  EXPECT_NEAR(m.e2e_ms, 400, 1e-9);
  EXPECT_NEAR(*m.tpot_ms, (400.0 - 200.0) / 3, 1e-9);  // first token excluded
  ASSERT_EQ(m.itl_ms.size(), 3u);
  EXPECT_NEAR(m.itl_ms[0], 50, 1e-9);
  EXPECT_NEAR(m.itl_ms[1], 100, 1e-9);
  EXPECT_NEAR(m.itl_ms[2], 50, 1e-9);
  // One-token output: TPOT undefined, no ITL.
  RequestMetrics single = request_metrics(trace(0.0, {0.3}));
  EXPECT_FALSE(single.tpot_ms.has_value());
  EXPECT_TRUE(single.itl_ms.empty());
  EXPECT_NEAR(single.ttft_ms, 300, 1e-9);
}

TEST(BenchMetrics, DistributionsUseNumpyPercentilesAndPopulationStd) {
  Distribution d = summarize({4, 1, 3, 2});
  EXPECT_EQ(d.count, 4);
  EXPECT_DOUBLE_EQ(d.mean, 2.5);
  EXPECT_DOUBLE_EQ(d.median, 2.5);
  EXPECT_DOUBLE_EQ(d.p90, 3.7);   // rank 0.9 × 3 = 2.7 → 3 + 0.7 × (4 − 3)
  EXPECT_DOUBLE_EQ(d.p99, 3.97);
  EXPECT_DOUBLE_EQ(d.std, std::sqrt(1.25));
  EXPECT_EQ(summarize({}).count, 0);
  EXPECT_DOUBLE_EQ(summarize({7}).p99, 7);
}

TEST(BenchMetrics, RunAggregatesCountFailuresSeparatelyAndExcludeWarmup) {
  std::vector<RequestTrace> traces;
  RequestTrace warmup = trace(0.0, {5.0, 6.0});
  warmup.warmup = true;
  traces.push_back(warmup);
  traces.push_back(trace(10.0, {10.1, 10.2, 10.3}));        // TTFT 100, TPOT 100, E2E 300
  traces.push_back(trace(10.5, {11.0}, 20));                 // one token: TTFT 500, E2E 500
  RequestTrace aborted = trace(10.2, {10.4, 10.5});
  aborted.status = RequestStatus::Aborted;
  traces.push_back(aborted);
  RequestTrace failed;
  failed.arrival = 10.3;
  failed.status = RequestStatus::Failed;
  failed.error = "rejected";
  traces.push_back(failed);

  RunMetrics r = compute_run_metrics(traces, Slo::parse("ttft_ms=200"));
  EXPECT_EQ(r.num_warmup, 1);
  EXPECT_EQ(r.num_completed, 2);
  EXPECT_EQ(r.num_aborted, 1);
  EXPECT_EQ(r.num_failed, 1);
  EXPECT_DOUBLE_EQ(r.duration_s, 11.0 - 10.0);  // first measured arrival → last finish
  EXPECT_EQ(r.total_output_tokens, 4);
  EXPECT_EQ(r.total_input_tokens, 30);
  EXPECT_DOUBLE_EQ(r.output_throughput, 4.0);
  EXPECT_DOUBLE_EQ(r.request_throughput, 2.0);
  EXPECT_DOUBLE_EQ(r.total_token_throughput, 34.0);
  EXPECT_DOUBLE_EQ(*r.goodput, 1.0);  // only the first meets TTFT ≤ 200 ms
  EXPECT_NEAR(r.ttft_ms.mean, 300, 1e-9);
  EXPECT_EQ(r.tpot_ms.count, 1);  // the one-token request has no TPOT
  EXPECT_NEAR(r.tpot_ms.mean, 100, 1e-9);
  EXPECT_EQ(r.itl_ms.count, 2);
  EXPECT_FALSE(compute_run_metrics(traces, Slo{}).goodput.has_value());
}

TEST(BenchMetrics, SloParsing) {
  Slo slo = Slo::parse("ttft_ms=200,tpot_ms=50.5,e2e_ms=3000");
  EXPECT_EQ(*slo.ttft_ms, 200);
  EXPECT_EQ(*slo.tpot_ms, 50.5);
  EXPECT_EQ(*slo.e2e_ms, 3000);
  EXPECT_THROW(Slo::parse("ttft=200"), UsageError);
  EXPECT_THROW(Slo::parse("ttft_ms=abc"), UsageError);
  EXPECT_THROW(Slo::parse("ttft_ms=-1"), UsageError);
}

}  // namespace
}  // namespace iol::bench

// The accuracy figures of iol eval (bench/accuracy.hpp), by hand: reference logits (0, ln 3) give
// p = (1/4, 3/4); candidate logits (0, 0) give q = (1/2, 1/2).
// KL(p || q) = 1/4 ln(1/2) + 3/4 ln(3/2); argmaxes 1 and 0 (ties to the first) disagree.
namespace iol::bench {
namespace {
TEST(Accuracy, KlTopOneAndPerplexityByHand) {
  AccuracyAccumulator a;
  const std::vector<float> ref = {0.0f, static_cast<float>(std::log(3.0))}, cand = {0.0f, 0.0f};
  a.add(ref, cand, 1);
  a.add(ref, ref, 0);  // identical rows: KL 0, agreement
  const AccuracySummary s = a.summary();
  const double kl = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  EXPECT_EQ(s.positions, 2);
  EXPECT_NEAR(s.kl_mean, kl / 2, 1e-7);
  EXPECT_NEAR(s.kl_max, kl, 1e-7);
  EXPECT_NEAR(s.kl_p99, kl, 1e-7);  // nearest rank: the larger of two
  EXPECT_DOUBLE_EQ(s.top1_agreement, 0.5);
  // Next tokens 1 then 0: reference NLL -ln(3/4) - ln(1/4), candidate -ln(1/2) - ln(1/4).
  EXPECT_NEAR(s.perplexity_reference, std::exp((-std::log(0.75) - std::log(0.25)) / 2), 1e-6);
  EXPECT_NEAR(s.perplexity_candidate, std::exp((-std::log(0.5) - std::log(0.25)) / 2), 1e-6);
  EXPECT_EQ(tokens_before_divergence(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{1, 2, 4, 5}), 2);
  EXPECT_EQ(tokens_before_divergence(std::vector<int32_t>{1, 2}, std::vector<int32_t>{1, 2, 4}), 2);
  EXPECT_THROW(a.add(ref, cand, 2), Error);
}
}  // namespace
}  // namespace iol::bench
