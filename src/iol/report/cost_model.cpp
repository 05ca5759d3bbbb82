#include "iol/report/cost_model.hpp"

#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/report/record_fields.hpp"

namespace iol::report {

using nlohmann::json;

FleetCost fleet_cost(const PriceTable& prices, const GpuPrice& gpu, int64_t num_gpus, double hours,
                     std::optional<double> measured_power_w) {
  if (num_gpus <= 0) throw UsageError(fmt::format("--gpus must be positive (got {})", num_gpus));
  if (!(hours > 0)) throw UsageError(fmt::format("--years/--hours must be positive (got {} hours)", hours));
  FleetCost f;
  f.gpu = gpu.name;
  f.num_gpus = num_gpus;
  f.hours = hours;
  f.power_measured = measured_power_w.has_value();
  f.power_w_per_gpu = measured_power_w.value_or(gpu.power_w);
  const double n = static_cast<double>(num_gpus);
  f.cloud_usd = n * gpu.cloud_usd_per_gpu_hour * hours;
  f.capex_usd = n * gpu.purchase_usd_per_gpu * hours / (prices.amortization_years * kHoursPerYear);
  f.energy_kwh = n * (f.power_w_per_gpu + prices.host_power_w_per_gpu) * hours / 1000.0 * prices.pue;
  f.energy_usd = f.energy_kwh * prices.usd_per_kwh;
  f.on_premise_usd = f.capex_usd + f.energy_usd;
  f.cloud_over_on_premise = f.on_premise_usd > 0 ? f.cloud_usd / f.on_premise_usd : 0;
  return f;
}

RecordCost record_cost(const PriceTable& prices, const json& record, const std::string& priced_as, const Traffic& traffic) {
  RecordCost c;
  c.run_id = string_field(record, "/run_id");
  c.num_gpus = static_cast<int64_t>(number_field(record, "/engine/config/tensor_parallel_size").value_or(1));
  const std::string gpu_name = string_field(record, "/environment/gpu/name", "");
  const GpuPrice* gpu = priced_as.empty() ? prices.find(gpu_name) : &prices.at(priced_as);
  const auto out_tps = number_field(record, "/metrics/output_throughput");
  const auto duration = number_field(record, "/metrics/duration_s");
  const auto out_tokens = number_field(record, "/metrics/total_output_tokens");
  if (!gpu) {
    c.reason = gpu_name.empty() ? "no GPU in the record (price it as one with --gpu NAME)"
                                : fmt::format("no price for '{}' (add it with --prices FILE)", gpu_name);
    return c;
  }
  if (!out_tps || *out_tps <= 0 || !duration || *duration <= 0 || !out_tokens || *out_tokens <= 0) {
    c.reason = "no measured output throughput";
    return c;
  }
  c.gpu = gpu->name;
  c.output_throughput = *out_tps;
  c.input_throughput = number_field(record, "/metrics/total_input_tokens").value_or(0) / *duration;
  if (auto j = number_field(record, "/energy/j_per_output_token"); j && *j > 0) {
    c.j_per_output_token = *j;
    c.energy_measured = true;
  } else {
    // Not measured (no NVML): the board power at TDP for the run's duration.
    c.j_per_output_token = gpu->power_w * static_cast<double>(c.num_gpus) * *duration / *out_tokens;
  }
  const double n = static_cast<double>(c.num_gpus);
  c.cloud_usd_per_hour = n * gpu->cloud_usd_per_gpu_hour;
  c.on_premise_usd_per_hour = n * gpu->purchase_usd_per_gpu / (prices.amortization_years * kHoursPerYear);
  const double out_per_hour = c.output_throughput * 3600, in_per_hour = c.input_throughput * 3600;
  // Host power per GPU for the time one token takes, on top of the GPU's measured energy.
  const double j_host_per_token = prices.host_power_w_per_gpu * n / c.output_throughput;
  c.energy_usd_per_m_output = (c.j_per_output_token + j_host_per_token) * 1e6 / 3.6e6 * prices.pue * prices.usd_per_kwh;
  c.cloud_usd_per_m_output = c.cloud_usd_per_hour / out_per_hour * 1e6;
  c.on_premise_usd_per_m_output = c.on_premise_usd_per_hour / out_per_hour * 1e6 + c.energy_usd_per_m_output;
  if (in_per_hour > 0) {
    // The whole run's cost over its input tokens (prefill and decode share the GPU: no split).
    c.cloud_usd_per_m_input = c.cloud_usd_per_hour / in_per_hour * 1e6;
    c.on_premise_usd_per_m_input = c.on_premise_usd_per_m_output * out_per_hour / in_per_hour;
  }
  if (traffic.given()) {
    const double completed = number_field(record, "/metrics/num_completed").value_or(0);
    if (traffic.request_rate > 0) {
      if (completed <= 0) {
        c.reason = "no completed requests to size --request-rate from";
        return c;
      }
      c.required_output_tokens_per_s = traffic.request_rate * *out_tokens / completed;
    } else {
      c.required_output_tokens_per_s = traffic.output_tokens_per_month / (30 * 86400.0);
    }
    c.replicas = static_cast<int64_t>(std::ceil(c.required_output_tokens_per_s / c.output_throughput));
    c.cloud_usd_per_day = static_cast<double>(c.replicas) * c.cloud_usd_per_hour * 24;
    // Provisioned hardware is paid for whole; energy follows the tokens actually served.
    c.on_premise_usd_per_day = static_cast<double>(c.replicas) * c.on_premise_usd_per_hour * 24 +
                               c.required_output_tokens_per_s * 86400 / 1e6 * c.energy_usd_per_m_output;
  }
  return c;
}

void compare_cost(RecordCost& cost, const RecordCost& baseline) {
  if (cost.gpu.empty() || baseline.gpu.empty() || cost.cloud_usd_per_m_output <= 0) return;
  cost.baseline_run_id = baseline.run_id;
  cost.cost_factor_cloud = baseline.cloud_usd_per_m_output / cost.cloud_usd_per_m_output;
  cost.cost_factor_on_premise = baseline.on_premise_usd_per_m_output / cost.on_premise_usd_per_m_output;
}

namespace {

json record_cost_json(const RecordCost& c, const json& record) {
  json j = {{"run_id", c.run_id}, {"engine", engine_label(record)}, {"point", point_key(record)},
            {"tag", string_field(record, "/tag", "")}, {"gpu", c.gpu.empty() ? json(nullptr) : json(c.gpu)},
            {"reason", c.reason.empty() ? json(nullptr) : json(c.reason)}, {"num_gpus", c.num_gpus}};
  if (c.gpu.empty() || c.output_throughput <= 0) return j;
  j.update({{"output_throughput", c.output_throughput}, {"input_throughput", c.input_throughput},
            {"j_per_output_token", c.j_per_output_token}, {"energy_measured", c.energy_measured},
            {"cloud_usd_per_hour", c.cloud_usd_per_hour}, {"on_premise_usd_per_hour", c.on_premise_usd_per_hour},
            {"cloud_usd_per_m_output", c.cloud_usd_per_m_output}, {"cloud_usd_per_m_input", c.cloud_usd_per_m_input},
            {"on_premise_usd_per_m_output", c.on_premise_usd_per_m_output},
            {"on_premise_usd_per_m_input", c.on_premise_usd_per_m_input},
            {"energy_usd_per_m_output", c.energy_usd_per_m_output}});
  if (c.replicas > 0)
    j.update({{"required_output_tokens_per_s", c.required_output_tokens_per_s}, {"replicas", c.replicas},
              {"cloud_usd_per_day", c.cloud_usd_per_day}, {"cloud_usd_per_year", c.cloud_usd_per_day * 365},
              {"on_premise_usd_per_day", c.on_premise_usd_per_day}, {"on_premise_usd_per_year", c.on_premise_usd_per_day * 365}});
  if (!c.baseline_run_id.empty())
    j.update({{"baseline_run_id", c.baseline_run_id}, {"cost_factor_cloud", c.cost_factor_cloud},
              {"cost_factor_on_premise", c.cost_factor_on_premise}});
  return j;
}

std::string usd(double v) {
  if (v >= 100) return fmt::format("${:.0f}", v);
  if (v >= 1) return fmt::format("${:.2f}", v);
  return fmt::format("${:.4f}", v);
}

}  // namespace

json cost_table(const PriceTable& prices, const std::vector<json>& records, const std::string& priced_as,
                const Traffic& traffic, const std::string& baseline_run_id) {
  std::vector<RecordCost> costs;
  for (const auto& r : records) costs.push_back(record_cost(prices, r, priced_as, traffic));
  // Baseline per comparison key: the named run, else the best PyTorch record, else the first.
  std::map<std::string, size_t> baseline_of;
  const RecordCost* global = nullptr;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!baseline_run_id.empty() && costs[i].run_id == baseline_run_id) global = &costs[i];
    const std::string key = comparison_key(records[i]);
    auto it = baseline_of.find(key);
    if (it == baseline_of.end()) {
      baseline_of[key] = i;
    } else {
      const size_t b = it->second;
      const bool i_pt = is_pytorch_baseline(records[i]), b_pt = is_pytorch_baseline(records[b]);
      if ((i_pt && !b_pt) || (i_pt && b_pt && costs[i].output_throughput > costs[b].output_throughput)) it->second = i;
    }
  }
  if (!baseline_run_id.empty() && !global) fail("cost: baseline run '{}' is not in the results", baseline_run_id);
  json rows = json::array();
  for (size_t i = 0; i < records.size(); ++i) {
    const RecordCost& baseline = global ? *global : costs[baseline_of[comparison_key(records[i])]];
    compare_cost(costs[i], baseline);
    rows.push_back(record_cost_json(costs[i], records[i]));
  }
  return {{"prices_date", prices.date}, {"prices_origin", prices.origin}, {"amortization_years", prices.amortization_years},
          {"pue", prices.pue}, {"usd_per_kwh", prices.usd_per_kwh}, {"host_power_w_per_gpu", prices.host_power_w_per_gpu},
          {"request_rate", traffic.request_rate > 0 ? json(traffic.request_rate) : json(nullptr)},
          {"output_tokens_per_month", traffic.output_tokens_per_month > 0 ? json(traffic.output_tokens_per_month) : json(nullptr)},
          {"rows", rows}};
}

