#include "iol/server/openai_service.hpp"

#include <chrono>

#include <fmt/format.h>

#include "iol/core/error.hpp"
#include "iol/server/api_error.hpp"

namespace iol::server {

namespace {

using Json = nlohmann::json;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

OpenAiService::OpenAiService(ServiceConfig config, engine::EngineClient& client, const tokenizer::Tokenizer* tokenizer,
                             const tokenizer::ChatTemplate* chat_template)
    : config_(std::move(config)), client_(client), tokenizer_(tokenizer), chat_template_(chat_template) {}

SimpleResponse OpenAiService::handle_simple(std::string_view method, std::string_view path, std::string_view body) {
  auto require = [&](std::string_view wanted) {
    if (method != wanted) throw ApiError(405, fmt::format("{} needs {} (got {})", path, wanted, method), "", "invalid_request_error");
  };
  if (path == "/health") {
    require("GET");
    if (client_.dead()) throw ApiError(503, "engine failed: " + client_.dead_reason());
    if (draining_) throw ApiError(503, "the server is shutting down");
    return {200, "application/json", "{}"};
  }
  if (path == "/metrics") {
    require("GET");
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render(config_.model_name, client_.snapshot())};
  }
  if (path == "/v1/models") {
    require("GET");
    const int64_t created = 0;
    Json model = {{"id", config_.model_name}, {"object", "model"}, {"created", created},
                  {"owned_by", "iol"},        {"root", config_.model_name}, {"max_model_len", config_.max_model_len}};
    return {200, "application/json", dump({{"object", "list"}, {"data", Json::array({model})}})};
  }
  if (path == "/tokenize") {
    require("POST");
    nlohmann::ordered_json j = parse_json_body(body);
    if (j.contains("model") && j["model"].is_string() && j["model"] != config_.model_name)
      throw ApiError(404, fmt::format("The model `{}` does not exist.", j["model"].get<std::string>()), "model", "", "model_not_found");
    std::vector<int32_t> ids;
    if (j.contains("messages")) {
      nlohmann::ordered_json chat = j;
      chat.erase("add_special_tokens");
      PreparedGeneration p = prepare(Endpoint::ChatCompletions, chat.dump());
      ids = p.prompt_ids.at(0);
    } else {
      if (!j.contains("prompt") || !j["prompt"].is_string()) throw ApiError(400, "'prompt' must be a string", "prompt");
      if (j.contains("add_special_tokens") && !j["add_special_tokens"].is_boolean())
        throw ApiError(400, "'add_special_tokens' must be a boolean", "add_special_tokens");
      if (!tokenizer_) throw ApiError(400, "this model has no tokenizer.json", "prompt");
      ids = tokenizer_->encode(j["prompt"].get<std::string>(), j.value("add_special_tokens", true));
    }
    return {200, "application/json",
            dump({{"count", ids.size()}, {"max_model_len", config_.max_model_len}, {"tokens", ids}})};
  }
  if (path == "/detokenize") {
    require("POST");
    nlohmann::ordered_json j = parse_json_body(body);
    if (!j.contains("tokens") || !j["tokens"].is_array()) throw ApiError(400, "'tokens' must be a list of token ids", "tokens");
    std::vector<int64_t> ids;
    for (const auto& t : j["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || (tokenizer_ && t.get<int64_t>() >= static_cast<int64_t>(tokenizer_->vocabulary().size())))
        throw ApiError(400, "'tokens' must hold token ids of this model's vocabulary", "tokens");
      ids.push_back(t.get<int64_t>());
    }
    if (!tokenizer_) throw ApiError(400, "this model has no tokenizer.json", "tokens");
    return {200, "application/json", dump({{"prompt", tokenizer_->decode(ids, /*skip_special_tokens=*/false)}})};
  }
  throw ApiError(404, fmt::format("no route {} {}", method, path), "", "not_found_error");
}

std::vector<int32_t> OpenAiService::encode(const PromptInput& prompt) const {
  if (prompt.is_ids) return prompt.ids;
  if (!tokenizer_) throw ApiError(400, "this model has no tokenizer.json: send the prompt as token ids", "prompt");
  return tokenizer_->encode(prompt.text, /*add_special_tokens=*/true);
}

PreparedGeneration OpenAiService::prepare(Endpoint endpoint, std::string_view body) const {
  PreparedGeneration p;
  p.request = parse_generation_request(parse_json_body(body), endpoint);
  p.model_name = config_.model_name;
  if (!p.request.model.empty() && p.request.model != config_.model_name)
    throw ApiError(404, fmt::format("The model `{}` does not exist.", p.request.model), "model", "", "model_not_found");
  if (endpoint == Endpoint::ChatCompletions) {
    if (!chat_template_)
      throw ApiError(400, "this model has no chat template (start iol serve with --chat-template FILE)", "messages");
    if (!tokenizer_) throw ApiError(400, "this model has no tokenizer.json, so a chat cannot be encoded", "messages");
    std::string text;
    try {
      text = chat_template_->render(p.request.chat);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("the chat template failed: {}", e.what()), "messages");
    }
    p.prompt_ids.push_back(tokenizer_->encode(text, /*add_special_tokens=*/false));  // the template wrote BOS
  } else {
    for (const auto& prompt : p.request.prompts) p.prompt_ids.push_back(encode(prompt));
  }
  check_lengths(p);
  return p;
}

void OpenAiService::check_lengths(PreparedGeneration& prepared) const {
  GenerationRequest& r = prepared.request;
  const bool chat = r.endpoint == Endpoint::ChatCompletions;
  const char* prompt_param = chat ? "messages" : "prompt";
  const int64_t limit = config_.max_model_len;
  int64_t longest = 0;
  for (const auto& ids : prepared.prompt_ids) {
    if (ids.empty()) throw ApiError(400, "the prompt is empty (no tokens)", prompt_param);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
  }
  if (longest >= limit)
    throw ApiError(400, fmt::format("This model's maximum context length is {} tokens, but the prompt has {} tokens "
                                    "(prompt + max_tokens must fit).", limit, longest), prompt_param);
  const int64_t remaining = limit - longest;
  if (r.max_tokens && *r.max_tokens > remaining)
    throw ApiError(400, fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens "
                                    "({} in the prompt, {} for the completion). Reduce the prompt or max_tokens.",
                                    limit, longest + *r.max_tokens, longest, *r.max_tokens), "max_tokens");
  // Defaults: OpenAI's 16 for completions; the rest of the context for chat, as vLLM does.
  r.params.max_tokens = r.max_tokens ? *r.max_tokens : static_cast<int32_t>(chat ? remaining : std::min<int64_t>(16, remaining));
  if (r.params.min_tokens > r.params.max_tokens)
    throw ApiError(400, fmt::format("'min_tokens' ({}) must not exceed max_tokens ({})", r.params.min_tokens, r.params.max_tokens),
                   "min_tokens");
}

std::unique_ptr<GenerationJob> OpenAiService::start_generation(Endpoint endpoint, std::string_view body,
                                                               engine::OutputStream::Waker waker) {
  if (draining_) throw ApiError(503, "the server is shutting down");
  if (client_.dead()) throw ApiError(503, "engine failed: " + client_.dead_reason());
  PreparedGeneration prepared = prepare(endpoint, body);
  if (config_.max_num_waiting >= 0 && client_.num_waiting() >= config_.max_num_waiting)
    throw ApiError(429, fmt::format("{} requests are already waiting (--max-num-waiting {}); retry later",
                                    client_.num_waiting(), config_.max_num_waiting), "", "", "rate_limit_exceeded");
  const tokenizer::Vocabulary* vocabulary = tokenizer_ ? &tokenizer_->vocabulary() : nullptr;
  auto job = std::make_unique<GenerationJob>(std::move(prepared), vocabulary, metrics_, std::move(waker));
  job->start(client_);
  return job;
}

}  // namespace iol::server
