// OpenAiService: what the server answers, apart from moving bytes — the routes that answer at
// once (/v1/models, /health, /metrics, /tokenize, /detokenize) and the preparation of a
// generation (parse, chat template, tokenize, length checks) into a GenerationJob. No HTTP
// library here: the transport (http_server.*) hands in method, path and body.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iol/engine/engine_client.hpp"
#include "iol/server/generation_job.hpp"
#include "iol/server/server_metrics.hpp"
#include "iol/tokenizer/chat_template.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::server {

struct ServiceConfig {
  std::string model_name;      // what /v1/models lists and requests must name (or omit)
  int64_t max_model_len = 0;
  int64_t max_num_waiting = -1;  // beyond it: 429 (negative: unbounded)
  int32_t retry_after_s = 1;
};

struct SimpleResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class OpenAiService {
 public:
  OpenAiService(ServiceConfig config, engine::EngineClient& client, const tokenizer::Tokenizer* tokenizer,
                const tokenizer::ChatTemplate* chat_template);

  // /v1/models, /health, /metrics, /tokenize, /detokenize; throws ApiError.
  SimpleResponse handle_simple(std::string_view method, std::string_view path, std::string_view body);
  // Parses and prepares a generation, checks admission (429) and starts it. Throws ApiError.
  std::unique_ptr<GenerationJob> start_generation(Endpoint endpoint, std::string_view body, engine::OutputStream::Waker waker);

  ServerMetrics& metrics() { return metrics_; }
  engine::EngineClient& client() { return client_; }
  const ServiceConfig& config() const { return config_; }
  // Marks the server as draining: /health answers 503 and new generations are refused.
  void set_draining() { draining_ = true; }

 private:
  std::vector<int32_t> encode(const PromptInput& prompt) const;
  PreparedGeneration prepare(Endpoint endpoint, std::string_view body) const;
  void check_lengths(PreparedGeneration& prepared) const;

  ServiceConfig config_;
  engine::EngineClient& client_;
  const tokenizer::Tokenizer* tokenizer_;
  const tokenizer::ChatTemplate* chat_template_;
  ServerMetrics metrics_;
  std::atomic<bool> draining_{false};
};

}  // namespace iol::server
