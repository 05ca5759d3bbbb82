#include "iol/server/server_metrics.hpp"

#include <fmt/format.h>

namespace iol::server {

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < buckets_.size() && value > buckets_[bucket]) ++bucket;
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::lock_guard lock(mutex_);
  int64_t cumulative = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, buckets_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count_);
  out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum_, name, labels, count_);
}

// vLLM's bucket boundaries for the same histograms.
ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      e2e_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0}),
      queue_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0}) {}

void ServerMetrics::on_sample_finished(const FinishedSample& s) {
  generation_tokens_ += s.output_tokens;
  switch (s.reason) {
    case engine::FinishReason::Stop: ++finished_stop_; break;
    case engine::FinishReason::Length: ++finished_length_; break;
    case engine::FinishReason::Abort: ++finished_abort_; break;
    case engine::FinishReason::Error: ++finished_error_; break;
    case engine::FinishReason::None: break;
  }
  if (s.ttft_s >= 0) ttft_.observe(s.ttft_s);
  if (s.tpot_s) tpot_.observe(*s.tpot_s);
  if (s.e2e_s >= 0) e2e_.observe(s.e2e_s);
  if (s.queue_s >= 0) queue_.observe(s.queue_s);
}

void ServerMetrics::on_http_response(int status) {
  const int index = status / 100;
  if (index >= 1 && index <= 5) ++responses_by_class_[static_cast<size_t>(index)];
}

std::string ServerMetrics::render(const std::string& model_name, const engine::EngineSnapshot& engine) const {
  const std::string labels = fmt::format("model_name=\"{}\"", model_name);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value, const std::string& extra = "") {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{}{{{}{}}} {}\n", name, help, name, type, name, labels, extra, value);
  };
  const auto& blocks = engine.stats.blocks;
  const double usage = blocks.num_blocks > 0 ? static_cast<double>(blocks.num_used_blocks) / static_cast<double>(blocks.num_blocks) : 0.0;
  metric("vllm:num_requests_running", "gauge", "Sequences in the running batch.", engine.num_running);
  metric("vllm:num_requests_waiting", "gauge", "Requests waiting to be scheduled.", engine.num_waiting);
  metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage: 1 means every block is held by a sequence.", usage);
  metric("iol:kv_cache_used_blocks", "gauge", "KV-cache blocks held by sequences.", blocks.num_used_blocks);
  metric("iol:kv_cache_free_blocks", "gauge", "KV-cache blocks free (cached prefix blocks included).", blocks.num_free_blocks);
  metric("iol:kv_cache_total_blocks", "gauge", "KV-cache blocks in the pool.", blocks.num_blocks);
  metric("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", blocks.prefix_queried_tokens);
  metric("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", blocks.prefix_hit_tokens);
  metric("iol:prefix_cache_hit_rate", "gauge", "Prefix-cache hits over queries since start.", blocks.prefix_hit_rate());
  metric("vllm:num_preemptions_total", "counter", "Preemptions (recompute) since start.", engine.stats.num_preemptions);
  // Speculative decoding, vLLM's names: acceptance rate = accepted / draft tokens, mean
  // acceptance length = 1 + accepted / drafts (a draft: one sequence-step that verified proposals).
  const engine::SpeculativeStats& spec = engine.stats.speculative;
  metric("vllm:spec_decode_num_drafts_total", "counter", "Sequence-steps that verified speculative proposals.",
         spec.num_speculative_steps);
  metric("vllm:spec_decode_num_draft_tokens_total", "counter", "Speculative tokens proposed.", spec.num_proposed_tokens);
  metric("vllm:spec_decode_num_accepted_tokens_total", "counter", "Speculative tokens accepted.", spec.num_accepted_tokens);
  metric("vllm:prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", prompt_tokens_.load());
  metric("vllm:generation_tokens_total", "counter", "Generated tokens.", generation_tokens_.load());
  out += "# HELP vllm:request_success_total Finished requests (samples) by finish reason.\n"
         "# TYPE vllm:request_success_total counter\n";
  out += fmt::format("vllm:request_success_total{{{},finished_reason=\"stop\"}} {}\n", labels, finished_stop_.load());
  out += fmt::format("vllm:request_success_total{{{},finished_reason=\"length\"}} {}\n", labels, finished_length_.load());
  out += fmt::format("vllm:request_success_total{{{},finished_reason=\"abort\"}} {}\n", labels, finished_abort_.load());
  out += fmt::format("vllm:request_success_total{{{},finished_reason=\"error\"}} {}\n", labels, finished_error_.load());
  out += "# HELP iol:http_responses_total HTTP responses by status class.\n# TYPE iol:http_responses_total counter\n";
  for (size_t c = 1; c <= 5; ++c)
    out += fmt::format("iol:http_responses_total{{{},status=\"{}xx\"}} {}\n", labels, c, responses_by_class_[c].load());
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    h.render(out, name, labels);
  };
  histogram("vllm:time_to_first_token_seconds", "Time to first token (arrival to first token).", ttft_);
  histogram("vllm:time_per_output_token_seconds", "Time per output token after the first (TPOT).", tpot_);
  histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency.", e2e_);
  histogram("vllm:request_queue_time_seconds", "Time from arrival to first scheduling.", queue_);
  if (energy_j)
    if (auto joules = energy_j()) metric("iol:gpu_energy_joules_total", "counter", "GPU energy since the server started (NVML).", *joules);
  return out;
}

}  // namespace iol::server
