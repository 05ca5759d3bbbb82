// The request side of OpenAI's completions and chat-completions APIs (with vLLM's extensions:
// top_k, min_p, repetition_penalty, min_tokens, ignore_eos, stop_token_ids, chat_template_kwargs):
// a JSON body turned into prompts and SamplingParams, or an ApiError naming the field. Unknown
// fields are ignored, as OpenAI does; known fields with a wrong type or value are a 400. Pure
// (no I/O, no engine), so the fuzz target and the unit tests drive it directly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/sampling/sampling_params.hpp"
#include "iol/tokenizer/chat_template.hpp"

namespace iol::server {

enum class Endpoint { Completions, ChatCompletions };

// A prompt as text (encoded by the server) or as token ids (used as given).
struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;                 // empty: the served model
  std::vector<PromptInput> prompts;  // completions: one or more; chat: filled after rendering
  tokenizer::ChatRequest chat;       // chat: messages, tools, template kwargs
  sampling::SamplingParams params;   // params.max_tokens only meaningful when max_tokens is set
  std::optional<int32_t> max_tokens; // max_tokens / max_completion_tokens; unset: the server's default
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  bool want_logprobs = false;        // completions: logprobs given; chat: logprobs true
  bool return_token_ids = false;     // vLLM's extension: each choice (and chunk) carries its token ids
};

// Parses a body into JSON (insertion order kept: chat templates see keys as sent); a 400 with
// the parser's message when it is not a JSON object.
nlohmann::ordered_json parse_json_body(std::string_view body);
// Throws ApiError (400) naming the field.
GenerationRequest parse_generation_request(const nlohmann::ordered_json& body, Endpoint endpoint);

}  // namespace iol::server
