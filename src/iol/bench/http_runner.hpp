// HttpRunner: the benchmark's workloads sent to any OpenAI-compatible server over HTTP
// (`iol bench --target URL`): streamed completions or chat completions, TTFT and ITL from the
// arrival of SSE chunks, output tokens from `usage` (or the tokenizer when the server omits it),
// and the server's KV usage, preemptions and prefix-cache hits scraped from its /metrics (vLLM
// names) when it has them.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/bench/http_load_client.hpp"
#include "iol/bench/runner.hpp"

namespace iol::tokenizer {
class Tokenizer;
}

namespace iol::bench {

struct HttpRunnerOptions {
  HttpTarget target;
  std::string endpoint = "completions";  // completions | chat
  std::string api_key;
  std::string model;                     // the name sent in requests
  const tokenizer::Tokenizer* tokenizer = nullptr;  // chat prompts as text; token counts without usage
  double metrics_interval_s = 0.25;      // /metrics sampling for KV usage
};

class HttpRunner final : public Runner {
 public:
  explicit HttpRunner(HttpRunnerOptions options);
  std::string name() const override { return "http"; }
  std::vector<RequestTrace> run(const std::vector<BenchRequest>& requests, const SweepPoint& point,
                                const WorkloadSpec& spec, const ProgressCallback& progress) override;
  nlohmann::json target_stats() const override { return stats_; }

  // The request body for one benchmark request (exposed for tests).
  std::string request_body(const BenchRequest& request, const WorkloadSpec& spec) const;
  // A trace from one streamed response; `arrival` is when the request was due or sent.
  RequestTrace trace_from(const HttpCallResult& result, const BenchRequest& request, double arrival) const;

 private:
  HttpRunnerOptions options_;
  nlohmann::json stats_;
};

struct ServedModel {
  std::string id;
  std::string owned_by;  // "iol", "vllm", ... when the server says
};
// The first model GET /v1/models lists (throws iol::Error naming the URL when none).
ServedModel first_served_model(const HttpTarget& target, const std::string& api_key);

}  // namespace iol::bench