json fleet_json(const FleetCost& f) {
  return {{"gpu", f.gpu}, {"num_gpus", f.num_gpus}, {"hours", f.hours}, {"power_w_per_gpu", f.power_w_per_gpu},
          {"power_measured", f.power_measured}, {"cloud_usd", f.cloud_usd}, {"capex_usd", f.capex_usd},
          {"energy_kwh", f.energy_kwh}, {"energy_usd", f.energy_usd}, {"on_premise_usd", f.on_premise_usd},
          {"cloud_over_on_premise", f.cloud_over_on_premise}};
}

std::string cost_markdown(const json& table, const PriceTable& prices) {
  std::string md = fmt::format(
      "Prices: {} (dated {}); on premise: purchase amortized over {:g} years, PUE {:g}, ${:g}/kWh, host power {:g} W per GPU. "
      "$/1M tokens divide the deployment's hourly cost by the tokens it produced per hour (docs/report.md). "
      "\"÷N\" is the baseline's cost per output token over this row's (the best PyTorch record of the same point, when "
      "present).\n\n", table.value("prices_origin", "?"), table.value("prices_date", "?"), prices.amortization_years, prices.pue,
      prices.usd_per_kwh, prices.host_power_w_per_gpu);
  const bool traffic = !table["request_rate"].is_null() || !table["output_tokens_per_month"].is_null();
  md += "| run | engine | point | GPU | output tok/s | cloud $/h | cloud $/1M out | cloud $/1M in | on-prem $/1M out | energy $/1M out | J/token | ÷N cloud | ÷N on-prem |";
  md += traffic ? " replicas | cloud $/year | on-prem $/year |\n" : "\n";
  md += traffic ? "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" : "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : table["rows"]) {
    if (r["gpu"].is_null() || !r.contains("cloud_usd_per_m_output")) {
      md += fmt::format("| {} | {} | {} | not priced: {} |||||||||{}\n", r.value("run_id", "?"), r.value("engine", "?"),
                        r.value("point", "?"), r["reason"].is_string() ? r["reason"].get<std::string>() : "?", traffic ? "|||" : "");
      continue;
    }
    auto factor = [&](const char* key) {
      return r.contains(key) ? fmt::format("{:.2f}×", r[key].get<double>()) : std::string("–");
    };
    md += fmt::format("| {} | {} | {} | {}{} | {:.1f} | {} | {} | {} | {} | {} | {:.4f}{} | {} | {} |", r["run_id"].get<std::string>(),
                      r["engine"].get<std::string>(), r["point"].get<std::string>(), r["num_gpus"].get<int64_t>() > 1 ? fmt::format("{}×", r["num_gpus"].get<int64_t>()) : "",
                      r["gpu"].get<std::string>(), r["output_throughput"].get<double>(), usd(r["cloud_usd_per_hour"].get<double>()),
                      usd(r["cloud_usd_per_m_output"].get<double>()),
                      r["cloud_usd_per_m_input"].get<double>() > 0 ? usd(r["cloud_usd_per_m_input"].get<double>()) : "–",
                      usd(r["on_premise_usd_per_m_output"].get<double>()), usd(r["energy_usd_per_m_output"].get<double>()),
                      r["j_per_output_token"].get<double>(), r["energy_measured"].get<bool>() ? "" : " (TDP)",
                      factor("cost_factor_cloud"), factor("cost_factor_on_premise"));
    if (traffic)
      md += r.contains("replicas") ? fmt::format(" {} | {} | {} |", r["replicas"].get<int64_t>(), usd(r["cloud_usd_per_year"].get<double>()),
                                                 usd(r["on_premise_usd_per_year"].get<double>()))
                                   : " – | – | – |";
    md += "\n";
  }
  return md;
}

