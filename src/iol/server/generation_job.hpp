// GenerationJob: one completions or chat-completions call from admission to its last byte. It
// adds one engine request per prompt (each with n samples), turns the engine's value events into
// OpenAI's response — SSE chunks as they arrive, or one JSON object at the end — with usage and
// logprobs, and records the finished samples in the metrics. The output side of the request:
// text and logprob formatting happen here, on the connection's thread, not on the engine's.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/engine/engine_client.hpp"
#include "iol/server/api_error.hpp"
#include "iol/server/openai_request.hpp"
#include "iol/server/server_metrics.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::server {

// A request ready for the engine: parsed, prompts encoded, max_tokens resolved.
struct PreparedGeneration {
  GenerationRequest request;
  std::vector<std::vector<int32_t>> prompt_ids;  // one per prompt
  std::string model_name;
};

class GenerationJob {
 public:
  GenerationJob(PreparedGeneration prepared, const tokenizer::Vocabulary* vocabulary, ServerMetrics& metrics,
                engine::OutputStream::Waker waker);

  // Adds the engine requests. Throws ApiError: 400 when the engine rejects one (its message),
  // 503 when the engine is dead or shutting down. Requests already added are aborted.
  void start(engine::EngineClient& client);
  // Takes what the engine sent since the last call; returns the SSE bytes to write (streaming)
  // or "" (non-streaming: see response()). After done(), the stream ended with data: [DONE].
  std::string poll();
  bool done() const { return done_; }
  // Non-streaming, once done(): the response body, or the error that ended it.
  nlohmann::json response() const;
  const std::optional<ApiError>& error() const { return error_; }
  bool streaming() const { return prepared_.request.stream; }
  // The client went away (or the server gives up): abort what is still running.
  void abort(engine::EngineClient& client);

 private:
  struct Choice {
    std::string text;
    std::vector<int32_t> token_ids;
    nlohmann::json logprobs;  // per-token entries (chat: content list; completions: parallel lists)
    engine::FinishReason finish_reason = engine::FinishReason::None;
    int64_t text_offset = 0;
    bool finished = false;
    bool sent_role = false;
  };
  // One chunk's JSON for choice `index`, with the new text and logprob entries.
  nlohmann::json chunk(size_t index, const std::string& text, const nlohmann::json& logprobs,
                       engine::FinishReason finish) const;
  nlohmann::json usage() const;
  void add_logprobs(Choice& choice, const engine::OutputEvent& event, nlohmann::json& chunk_logprobs) const;
  std::string token_text(int32_t id) const;
  bool chat() const { return prepared_.request.endpoint == Endpoint::ChatCompletions; }

  PreparedGeneration prepared_;
  const tokenizer::Vocabulary* vocabulary_;
  ServerMetrics& metrics_;
  engine::OutputStream::Waker waker_;
  std::vector<std::shared_ptr<engine::OutputStream>> streams_;  // one per prompt
  std::vector<engine::RequestId> request_ids_;
  std::vector<Choice> choices_;  // prompt-major: index = prompt * n + sample
  std::string id_;
  int64_t created_ = 0;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  std::optional<ApiError> error_;
  bool done_ = false;
};

}  // namespace iol::server
