#include "iol/report/markdown_report.hpp"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::report {

using nlohmann::json;

namespace {

std::string number(const json& value, const char* format = "{:.1f}") {
  return value.is_number() ? fmt::format(fmt::runtime(format), value.get<double>()) : "–";
}

// Records come from files a user may have edited: every read tolerates a missing key or a value
// of another type (shown as "?"/"–") instead of throwing nlohmann's type errors.
const json& member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}
std::string text(const json& object, const char* key, const char* fallback = "?") {
  const json& v = member(object, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}
std::string integer(const json& object, const char* key) {
  const json& v = member(object, key);
  return v.is_number() ? v.dump() : "?";
}
bool flag(const json& object, const char* key) {
  const json& v = member(object, key);
  return v.is_boolean() && v.get<bool>();
}

const json& at(const json& record, const char* pointer) {
  static const json kNull;
  json::json_pointer path(pointer);
  return record.contains(path) ? record[path] : kNull;
}

std::string levers(const json& record) {
  const json& l = at(record, "/engine/levers");
  if (!l.is_object()) return "–";
  const std::string quantization = text(l, "quantization", "none");
  return fmt::format("{}, {}{}{}{}{}{}", text(l, "batching"), text(l, "kv_layout"),
                     flag(l, "prefix_caching") ? ", prefix cache" : "",
                     flag(l, "chunked_prefill") ? ", chunked" : "",
                     quantization == "none" ? "" : ", " + quantization,
                     text(l, "kv_cache_dtype", "auto") == "fp8" ? ", fp8 KV" : "",
                     text(l, "scheduler_policy", "max-utilization") == "guaranteed-no-evict" ? ", no-evict" : "");
}

// {"dist": "uniform", "low": 16, "high": 96} → "U[16, 96]".
std::string length_text(const json& d) {
  if (!d.is_object()) return "?";
  const std::string dist = text(d, "dist", "fixed");
  auto n = [&](const char* key) { return number(member(d, key), "{:g}"); };
  if (dist == "uniform") return fmt::format("U[{}, {}]", n("low"), n("high"));
  if (dist == "normal") return fmt::format("N({}, {}) in [{}, {}]", n("mean"), n("stdev"), n("min"), n("max"));
  return n("value");
}

std::string ratio(const json& value, const json& baseline) {
  if (!value.is_number() || !baseline.is_number() || baseline.get<double>() == 0) return "–";
  return fmt::format("{:.2f}×", value.get<double>() / baseline.get<double>());
}

}  // namespace