std::string fleet_markdown(const FleetCost& f, const PriceTable& prices) {
  const GpuPrice& g = prices.at(f.gpu);
  std::string md = fmt::format("{}×{} for {:g} hours ({:.2f} years), prices {} (dated {}):\n\n", f.num_gpus, f.gpu, f.hours,
                               f.hours / kHoursPerYear, prices.origin, prices.date);
  md += "| | formula | value |\n|---|---|---|\n";
  md += fmt::format("| cloud | {} GPUs × ${:g}/GPU-hour × {:g} h | {} |\n", f.num_gpus, g.cloud_usd_per_gpu_hour, f.hours, usd(f.cloud_usd));
  md += fmt::format("| on-premise purchase, amortized | {} × ${:g} × {:g} h / ({:g} years × 8760 h) | {} |\n", f.num_gpus,
                    g.purchase_usd_per_gpu, f.hours, prices.amortization_years, usd(f.capex_usd));
  md += fmt::format("| on-premise energy | {} × ({:.0f} W {} + {:g} W host) × {:g} h × PUE {:g} = {:.0f} kWh × ${:g}/kWh | {} |\n",
                    f.num_gpus, f.power_w_per_gpu, f.power_measured ? "measured" : "TDP", prices.host_power_w_per_gpu, f.hours,
                    prices.pue, f.energy_kwh, prices.usd_per_kwh, usd(f.energy_usd));
  md += fmt::format("| on-premise total | purchase + energy | {} |\n", usd(f.on_premise_usd));
  md += fmt::format("| cloud ÷ on-premise | | {:.2f}× |\n", f.cloud_over_on_premise);
  return md;
}

}  // namespace iol::report
