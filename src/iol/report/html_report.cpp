#include "iol/report/html_report.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/report/ablation_view.hpp"
#include "iol/report/cost_model.hpp"
#include "iol/report/record_fields.hpp"
#include "iol/report/svg_chart.hpp"
#include "iol/version.hpp"

namespace iol::report {

using nlohmann::json;

namespace {

constexpr const char* kStyle = R"(body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}tr:target{background:#fff6cc}
svg.chart{background:#fff;border:1px solid #eee;margin:8px 8px 8px 0}svg .title{font-weight:600;font-size:14px}
svg .tick{font-size:11px;fill:#444}svg .axis{font-size:12px}svg .legend{font-size:11px}svg .grid{stroke:#eee}
.note{color:#555;font-size:13px}code{background:#f5f5f5;padding:0 3px})";

std::string esc(const std::string& s) { return html_escape(s); }

// "iol (cuda) offline-128-128": the configuration a record measures, for legends and labels.
std::string config_label(const json& r) {
  const std::string tag = string_field(r, "/tag", "");
  const json& a = field(r, "/ablation");
  if (a.is_object()) return engine_label(r) + " " + a.value("step", "?");
  return tag.empty() ? engine_label(r) : engine_label(r) + " " + tag;
}

std::string run_link(const std::string& run_id) {
  return fmt::format("<a href=\"#run-{0}\">{0}</a>", esc(run_id));
}

std::string cell(const std::optional<double>& v, const std::string& run_id) {
  return v ? fmt::format("<td data-run-id=\"{}\">{}</td>", esc(run_id), format_value(*v)) : std::string("<td>–</td>");
}

// Baseline of each comparison key: the named run, else the best PyTorch record, else the first.
std::map<std::string, const json*> baselines(const std::vector<json>& records, const std::string& baseline_run_id) {
  std::map<std::string, const json*> out;
  const json* global = nullptr;
  for (const auto& r : records)
    if (!baseline_run_id.empty() && string_field(r, "/run_id") == baseline_run_id) global = &r;
  if (!baseline_run_id.empty() && !global) fail("report: baseline run '{}' is not in the results", baseline_run_id);
  for (const auto& r : records) {
    const std::string key = comparison_key(r);
    if (global) {
      out[key] = global;
      continue;
    }
    auto it = out.find(key);
    if (it == out.end()) {
      out[key] = &r;
    } else if (is_pytorch_baseline(r) && (!is_pytorch_baseline(*it->second) ||
               number_field(r, "/metrics/output_throughput").value_or(0) > number_field(*it->second, "/metrics/output_throughput").value_or(0))) {
      it->second = &r;
    }
  }
  return out;
}

std::string records_section(const std::vector<json>& records, const std::map<std::string, const json*>& base) {
  std::string h = "<h2 id=\"records\">Records</h2>\n<p class=\"note\">One row per record (run id = the record's <code>run_id</code> in the "
                  "results file). Latencies in ms, throughput in tokens/s; \"vs baseline\" is output throughput over the baseline "
                  "record of the same workload point (★; the best PyTorch record when present). Definitions: docs/metrics.md.</p>\n";
  h += "<table><tr><th class=\"l\">run</th><th class=\"l\">engine</th><th class=\"l\">tag</th><th class=\"l\">point</th><th class=\"l\">levers</th>"
       "<th>ok</th><th>req/s</th><th>output tok/s</th><th>vs baseline</th><th>TTFT p50</th><th>TTFT p99</th><th>TPOT p50</th>"
       "<th>TPOT p99</th><th>ITL p50</th><th>ITL p99</th><th>E2E p50</th><th>J/token</th><th>peak GPU mem GiB</th></tr>\n";
  for (const auto& r : records) {
    const std::string id = string_field(r, "/run_id");
    const json* b = base.at(comparison_key(r));
    const auto tput = number_field(r, "/metrics/output_throughput");
    const auto btput = number_field(*b, "/metrics/output_throughput");
    const json& l = field(r, "/engine/levers");
    std::string levers = l.is_object() ? fmt::format("{}, {}{}{}", l.value("batching", "?"), l.value("kv_layout", "?"),
                                                     l.value("prefix_caching", false) ? ", prefix cache" : "",
                                                     l.value("chunked_prefill", false) ? ", chunked" : "") : "–";
    if (field(r, "/engine/config/cuda_graphs").is_boolean() && field(r, "/engine/config/cuda_graphs").get<bool>()) levers += ", graphs";
    const json& quantization = field(r, "/engine/levers/quantization");
    if (quantization.is_string() && quantization.get<std::string>() != "none") levers += ", " + quantization.get<std::string>();
    const json& kv_dtype = field(r, "/engine/levers/kv_cache_dtype");
    if (kv_dtype.is_string() && kv_dtype.get<std::string>() == "fp8") levers += ", fp8 KV";
    const json& policy = field(r, "/engine/levers/scheduler_policy");
    if (policy.is_string() && policy.get<std::string>() == "guaranteed-no-evict") levers += ", no-evict";
    auto mem = number_field(r, "/telemetry/peak_memory_used_bytes");
    if (mem) *mem /= (1 << 30);
    h += fmt::format("<tr id=\"run-{0}\" data-run-id=\"{0}\"><td class=\"l\">{0}{1}</td><td class=\"l\">{2}</td><td class=\"l\">{3}</td>"
                     "<td class=\"l\">{4}</td><td class=\"l\">{5}</td>", esc(id), &r == b ? " ★" : "", esc(engine_label(r)),
                     esc(string_field(r, "/tag", "")), esc(point_key(r)), esc(levers));
    h += cell(number_field(r, "/metrics/num_completed"), id) + cell(number_field(r, "/metrics/request_throughput"), id) + cell(tput, id);
    h += tput && btput && *btput > 0 ? fmt::format("<td data-run-id=\"{}\">{:.2f}× {}</td>", esc(id), *tput / *btput,
                                                   &r == b ? "" : "vs " + run_link(string_field(*b, "/run_id")))
                                     : std::string("<td>–</td>");
    for (const char* p : {"/metrics/ttft_ms/median", "/metrics/ttft_ms/p99", "/metrics/tpot_ms/median", "/metrics/tpot_ms/p99",
                          "/metrics/itl_ms/median", "/metrics/itl_ms/p99", "/metrics/e2e_ms/median", "/energy/j_per_output_token"})
      h += cell(number_field(r, p), id);
    h += cell(mem, id) + "</tr>\n";
  }
  return h + "</table>\n";
}

std::string throughput_section(const std::vector<json>& records) {
  std::string h = "<h2 id=\"throughput\">Throughput</h2>\n";
  // Sweeps: per workload and arrival mode, one line per configuration.
  std::map<std::string, std::map<std::string, ChartSeries>> sweeps;
  std::vector<std::string> sweep_order;
  for (const auto& r : records) {
    const std::string mode = string_field(r, "/workload/sweep/mode");
    const char* x_ptr = mode == "closed" ? "/workload/sweep/concurrency" : mode == "poisson" ? "/workload/sweep/request_rate" : nullptr;
    const auto x = x_ptr ? number_field(r, x_ptr) : std::nullopt;
    const auto y = number_field(r, "/metrics/output_throughput");
    if (!x || !y) continue;
    const std::string key = string_field(r, "/workload/name") + "|" + mode + "|" + field(r, "/workload/input_len").dump() + "|" +
                            field(r, "/workload/output_len").dump();
    if (!sweeps.count(key)) sweep_order.push_back(key);
    ChartSeries& s = sweeps[key][config_label(r)];
    s.name = config_label(r);
    s.points.push_back({*x, *y, string_field(r, "/run_id")});
  }
  for (const auto& key : sweep_order) {
    std::vector<ChartSeries> series;
    std::set<double> xs;
    for (auto& [name, s] : sweeps[key]) {
      series.push_back(s);
      for (const auto& p : s.points) xs.insert(p.x);
    }
    if (xs.size() < 2) continue;  // one point is no sweep: the bar chart below shows it
    const bool closed = key.find("|closed|") != std::string::npos;
    h += line_chart(fmt::format("Output throughput vs {} ({})", closed ? "concurrency" : "request rate", key.substr(0, key.find('|'))),
                    closed ? "concurrent requests" : "requests/s", "output tokens/s", series, closed);
  }
  // Every point: a bar per configuration.
  std::vector<std::string> names, points;
  for (const auto& r : records) {
    if (std::find(names.begin(), names.end(), config_label(r)) == names.end()) names.push_back(config_label(r));
    if (std::find(points.begin(), points.end(), point_key(r)) == points.end()) points.push_back(point_key(r));
  }
  std::vector<BarGroup> groups;
  for (const auto& p : points) {
    BarGroup g{p, std::vector<std::optional<Bar>>(names.size())};
    for (const auto& r : records)
      if (point_key(r) == p)
        if (auto y = number_field(r, "/metrics/output_throughput")) {
          const size_t s = static_cast<size_t>(std::find(names.begin(), names.end(), config_label(r)) - names.begin());
          if (!g.bars[s] || *y > g.bars[s]->value) g.bars[s] = Bar{*y, string_field(r, "/run_id")};
        }
    groups.push_back(g);
  }
  h += bar_chart("Output throughput per workload point", "output tokens/s", names, groups);
  return h;
}

std::string latency_section(const std::vector<json>& records) {
  std::string h = "<h2 id=\"latency\">Latency percentiles</h2>\n<p class=\"note\">p50, p90 and p99 of each record (ms).</p>\n";
  for (const auto& [metric, title] : std::vector<std::pair<std::string, std::string>>{
           {"ttft_ms", "TTFT (time to first token)"}, {"tpot_ms", "TPOT (time per output token)"}, {"itl_ms", "ITL (inter-token latency)"}}) {
    std::vector<BarGroup> groups;
    for (const auto& r : records) {
      BarGroup g{config_label(r) + " · " + string_field(r, "/workload/sweep/label"), {}};
      bool any = false;
      for (const char* p : {"median", "p90", "p99"}) {
        const std::string ptr = "/metrics/" + metric + "/" + p;
        const auto v = number_field(r, ptr.c_str());
        g.bars.push_back(v ? std::optional<Bar>(Bar{*v, string_field(r, "/run_id")}) : std::nullopt);
        any = any || v.has_value();
      }
      if (any) groups.push_back(g);
    }
    if (!groups.empty()) h += bar_chart(title, "ms", {"p50", "p90", "p99"}, groups);
  }
  return h;
}

std::string ablation_section(const std::vector<json>& records) {
  std::string h = "<h2 id=\"ablation\">Lever ablation</h2>\n";
  const auto views = ablation_views(records);
  if (views.empty())
    return h + "<p class=\"note\">No ablation records here: <code>iol bench --ablation SCENARIO</code> writes them (docs/report.md).</p>\n";
  for (const auto& v : views) {
    std::vector<WaterfallStep> steps;
    const AblationStep* off = v.find("all-off");
    for (const auto& s : v.steps) {
      const bool total = s.step == "baseline" || s.step == "all-off" || s.step == "all-on" || !off;
      steps.push_back({s.step, total ? 0 : off->output_throughput, s.output_throughput, total, s.run_id});
    }
    h += waterfall_chart(fmt::format("Output tokens/s by lever ({}, {})", v.id, v.point), "output tokens/s", steps);
    h += "<p class=\"note\">Totals (blue) from zero; each lever's bar spans from \"all off\" to that lever on alone (green: faster, "
         "red: slower). Levers do not add up: \"all on\" is measured, not summed.</p>\n<table><tr><th class=\"l\">step</th>"
         "<th class=\"l\">run</th><th>output tok/s</th><th>vs all off</th><th>TTFT p50</th><th>TPOT p50</th></tr>\n";
    for (const auto& s : v.steps)
      h += fmt::format("<tr data-run-id=\"{0}\"><td class=\"l\">{1}</td><td class=\"l\">{2}</td><td>{3}</td><td>{4}</td>{5}{6}</tr>\n",
                       esc(s.run_id), esc(s.step), run_link(s.run_id), format_value(s.output_throughput),
                       off && off->output_throughput > 0 ? fmt::format("{:.2f}×", s.output_throughput / off->output_throughput) : "–",
                       cell(s.ttft_p50_ms, s.run_id), cell(s.tpot_p50_ms, s.run_id));
    h += "</table>\n";
    if (!v.skipped.empty()) {
      h += "<p>Skipped levers:</p><ul class=\"skipped\">\n";
      for (const auto& [lever, reason] : v.skipped) h += fmt::format("<li><b>{}</b>: {}</li>\n", esc(lever), esc(reason));
      h += "</ul>\n";
    }
  }
  return h;
}

std::string telemetry_section(const std::vector<json>& records) {
  std::string h = "<h2 id=\"telemetry\">Power and memory over time</h2>\n";
  std::vector<ChartSeries> power, memory;
  std::set<std::string> reasons;
  for (const auto& r : records) {
    const json& t = field(r, "/telemetry/timeline");
    const std::string id = string_field(r, "/run_id");
    if (!t.is_object()) {
      const json& available = field(r, "/telemetry/available");
      reasons.insert(available.is_boolean() && !available.get<bool>()
                         ? "not available: " + string_field(r, "/telemetry/reason")
                         : "these records have telemetry summaries but no timeline (recorded before timelines were kept)");
      continue;
    }
    ChartSeries p{config_label(r) + " " + id.substr(id.size() > 8 ? id.size() - 8 : 0), {}}, m{p.name, {}};
    for (size_t i = 0; i < t["t_s"].size(); ++i) {
      const double x = t["t_s"][i].get<double>();
      if (i < t["power_w"].size() && t["power_w"][i].is_number()) p.points.push_back({x, t["power_w"][i].get<double>(), id});
      if (i < t["memory_used_bytes"].size() && t["memory_used_bytes"][i].is_number())
        m.points.push_back({x, t["memory_used_bytes"][i].get<double>() / (1 << 30), id});
    }
    if (!p.points.empty()) power.push_back(p);
    if (!m.points.empty()) memory.push_back(m);
  }
  if (!power.empty()) h += line_chart("GPU board power", "seconds since the run's start", "W", power, false);
  if (!memory.empty()) h += line_chart("GPU memory used", "seconds since the run's start", "GiB", memory, false);
  for (const auto& reason : reasons) h += fmt::format("<p class=\"note\">Some records have no timeline: {}.</p>\n", esc(reason));
  // Energy per token, where measured.
  std::vector<BarGroup> groups;
  for (const auto& r : records)
    if (auto j = number_field(r, "/energy/j_per_output_token"))
      groups.push_back({config_label(r) + " · " + string_field(r, "/workload/sweep/label"), {Bar{*j, string_field(r, "/run_id")}}});
  h += "<h2 id=\"energy\">Energy per token</h2>\n";
  if (groups.empty()) h += "<p class=\"note\">No record measured energy (NVML unavailable: CPU runs or no driver).</p>\n";
  else h += bar_chart("Energy per output token (GPU board, NVML)", "J/token", {"J per output token"}, groups);
  return h;
}

std::string cost_section(const std::vector<json>& records, const PriceTable& prices, const std::string& baseline_run_id) {
  const json table = cost_table(prices, records, "", Traffic{}, baseline_run_id);
  std::string h = fmt::format(
      "<h2 id=\"cost\">Cost</h2>\n<p class=\"note\">Prices: {} (dated {}). Cloud: $/GPU-hour × GPUs over the tokens produced per hour. "
      "On premise: purchase amortized over {:g} years plus measured energy × PUE {:g} × ${:g}/kWh. ÷N: the baseline's cost per output "
      "token over this record's. Formulas and sources: docs/report.md; <code>iol cost</code> sizes a traffic.</p>\n",
      esc(prices.origin), esc(prices.date), prices.amortization_years, prices.pue, prices.usd_per_kwh);
  h += "<table><tr><th class=\"l\">run</th><th class=\"l\">engine</th><th class=\"l\">GPU</th><th>output tok/s</th><th>cloud $/h</th>"
       "<th>cloud $/1M out</th><th>cloud $/1M in</th><th>on-prem $/1M out</th><th>energy $/1M out</th><th>÷N cloud</th>"
       "<th>÷N on-prem</th><th class=\"l\">vs</th></tr>\n";
  for (const auto& r : table["rows"]) {
    const std::string id = r["run_id"].get<std::string>();
    if (!r.contains("cloud_usd_per_m_output")) {
      h += fmt::format("<tr data-run-id=\"{0}\"><td class=\"l\">{1}</td><td class=\"l\">{2}</td><td class=\"l\" colspan=\"10\">not priced: {3}</td></tr>\n",
                       esc(id), run_link(id), esc(r["engine"].get<std::string>()), esc(r["reason"].is_string() ? r["reason"].get<std::string>() : "?"));
      continue;
    }
    auto num = [&](const char* key) { return cell(r.contains(key) ? std::optional<double>(r[key].get<double>()) : std::nullopt, id); };
    h += fmt::format("<tr data-run-id=\"{0}\"><td class=\"l\">{1}</td><td class=\"l\">{2}</td><td class=\"l\">{3}</td>", esc(id),
                     run_link(id), esc(r["engine"].get<std::string>()), esc(r["gpu"].get<std::string>()));
    for (const char* k : {"output_throughput", "cloud_usd_per_hour", "cloud_usd_per_m_output", "cloud_usd_per_m_input",
                          "on_premise_usd_per_m_output", "energy_usd_per_m_output", "cost_factor_cloud", "cost_factor_on_premise"})
      h += num(k);
    h += fmt::format("<td class=\"l\">{}</td></tr>\n", r.contains("baseline_run_id") ? run_link(r["baseline_run_id"].get<std::string>()) : "–");
  }
  return h + "</table>\n";
}

std::string environment_section(const std::vector<json>& records) {
  std::string h = "<h2 id=\"environment\">Environment</h2>\n<table><tr><th class=\"l\">run</th><th class=\"l\">date</th><th class=\"l\">commit</th>"
                  "<th class=\"l\">host</th><th class=\"l\">CPU</th><th class=\"l\">GPU</th><th class=\"l\">driver</th><th class=\"l\">backend</th>"
                  "<th class=\"l\">image</th></tr>\n";
  for (const auto& r : records) {
    const std::string id = string_field(r, "/run_id");
    h += fmt::format("<tr data-run-id=\"{0}\"><td class=\"l\">{1}</td>", esc(id), run_link(id));
    for (const char* p : {"/environment/date", "/environment/git_commit", "/environment/host", "/environment/cpu_model", "/environment/gpu/name",
                          "/environment/gpu/driver_version", "/engine/backend_description", "/environment/image_digest"})
      h += fmt::format("<td class=\"l\">{}</td>", esc(string_field(r, p, "–")));
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace

std::string html_report(const std::vector<json>& records, const PriceTable& prices, const HtmlReportOptions& options) {
  if (records.empty()) fail("report: no result records");
  const auto base = baselines(records, options.baseline_run_id);
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>iol benchmark report</title>\n<style>";
  h += kStyle;
  h += "</style></head><body>\n<h1>Benchmark report</h1>\n";
  h += fmt::format("<p class=\"note\">{} record(s) from <code>{}</code>, rendered by iol {} (<code>iol report --html</code>). Every figure "
                   "names its record: table rows and chart marks carry <code>data-run-id</code>; hover a mark for its value.</p>\n",
                   records.size(), esc(options.source), kVersion);
  h += "<p><a href=\"#records\">Records</a> · <a href=\"#throughput\">Throughput</a> · <a href=\"#latency\">Latency</a> · "
       "<a href=\"#ablation\">Ablation</a> · <a href=\"#telemetry\">Power and memory</a> · <a href=\"#energy\">Energy</a> · "
       "<a href=\"#cost\">Cost</a> · <a href=\"#environment\">Environment</a></p>\n";
  h += records_section(records, base);
  h += throughput_section(records);
  h += latency_section(records);
  h += ablation_section(records);
  h += telemetry_section(records);
  h += cost_section(records, prices, options.baseline_run_id);
  h += environment_section(records);
  return h + "</body></html>\n";
}

}  // namespace iol::report
