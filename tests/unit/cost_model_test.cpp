// The cost model against hand-computed cases: the seed's 8×H100-for-a-year example with the
// default prices and with user-changed ones, $/1M tokens and replicas for a synthetic record,
// the ÷N factor, and the price file's validation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/report/cost_model.hpp"

namespace iol::report {
namespace {

using nlohmann::json;

json record(const std::string& run_id, double output_tps, const std::string& runner = "iol-inprocess") {
  // 100 s, 1000 requests of 50 in / 100 out tokens.
  return {{"run_id", run_id},
          {"engine", {{"name", "iol"}, {"runner", runner}, {"backend", "cuda"}}},
          {"workload", {{"name", "w"}, {"sweep", {{"mode", "offline"}, {"label", "offline"}, {"concurrency", nullptr}, {"request_rate", nullptr}}}}},
          {"metrics", {{"output_throughput", output_tps}, {"duration_s", 100.0}, {"total_output_tokens", output_tps * 100},
                       {"total_input_tokens", output_tps * 50}, {"num_completed", output_tps}}},
          {"energy", {{"j_per_output_token", 0.5}}},
          {"environment", {{"gpu", {{"name", "NVIDIA H100 80GB HBM3"}}}}}};
}

TEST(CostModel, SeedExampleEightH100ForAYearWithDefaultPrices) {
  const PriceTable prices = load_price_table("");
  const FleetCost f = fleet_cost(prices, prices.at("H100"), 8, kHoursPerYear, std::nullopt);
  EXPECT_NEAR(f.cloud_usd, 8 * 2.99 * 8760, 1e-6);        // 209,539.20
  EXPECT_NEAR(f.capex_usd, 8 * 30000.0 / 3, 1e-6);        // 80,000
  EXPECT_NEAR(f.energy_kwh, 8 * 0.7 * 8760 * 1.56, 1e-6);  // 76,527.36 kWh
  EXPECT_NEAR(f.energy_usd, 9948.5568, 1e-6);
  EXPECT_NEAR(f.on_premise_usd, 89948.5568, 1e-6);
  EXPECT_NEAR(f.cloud_over_on_premise, 209539.2 / 89948.5568, 1e-9);
  EXPECT_FALSE(f.power_measured);
}

TEST(CostModel, SeedExampleFollowsUserChangedPrices) {
  const PriceTable prices = price_table_from_yaml(R"(
date: "2030-01"
gpus:
  H100: {cloud_usd_per_gpu_hour: 4.0, purchase_usd_per_gpu: 25000}
on_premise: {amortization_years: 4, pue: 1.2, usd_per_kwh: 0.10, host_power_w_per_gpu: 100}
)", "mine.yaml");
  EXPECT_EQ(prices.date, "2030-01");
  EXPECT_EQ(prices.at("H100").power_w, 700);  // untouched keys keep their defaults
  const FleetCost f = fleet_cost(prices, prices.at("H100"), 8, kHoursPerYear, 500.0);
  EXPECT_NEAR(f.cloud_usd, 280320, 1e-6);
  EXPECT_NEAR(f.capex_usd, 50000, 1e-6);
  EXPECT_NEAR(f.energy_kwh, 8 * 0.6 * 8760 * 1.2, 1e-6);  // (500 W measured + 100 W host)
  EXPECT_NEAR(f.energy_usd, 5045.76, 1e-6);
  EXPECT_TRUE(f.power_measured);
}

TEST(CostModel, DollarsPerMillionTokensAndReplicasHandComputed) {
  const PriceTable prices = load_price_table("");
  const RecordCost c = record_cost(prices, record("r", 1000), "", Traffic{20, 0});
  ASSERT_EQ(c.gpu, "H100") << c.reason;
  EXPECT_NEAR(c.cloud_usd_per_hour, 2.99, 1e-12);
  EXPECT_NEAR(c.cloud_usd_per_m_output, 2.99 / 3.6, 1e-9);    // $2.99 per 3.6 M tokens
  EXPECT_NEAR(c.cloud_usd_per_m_input, 2.99 / 1.8, 1e-9);     // 500 input tok/s
  const double capex_per_m = 30000.0 / (3 * 8760) / 3.6;     // $/h over 3.6 M tokens/h
  const double energy_per_m = 0.5 * 1e6 / 3.6e6 * 1.56 * 0.13;
  EXPECT_NEAR(c.energy_usd_per_m_output, energy_per_m, 1e-12);
  EXPECT_NEAR(c.on_premise_usd_per_m_output, capex_per_m + energy_per_m, 1e-12);
  // 20 req/s × 100 tokens = 2000 tok/s → 2 replicas of 1000 tok/s.
  EXPECT_NEAR(c.required_output_tokens_per_s, 2000, 1e-9);
  EXPECT_EQ(c.replicas, 2);
  EXPECT_NEAR(c.cloud_usd_per_day, 2 * 2.99 * 24, 1e-9);
  EXPECT_NEAR(c.on_premise_usd_per_day, 2 * 30000.0 / (3 * 8760) * 24 + 2000 * 86400 / 1e6 * energy_per_m, 1e-9);
}

TEST(CostModel, CostFactorIsTheThroughputRatioAgainstTheBestBaseline) {
  const PriceTable prices = load_price_table("");
  const json table = cost_table(prices, {record("iol", 1000), record("pt-bs8", 200, "pytorch-eager"),
                                         record("pt-bs64", 250, "pytorch-eager")}, "", Traffic{}, "");
  ASSERT_EQ(table["rows"].size(), 3u);
  EXPECT_EQ(table["rows"][0]["baseline_run_id"], "pt-bs64");
  EXPECT_NEAR(table["rows"][0]["cost_factor_cloud"].get<double>(), 4.0, 1e-12);
  EXPECT_NEAR(table["rows"][1]["cost_factor_cloud"].get<double>(), 0.8, 1e-12);
  // On premise energy per token is the same here, so the factor is below the throughput ratio.
  const double f = table["rows"][0]["cost_factor_on_premise"].get<double>();
  EXPECT_GT(f, 1.0);
  EXPECT_LT(f, 4.0);
  const json named = cost_table(prices, {record("iol", 1000), record("pt", 250, "pytorch-eager")}, "", Traffic{}, "iol");
  EXPECT_NEAR(named["rows"][1]["cost_factor_cloud"].get<double>(), 0.25, 1e-12);
  EXPECT_THROW(cost_table(prices, {record("iol", 1000)}, "", Traffic{}, "nope"), Error);
}

TEST(CostModel, CpuRecordsAreNotPricedUnlessPricedAsAGpu) {
  const PriceTable prices = load_price_table("");
  json cpu = record("c", 100);
  cpu["environment"]["gpu"] = nullptr;
  cpu["energy"]["j_per_output_token"] = nullptr;
  const RecordCost unpriced = record_cost(prices, cpu, "", Traffic{});
  EXPECT_TRUE(unpriced.gpu.empty());
  EXPECT_NE(unpriced.reason.find("no GPU"), std::string::npos);
  const RecordCost as_h100 = record_cost(prices, cpu, "H100", Traffic{});
  EXPECT_EQ(as_h100.gpu, "H100");
  EXPECT_FALSE(as_h100.energy_measured);
  EXPECT_NEAR(as_h100.j_per_output_token, 700 * 100.0 / 10000, 1e-12);  // TDP × duration / tokens
}

TEST(CostModel, PriceFilesAreValidatedWithFileAndKey) {
  auto message = [](const std::string& yaml) {
    try {
      price_table_from_yaml(yaml, "p.yaml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("gpus: {H100: {cloud_usd_per_gpu_hour: -1}}").find("p.yaml: gpus.H100: 'cloud_usd_per_gpu_hour' must be > 0"), std::string::npos);
  EXPECT_NE(message("gpus: {H100: {cloud_usd_per_gpu_hour: cheap}}").find("must be a number"), std::string::npos);
  EXPECT_NE(message("gpus: {H100: {colour: red}}").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(message("on_premise: {pue: 0.8}").find("'pue'"), std::string::npos);
  EXPECT_NE(message("budget: 3").find("unknown key 'budget'"), std::string::npos);
  EXPECT_NE(message("gpus: [1, 2").find("not valid YAML"), std::string::npos);
  EXPECT_NE(message("gpus: {B200: {cloud_usd_per_gpu_hour: 6}}").find("'purchase_usd_per_gpu' is missing"), std::string::npos);
  EXPECT_THROW(load_price_table("/nonexistent/prices.yaml"), Error);
  EXPECT_THROW(load_price_table("").at("TPU"), UsageError);
  EXPECT_EQ(load_price_table("").find("NVIDIA H200")->name, "H200");
}

}  // namespace
}  // namespace iol::report
