// Benchmark metrics with vLLM's definitions (docs/metrics.md): per-request TTFT, TPOT, ITL, E2E
// from raw timestamps, and per-run distributions, throughputs and goodput under SLOs.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::bench {

enum class RequestStatus { Ok, Aborted, Failed };
const char* request_status_name(RequestStatus status);

// Raw record of one request; times in seconds from the start of the run.
struct RequestTrace {
  int64_t index = 0;
  bool warmup = false;
  RequestStatus status = RequestStatus::Ok;
  std::string error;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double arrival = 0;           // when the request was due (open loop) or sent (closed loop)
  double first_token = -1;
  double finished = -1;
  std::vector<double> token_times;  // one per output token
  int64_t cached_prompt_tokens = 0;
  int64_t preemptions = 0;
};

struct Distribution {
  int64_t count = 0;
  double mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, std = 0, min = 0, max = 0;
  nlohmann::json to_json() const;  // null fields when count == 0
};
// Percentiles by linear interpolation between order statistics (numpy's default); std is the
// population standard deviation (ddof = 0), as numpy.std and vLLM.
Distribution summarize(std::vector<double> values);
double percentile(const std::vector<double>& sorted, double q);

struct Slo {
  std::optional<double> ttft_ms, tpot_ms, e2e_ms;
  static Slo parse(const std::string& text);  // "ttft_ms=200,tpot_ms=50"; throws UsageError
  bool empty() const { return !ttft_ms && !tpot_ms && !e2e_ms; }
  nlohmann::json to_json() const;
};

struct RequestMetrics {
  double ttft_ms;
  std::optional<double> tpot_ms;  // undefined for single-token outputs
  double e2e_ms;
  std::vector<double> itl_ms;
};
RequestMetrics request_metrics(const RequestTrace& trace);
bool meets_slo(const RequestMetrics& metrics, const Slo& slo);

struct RunMetrics {
  int64_t num_completed = 0, num_aborted = 0, num_failed = 0, num_warmup = 0;
  double duration_s = 0;  // first measured arrival → last measured finish
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0, output_throughput = 0, total_token_throughput = 0;
  std::optional<double> goodput;  // completed requests meeting every SLO, per second
  Distribution ttft_ms, tpot_ms, itl_ms, e2e_ms, input_len, output_len;
  nlohmann::json to_json() const;
};

// Warm-up requests are excluded; aborted and failed ones are counted, not measured.
RunMetrics compute_run_metrics(const std::vector<RequestTrace>& traces, const Slo& slo);

}  // namespace iol::bench
