// ServerMetrics: the counters and histograms of /metrics, in Prometheus text format, named as
// vLLM names them (vllm:time_to_first_token_seconds, ...) so dashboards and scrapers built for
// vLLM read iol unchanged; metrics vLLM has no name for are iol:*. Updated from any I/O thread
// (lock-free counters, one short lock per histogram observation); gauges are read from the
// engine's last published snapshot at scrape time.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "iol/engine/engine_client.hpp"

namespace iol::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> buckets) : buckets_(std::move(buckets)), counts_(buckets_.size() + 1, 0) {}
  void observe(double value);
  // name_bucket{le=...}, name_sum, name_count lines with `labels` (e.g. model_name="tiny").
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> buckets_;
  mutable std::mutex mutex_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative), the last is +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

// One finished sample of a request, as the server saw it.
struct FinishedSample {
  double ttft_s = -1, e2e_s = -1, queue_s = -1;
  std::optional<double> tpot_s;
  int64_t output_tokens = 0;
  engine::FinishReason reason = engine::FinishReason::None;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void on_request(int64_t prompt_tokens) { prompt_tokens_ += prompt_tokens; }
  void on_sample_finished(const FinishedSample& sample);
  void on_http_response(int status);
  // Total energy drawn by the GPU in joules, when NVML can say (set by the CLI).
  std::function<std::optional<double>()> energy_j;

  std::string render(const std::string& model_name, const engine::EngineSnapshot& engine) const;

 private:
  std::atomic<int64_t> prompt_tokens_{0}, generation_tokens_{0};
  std::atomic<int64_t> finished_stop_{0}, finished_length_{0}, finished_abort_{0}, finished_error_{0};
  std::array<std::atomic<int64_t>, 6> responses_by_class_{};  // 1xx..5xx, index by status / 100
  Histogram ttft_, tpot_, e2e_, queue_;
};

}  // namespace iol::server
