// Arrival generators and length distributions, checked statistically with fixed seeds.
// Tolerance: 5 standard errors of the estimated statistic.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "../support/temp_dir.hpp"
#include "iol/bench/workload.hpp"
#include "iol/core/error.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::bench {
namespace {

struct Moments {
  double mean, variance;
};
Moments gap_moments(const std::vector<double>& times) {
  std::vector<double> gaps;
  for (size_t i = 1; i < times.size(); ++i) gaps.push_back(times[i] - times[i - 1]);
  double mean = 0, var = 0;
  for (double g : gaps) mean += g;
  mean /= static_cast<double>(gaps.size());
  for (double g : gaps) var += (g - mean) * (g - mean);
  return {mean, var / static_cast<double>(gaps.size() - 1)};
}

TEST(Arrivals, PoissonGapsHaveMeanAndVarianceOfTheExponential) {
  const int n = 40000;
  const double rate = 4.0;
  Moments m = gap_moments(gamma_arrival_times(n, rate, 1.0, 7));
  const double mean = 1 / rate, variance = 1 / (rate * rate);
  EXPECT_NEAR(m.mean, mean, 5 * std::sqrt(variance / n));
  // Var of the sample variance of an exponential ≈ 8σ⁴/n.
  EXPECT_NEAR(m.variance, variance, 5 * std::sqrt(8.0 / n) * variance);
}

TEST(Arrivals, BurstinessScalesTheVarianceAndKeepsTheMean) {
  const int n = 40000;
  const double rate = 2.0;
  for (double k : {0.5, 4.0}) {
    Moments m = gap_moments(gamma_arrival_times(n, rate, k, 11));
    const double variance = 1 / (k * rate * rate);
    EXPECT_NEAR(m.mean, 1 / rate, 5 * std::sqrt(variance / n)) << "burstiness " << k;
    // Gamma: excess kurtosis 6/k → Var(s²) ≈ σ⁴ (2 + 6/k) / n.
    EXPECT_NEAR(m.variance, variance, 5 * std::sqrt((2 + 6 / k) / n) * variance) << "burstiness " << k;
  }
}

TEST(Arrivals, SameSeedSameTimes) {
  EXPECT_EQ(gamma_arrival_times(100, 3, 1, 5), gamma_arrival_times(100, 3, 1, 5));
  EXPECT_NE(gamma_arrival_times(100, 3, 1, 5), gamma_arrival_times(100, 3, 1, 6));
  EXPECT_EQ(gamma_arrival_times(3, 3, 1, 5).front(), 0.0);
}

TEST(Workload, LengthDistributions) {
  Rng rng(3);
  LengthDistribution uniform{LengthDistribution::Kind::Uniform, 0, 10, 20};
  std::vector<int> seen(21, 0);
  for (int i = 0; i < 20000; ++i) {
    int64_t v = uniform.sample(rng);
    ASSERT_GE(v, 10);
    ASSERT_LE(v, 20);
    seen[static_cast<size_t>(v)]++;
  }
  for (int v = 10; v <= 20; ++v) EXPECT_NEAR(seen[static_cast<size_t>(v)] / 20000.0, 1.0 / 11, 5 * std::sqrt((1.0 / 11) * (10.0 / 11) / 20000));
  LengthDistribution normal{LengthDistribution::Kind::Normal, 0, 0, 0, 200, 30, 1, 1000};
  double sum = 0, squares = 0;
  for (int i = 0; i < 20000; ++i) {
    double v = static_cast<double>(normal.sample(rng));
    sum += v;
    squares += v * v;
  }
  double mean = sum / 20000, sd = std::sqrt(squares / 20000 - mean * mean);
  EXPECT_NEAR(mean, 200, 5 * 30 / std::sqrt(20000.0));
  EXPECT_NEAR(sd, 30, 1.0);
}

TEST(Workload, RequestsAreDeterministicAndWarmupComesFirst) {
  WorkloadSpec spec;
  spec.num_requests = 5;
  spec.warmup_requests = 2;
  spec.input_len = {LengthDistribution::Kind::Uniform, 0, 4, 9};
  auto a = make_requests(spec, 100), b = make_requests(spec, 100);
  ASSERT_EQ(a.size(), 7u);
  EXPECT_TRUE(a[0].warmup && a[1].warmup && !a[2].warmup);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].prompt_ids, b[i].prompt_ids);
}

