// The cost model: dollars per token and per day/year for a deployment, in the cloud (GPU-hours at
// a list price) and on premise (purchase amortized over N years + energy × PUE × $/kWh), from
// measured records (throughput, energy per token) and a price table (cost_prices.hpp). Formulas
// in docs/report.md; every figure names the record it comes from.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/report/cost_prices.hpp"

namespace iol::report {

inline constexpr double kHoursPerYear = 8760;  // 365 days

// A fleet of GPUs kept for `hours`, whatever it serves: the seed's "8×H100 for a year".
struct FleetCost {
  std::string gpu;
  int64_t num_gpus = 0;
  double hours = 0;
  double power_w_per_gpu = 0;  // measured mean board power, or the table's TDP
  bool power_measured = false;
  double cloud_usd = 0;        // num_gpus × $/GPU-hour × hours
  double capex_usd = 0;        // num_gpus × purchase × hours / (amortization_years × 8760)
  double energy_kwh = 0;       // num_gpus × (power + host power) × hours / 1000 × PUE
  double energy_usd = 0;       // energy_kwh × $/kWh
  double on_premise_usd = 0;   // capex + energy
  double cloud_over_on_premise = 0;
};
FleetCost fleet_cost(const PriceTable& prices, const GpuPrice& gpu, int64_t num_gpus, double hours,
                     std::optional<double> measured_power_w);

// Traffic to serve: requests/s (tokens per request from the record) or output tokens per month.
struct Traffic {
  double request_rate = 0;           // > 0: requests/s
  double output_tokens_per_month = 0;  // > 0: tokens per 30-day month
  bool given() const { return request_rate > 0 || output_tokens_per_month > 0; }
};

// Cost of one record's configuration. `priced_as`: a GPU name overriding the record's (to price a
// CPU run as if it were that GPU, or a GPU absent from the table).
struct RecordCost {
  std::string run_id;
  std::string gpu;                 // table entry used; empty: not priced (reason says why)
  std::string reason;
  int64_t num_gpus = 1;
  double output_throughput = 0;    // tokens/s, measured
  double input_throughput = 0;
  double j_per_output_token = 0;   // measured, or TDP × duration / tokens when not measured
  bool energy_measured = false;
  double cloud_usd_per_hour = 0, on_premise_usd_per_hour = 0;  // on premise: amortized purchase only
  double cloud_usd_per_m_output = 0, cloud_usd_per_m_input = 0;
  double on_premise_usd_per_m_output = 0, on_premise_usd_per_m_input = 0;
  double energy_usd_per_m_output = 0;  // included in on_premise_usd_per_m_output
  // With traffic:
  double required_output_tokens_per_s = 0;
  int64_t replicas = 0;            // ceil(required / measured throughput)
  double cloud_usd_per_day = 0, on_premise_usd_per_day = 0;
  // Against the baseline record (same workload point), when one is given:
  std::string baseline_run_id;
  double cost_factor_cloud = 0;    // baseline $/token ÷ this $/token ("÷N cost")
  double cost_factor_on_premise = 0;
};

RecordCost record_cost(const PriceTable& prices, const nlohmann::json& record, const std::string& priced_as,
                       const Traffic& traffic);
// Cost factors of `cost` against `baseline` (both priced); leaves them 0 otherwise.
void compare_cost(RecordCost& cost, const RecordCost& baseline);

// Per record (baseline: the first record of the same workload point, or baseline_run_id):
// cost rows as JSON, for the Markdown and HTML reports and `iol cost --json`.
nlohmann::json cost_table(const PriceTable& prices, const std::vector<nlohmann::json>& records, const std::string& priced_as,
                          const Traffic& traffic, const std::string& baseline_run_id);
nlohmann::json fleet_json(const FleetCost& fleet);
// The Markdown "Cost" section of a report (from cost_table's JSON).
std::string cost_markdown(const nlohmann::json& table, const PriceTable& prices);
std::string fleet_markdown(const FleetCost& fleet, const PriceTable& prices);

}  // namespace iol::report