std::string markdown_report(const std::vector<json>& records, const std::string& baseline_run_id) {
  if (records.empty()) fail("report: no result records");
  const json* global_baseline = nullptr;
  if (!baseline_run_id.empty()) {
    for (const auto& r : records)
      if (text(r, "run_id", "") == baseline_run_id) global_baseline = &r;
    if (!global_baseline) fail("report: baseline run '{}' is not in the results", baseline_run_id);
  }
  // Group by workload name and sweep point, keeping first-seen order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const json*>> groups;
  for (const auto& r : records) {
    std::string key = fmt::format("{} — {}", at(r, "/workload/name").is_string() ? at(r, "/workload/name").get<std::string>() : "?",
                                  at(r, "/workload/sweep/label").is_string() ? at(r, "/workload/sweep/label").get<std::string>() : "?");
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&r);
  }

  std::string md = "# Benchmark report\n\n";
  md += fmt::format("{} run(s). Latencies in ms; throughput in tokens/s; ratios are output throughput against the "
                    "baseline row (marked ★). Metric definitions: docs/metrics.md.\n\n", records.size());
  for (const auto& key : order) {
    const auto& rows = groups[key];
    const json* baseline = rows.front();
    for (const json* r : rows)
      if (global_baseline && r == global_baseline) baseline = r;
    const json& w = at(*rows.front(), "/workload");
    md += fmt::format("## {}\n\n", key);
    md += fmt::format("Input {} tokens, output {} tokens, {} requests (+{} warm-up), seed {}.\n\n",
                      length_text(member(w, "input_len")), length_text(member(w, "output_len")),
                      integer(w, "num_requests"), integer(w, "warmup_requests"), integer(w, "seed"));
    md += "| run | engine | model | levers | ok/fail/abort | req/s | output tok/s | vs baseline | TTFT p50 | TTFT p99 | "
          "TPOT p50 | TPOT p99 | ITL p50 | E2E p50 | goodput req/s | J/token | KV peak | preempt |\n";
    md += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const json* r : rows) {
      md += fmt::format("| {}{} | {} ({}) | {} | {} | {}/{}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                        text(*r, "run_id"), r == baseline ? " ★" : "", at(*r, "/engine/name").is_string() ? at(*r, "/engine/name").get<std::string>() : "?",
                        at(*r, "/engine/backend").is_string() ? at(*r, "/engine/backend").get<std::string>() : "?",
                        at(*r, "/engine/model").is_string() ? at(*r, "/engine/model").get<std::string>() : "?", levers(*r),
                        number(at(*r, "/metrics/num_completed"), "{:.0f}"), number(at(*r, "/metrics/num_failed"), "{:.0f}"),
                        number(at(*r, "/metrics/num_aborted"), "{:.0f}"), number(at(*r, "/metrics/request_throughput"), "{:.2f}"),
                        number(at(*r, "/metrics/output_throughput")),
                        ratio(at(*r, "/metrics/output_throughput"), at(*baseline, "/metrics/output_throughput")),
                        number(at(*r, "/metrics/ttft_ms/median")), number(at(*r, "/metrics/ttft_ms/p99")),
                        number(at(*r, "/metrics/tpot_ms/median"), "{:.2f}"), number(at(*r, "/metrics/tpot_ms/p99"), "{:.2f}"),
                        number(at(*r, "/metrics/itl_ms/median"), "{:.2f}"), number(at(*r, "/metrics/e2e_ms/median")),
                        number(at(*r, "/metrics/goodput"), "{:.2f}"), number(at(*r, "/energy/j_per_output_token"), "{:.4f}"),
                        at(*r, "/target/kv_peak_usage").is_number() ? fmt::format("{:.0f}%", 100 * at(*r, "/target/kv_peak_usage").get<double>()) : "–",
                        number(at(*r, "/target/num_preemptions"), "{:.0f}"));
    }
    md += "\n";
  }

  md += "## Telemetry\n\n| run | mean power W | peak power W | energy J (source) | peak GPU memory GiB | GPU util % | SM MHz | max °C |\n";
  md += "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : records) {
    if (!at(r, "/telemetry/available").is_boolean() || !at(r, "/telemetry/available").get<bool>()) {
      md += fmt::format("| {} | not available: {} |||||||\n", text(r, "run_id"),
                        at(r, "/telemetry/reason").is_string() ? at(r, "/telemetry/reason").get<std::string>() : "?");
      continue;
    }
    const json& memory = at(r, "/telemetry/peak_memory_used_bytes");
    md += fmt::format("| {} | {} | {} | {} ({}) | {} | {} | {} | {} |\n", text(r, "run_id"),
                      number(at(r, "/telemetry/mean_power_w")), number(at(r, "/telemetry/peak_power_w")),
                      number(at(r, "/energy/energy_j")), at(r, "/energy/source").is_string() ? at(r, "/energy/source").get<std::string>() : "?",
                      memory.is_number() ? fmt::format("{:.1f}", memory.get<double>() / (1 << 30)) : "–",
                      number(at(r, "/telemetry/mean_gpu_utilization")), number(at(r, "/telemetry/mean_sm_clock_mhz"), "{:.0f}"),
                      number(at(r, "/telemetry/max_temperature_c"), "{:.0f}"));
  }
  md += "\n## Environment\n\n| run | date | commit | host | CPU | GPU | driver |\n|---|---|---|---|---|---|---|\n";
  for (const auto& r : records) {
    const json& gpu = at(r, "/environment/gpu");
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", text(r, "run_id"),
                      at(r, "/environment/date").is_string() ? at(r, "/environment/date").get<std::string>() : "?",
                      at(r, "/environment/git_commit").is_string() ? at(r, "/environment/git_commit").get<std::string>() : "?",
                      at(r, "/environment/host").is_string() ? at(r, "/environment/host").get<std::string>() : "?",
                      at(r, "/environment/cpu_model").is_string() ? at(r, "/environment/cpu_model").get<std::string>() : "?",
                      gpu.is_object() ? text(gpu, "name") : "none", gpu.is_object() ? text(gpu, "driver_version") : "–");
  }
  return md;
}

}  // namespace iol::report
