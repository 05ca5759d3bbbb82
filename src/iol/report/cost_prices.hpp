// Prices behind the cost model: per GPU kind a cloud $/GPU-hour, a purchase price and a board
// power, and the on-premise constants (amortization, PUE, $/kWh). The defaults are a dated table
// of indicative list prices with their sources (docs/report.md); a user YAML file overrides any
// of them key by key (`iol cost --print-prices` writes the defaults as a starting point).
#pragma once
#include <string>
#include <vector>

namespace iol::report {

struct GpuPrice {
  std::string name;                 // "H100"
  std::vector<std::string> match;   // substrings of environment.gpu.name that select it
  double cloud_usd_per_gpu_hour = 0;
  double purchase_usd_per_gpu = 0;  // the GPU's share of a server, bought
  double power_w = 0;               // board power (TDP), used when a record has no measured power
  std::string source;
};

struct PriceTable {
  std::string date;                 // when the prices were taken
  std::string origin;               // "built-in defaults" or the override file
  std::vector<GpuPrice> gpus;
  double amortization_years = 3;
  double pue = 1.5;
  double usd_per_kwh = 0.13;
  double host_power_w_per_gpu = 0;  // CPU, memory, fans, network per GPU, beyond the GPU's own
  std::string on_premise_source;

  // The entry whose `match` is in `gpu_name` (case-insensitive), or nullptr.
  const GpuPrice* find(const std::string& gpu_name) const;
  // By key ("H100") or by match; throws UsageError listing the known names.
  const GpuPrice& at(const std::string& name) const;
};

// The built-in table as YAML text (what --print-prices writes).
const std::string& default_prices_yaml();
// Defaults, then `override_file` (when not empty) merged over them; errors name the file and key.
PriceTable load_price_table(const std::string& override_file);
// For tests: the defaults merged with YAML text.
PriceTable price_table_from_yaml(const std::string& override_yaml, const std::string& origin);

}  // namespace iol::report