// Copy prompts: the last quarter repeats the passage's opening, from a text file or seeded words.
TEST(Workload, CopyPromptsRepeatTheOpeningOfTheirPassage) {
  const std::string dir = std::string(IOL_FIXTURES_DIR) + "/reference_models";
  auto tok = tokenizer::Tokenizer::from_directory(dir + "/target");
  const size_t specials = tok->encode("", true).size();
  for (const std::string dataset : {std::string(), dir + "/heldout-sample.txt"}) {
    SCOPED_TRACE(dataset.empty() ? "seeded words" : dataset);
    WorkloadSpec spec;
    spec.prompt_source = "copy";
    spec.dataset = dataset;
    spec.num_requests = 3;
    spec.input_len = {LengthDistribution::Kind::Fixed, 200};
    spec.validate("test");
    auto requests = make_requests(spec, 258, tok.get());
    ASSERT_EQ(requests.size(), 3u);
    for (const auto& r : requests) {
      ASSERT_EQ(r.prompt_ids.size(), 200u);
      EXPECT_EQ(std::vector<int32_t>(r.prompt_ids.begin(), r.prompt_ids.begin() + specials), tok->encode("", true));
      const size_t repeat = 50, body = 200 - repeat - specials;
      for (size_t k = 0; k < repeat; ++k) ASSERT_EQ(r.prompt_ids[specials + body + k], r.prompt_ids[specials + k]) << k;
    }
    EXPECT_NE(requests[0].prompt_ids, requests[1].prompt_ids);  // seeded offsets differ
    spec.input_len = {LengthDistribution::Kind::Fixed, 1};
    EXPECT_EQ(make_requests(spec, 258, tok.get())[0].prompt_ids.size(), 1u);
  }
}

TEST(Workload, ScenarioFilesParseAndBadOnesSayWhere) {
  testing::TempDir dir;
  auto write = [&](const std::string& text) {
    std::ofstream(dir.str("s.yaml")) << text;
    return dir.str("s.yaml");
  };
  WorkloadSpec spec = WorkloadSpec::from_yaml_file(write(
      "name: t\nnum_requests: 3\ninput_len: {dist: normal, mean: 50, stdev: 5}\noutput_len: 7\narrival: closed\nconcurrency: [1, 4]\n"));
  EXPECT_EQ(spec.name, "t");
  EXPECT_EQ(spec.input_len.kind, LengthDistribution::Kind::Normal);
  EXPECT_EQ(spec.output_len.value, 7);
  EXPECT_EQ(sweep_points(spec).size(), 2u);
  auto error = [&](const std::string& text) {
    try {
      WorkloadSpec::from_yaml_file(write(text));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string path = dir.str("s.yaml");
  EXPECT_EQ(error("num_request: 3\n"), path + ": unknown key 'num_request' (known: name, num_requests, warmup_requests, "
                                              "input_len, output_len, ignore_eos, prompts, dataset, arrival, concurrency, request_rate, burstiness, seed)");
  EXPECT_EQ(error("arrival: sometimes\n"), path + ": 'arrival' must be offline, closed or poisson (got 'sometimes')");
  EXPECT_EQ(error("arrival: poisson\n"), path + ": arrival poisson needs 'request_rate'");
  EXPECT_EQ(error("num_requests: many\n"), path + ": 'num_requests' must be an integer");
  EXPECT_EQ(error("input_len: {dist: zipf}\n"), path + ": 'input_len.dist' must be fixed, uniform or normal (got 'zipf')");
  EXPECT_EQ(error("name: [unclosed\n"), path + ": malformed YAML at line 2, column 1: end of sequence flow not found");
  EXPECT_EQ(error("prompts: sharegpt\n"), path + ": prompts sharegpt needs 'dataset' (a file path)");
  EXPECT_EQ(error("prompts: books\n"), path + ": prompts must be random, text, copy, sharegpt or jsonl (got 'books')");
  EXPECT_EQ(error("- 1\n"), path + ": a scenario must be a YAML map");
}

}  // namespace
}  // namespace iol::bench
