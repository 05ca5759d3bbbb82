// iol cost: the cost model (report/cost_model.hpp). With result files: $ per 1M tokens, per
// day/year at a traffic, and the "÷N cost" factor against the baseline, per record. Always: a
// fleet of --gpus GPUs for --years, cloud against on premise (the seed's 8×H100 example).
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/bench/results.hpp"
#include "iol/cli/commands.hpp"
#include "iol/core/error.hpp"
#include "iol/report/cost_model.hpp"
#include "iol/report/record_fields.hpp"

namespace iol::cli {

namespace {

struct CostOptions {
  std::vector<std::string> results;
  std::string prices;
  std::string gpu;
  std::string price_as;
  int64_t gpus = 8;
  double years = 1;
  double power_w = 0;
  double request_rate = 0;
  double tokens_per_month = 0;
  std::string baseline;
  bool print_prices = false;
  bool json = false;
};

void run_cost(const CostOptions& o) {
  if (o.print_prices) {
    fmt::print("{}", report::default_prices_yaml());
    return;
  }
  if (o.request_rate < 0) throw UsageError("--request-rate must be positive");
  if (o.tokens_per_month < 0) throw UsageError("--tokens-per-month must be positive");
  if (o.request_rate > 0 && o.tokens_per_month > 0) throw UsageError("give --request-rate or --tokens-per-month, not both");
  if (o.power_w < 0) throw UsageError("--power-w must be positive");
  if (!(o.years > 0)) throw UsageError(fmt::format("--years must be positive (got {})", o.years));
  const report::PriceTable prices = report::load_price_table(o.prices);
  std::vector<nlohmann::json> records;
  for (const auto& path : o.results) {
    auto more = bench::read_jsonl(path);
    records.insert(records.end(), more.begin(), more.end());
  }
  if (!o.results.empty() && records.empty()) fail("cost: no result records in {}", o.results.front());
  const report::Traffic traffic{o.request_rate, o.tokens_per_month};
  nlohmann::json out = nlohmann::json::object();
  std::string text;
  if (!records.empty()) {
    out["records"] = report::cost_table(prices, records, o.price_as, traffic, o.baseline);
    text += report::cost_markdown(out["records"], prices) + "\n";
  }
  // The fleet: --gpu, else the first priced record's GPU, else H100 (the seed's example).
  std::string fleet_gpu = o.gpu;
  if (fleet_gpu.empty() && out.contains("records"))
    for (const auto& r : out["records"]["rows"])
      if (r["gpu"].is_string()) {
        fleet_gpu = r["gpu"].get<std::string>();
        break;
      }
  if (fleet_gpu.empty()) fleet_gpu = "H100";
  const report::GpuPrice& gpu = prices.at(fleet_gpu);
  const report::FleetCost fleet = report::fleet_cost(prices, gpu, o.gpus, o.years * report::kHoursPerYear,
                                                     o.power_w > 0 ? std::optional<double>(o.power_w) : std::nullopt);
  out["fleet"] = report::fleet_json(fleet);
  text += report::fleet_markdown(fleet, prices);
  if (o.json) fmt::print("{}\n", out.dump(2));
  else fmt::print("{}", text);
}

}  // namespace

void add_cost_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<CostOptions>();
  CLI::App* command = app.add_subcommand("cost", "Cost model: $ per 1M tokens from result records, cloud vs on-premise fleets");
  command->footer(
      "Examples:\n"
      "  iol cost --gpu H100 --gpus 8 --years 1                      # an 8×H100 cluster for a year: cloud vs on-premise\n"
      "  iol cost bench/results/h200/*.jsonl --request-rate 20       # $/1M tokens, replicas and $/year at 20 req/s\n"
      "  iol cost reports/results.jsonl --price-as H100 --prices my-prices.yaml --json\n"
      "  iol cost --print-prices > my-prices.yaml                    # the defaults, to edit");
  command->add_option("results", options->results, "Result files (.jsonl) written by iol bench or the PyTorch baseline");
  command->add_option("--prices", options->prices, "YAML file overriding the default prices, key by key (see --print-prices)");
  command->add_option("--gpu", options->gpu, "GPU of the fleet (default: the records' GPU, else H100)");
  command->add_option("--price-as", options->price_as, "Price every record as this GPU (e.g. CPU runs, or another GPU's prices)");
  command->add_option("--gpus", options->gpus, "GPUs in the fleet")->capture_default_str();
  command->add_option("--years", options->years, "How long the fleet is kept")->capture_default_str();
  command->add_option("--power-w", options->power_w, "Mean board power per GPU of the fleet (default: the table's TDP)");
  command->add_option("--request-rate", options->request_rate, "Traffic in requests/s (tokens per request from each record)");
  command->add_option("--tokens-per-month", options->tokens_per_month, "Traffic in output tokens per 30-day month");
  command->add_option("--baseline", options->baseline, "Run id the ÷N factors compare against (default: best PyTorch record of each point)");
  command->add_flag("--print-prices", options->print_prices, "Print the default price table (YAML) and exit");
  command->add_flag("--json", options->json, "Print JSON instead of Markdown");
  command->callback([options, &runner] { runner = [options] { run_cost(*options); }; });
}

}  // namespace iol::cli
