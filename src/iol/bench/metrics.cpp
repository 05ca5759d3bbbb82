#include "iol/bench/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::bench {

const char* request_status_name(RequestStatus status) {
  return status == RequestStatus::Ok ? "ok" : status == RequestStatus::Aborted ? "aborted" : "failed";
}

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  double rank = q / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

Distribution summarize(std::vector<double> values) {
  Distribution d;
  d.count = static_cast<int64_t>(values.size());
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - d.mean) * (v - d.mean);
  d.std = std::sqrt(squares / static_cast<double>(values.size()));
  d.median = percentile(values, 50);
  d.p90 = percentile(values, 90);
  d.p95 = percentile(values, 95);
  d.p99 = percentile(values, 99);
  d.min = values.front();
  d.max = values.back();
  return d;
}

nlohmann::json Distribution::to_json() const {
  if (count == 0)
    return {{"count", 0}, {"mean", nullptr}, {"median", nullptr}, {"p90", nullptr}, {"p95", nullptr},
            {"p99", nullptr}, {"std", nullptr}, {"min", nullptr}, {"max", nullptr}};
  return {{"count", count}, {"mean", mean}, {"median", median}, {"p90", p90}, {"p95", p95},
          {"p99", p99}, {"std", std}, {"min", min}, {"max", max}};
}

Slo Slo::parse(const std::string& text) {
  Slo slo;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    size_t eq = item.find('=');
    double value = 0;
    bool ok = eq != std::string::npos;
    if (ok) {
      try {
        size_t used = 0;
        value = std::stod(item.substr(eq + 1), &used);
        ok = used == item.size() - eq - 1 && value > 0 && std::isfinite(value);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    std::string key = ok ? item.substr(0, eq) : "";
    if (key == "ttft_ms") slo.ttft_ms = value;
    else if (key == "tpot_ms") slo.tpot_ms = value;
    else if (key == "e2e_ms") slo.e2e_ms = value;
    else throw UsageError(fmt::format("--slo: '{}' is not KEY=MS with KEY ttft_ms, tpot_ms or e2e_ms and MS > 0", item));
    pos = comma + 1;
  }
  return slo;
}

nlohmann::json Slo::to_json() const {
  auto field = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"ttft_ms", field(ttft_ms)}, {"tpot_ms", field(tpot_ms)}, {"e2e_ms", field(e2e_ms)}};
}

RequestMetrics request_metrics(const RequestTrace& t) {
  RequestMetrics m;
  m.ttft_ms = (t.first_token - t.arrival) * 1e3;
  m.e2e_ms = (t.finished - t.arrival) * 1e3;
  // vLLM: TPOT excludes the first token; undefined for one-token outputs.
  if (t.output_tokens > 1) m.tpot_ms = (m.e2e_ms - m.ttft_ms) / static_cast<double>(t.output_tokens - 1);
  for (size_t i = 1; i < t.token_times.size(); ++i) m.itl_ms.push_back((t.token_times[i] - t.token_times[i - 1]) * 1e3);
  return m;
}

bool meets_slo(const RequestMetrics& m, const Slo& slo) {
  if (slo.ttft_ms && m.ttft_ms > *slo.ttft_ms) return false;
  if (slo.tpot_ms && m.tpot_ms && *m.tpot_ms > *slo.tpot_ms) return false;
  if (slo.e2e_ms && m.e2e_ms > *slo.e2e_ms) return false;
  return true;
}

RunMetrics compute_run_metrics(const std::vector<RequestTrace>& traces, const Slo& slo) {
  RunMetrics r;
  std::vector<double> ttft, tpot, itl, e2e, input, output;
  double first_arrival = INFINITY, last_finish = -INFINITY;
  int64_t good = 0;
  for (const auto& t : traces) {
    if (t.warmup) {
      ++r.num_warmup;
      continue;
    }
    if (t.status == RequestStatus::Aborted) ++r.num_aborted;
    if (t.status == RequestStatus::Failed) ++r.num_failed;
    first_arrival = std::min(first_arrival, t.arrival);
    if (t.status != RequestStatus::Ok) continue;
    ++r.num_completed;
    last_finish = std::max(last_finish, t.finished);
    RequestMetrics m = request_metrics(t);
    ttft.push_back(m.ttft_ms);
    if (m.tpot_ms) tpot.push_back(*m.tpot_ms);
    itl.insert(itl.end(), m.itl_ms.begin(), m.itl_ms.end());
    e2e.push_back(m.e2e_ms);
    input.push_back(static_cast<double>(t.input_tokens));
    output.push_back(static_cast<double>(t.output_tokens));
    r.total_input_tokens += t.input_tokens;
    r.total_output_tokens += t.output_tokens;
    good += meets_slo(m, slo) ? 1 : 0;
  }
  r.duration_s = r.num_completed > 0 ? last_finish - first_arrival : 0;
  if (r.duration_s > 0) {
    r.request_throughput = static_cast<double>(r.num_completed) / r.duration_s;
    r.output_throughput = static_cast<double>(r.total_output_tokens) / r.duration_s;
    r.total_token_throughput = static_cast<double>(r.total_input_tokens + r.total_output_tokens) / r.duration_s;
    if (!slo.empty()) r.goodput = static_cast<double>(good) / r.duration_s;
  }
  r.ttft_ms = summarize(ttft);
  r.tpot_ms = summarize(tpot);
  r.itl_ms = summarize(itl);
  r.e2e_ms = summarize(e2e);
  r.input_len = summarize(input);
  r.output_len = summarize(output);
  return r;
}

nlohmann::json RunMetrics::to_json() const {
  return {{"num_completed", num_completed},
          {"num_aborted", num_aborted},
          {"num_failed", num_failed},
          {"num_warmup", num_warmup},
          {"duration_s", duration_s},
          {"total_input_tokens", total_input_tokens},
          {"total_output_tokens", total_output_tokens},
          {"request_throughput", request_throughput},
          {"output_throughput", output_throughput},
          {"total_token_throughput", total_token_throughput},
          {"goodput", goodput ? nlohmann::json(*goodput) : nlohmann::json(nullptr)},
          {"ttft_ms", ttft_ms.to_json()},
          {"tpot_ms", tpot_ms.to_json()},
          {"itl_ms", itl_ms.to_json()},
          {"e2e_ms", e2e_ms.to_json()},
          {"input_len", input_len.to_json()},
          {"output_len", output_len.to_json()}};
}

}  // namespace iol::bench
