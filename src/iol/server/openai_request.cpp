#include "iol/server/openai_request.hpp"

#include <cmath>

#include <fmt/format.h>

#include "iol/sampling/sampling_row.hpp"
#include "iol/server/api_error.hpp"

namespace iol::server {

namespace {

using RequestJson = nlohmann::ordered_json;

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, message, param); }

// The field, or null when absent or JSON null (OpenAI treats null as "not given").
const RequestJson* field(const RequestJson& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string type_name(const RequestJson& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

std::optional<double> number(const RequestJson& body, const char* name, double low, double high, bool low_open = false) {
  const RequestJson* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number, got {}", name, type_name(*v)));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < low || x > high || (low_open && x == low))
    bad(name, fmt::format("'{}' must be in {}{}, {}] (got {})", name, low_open ? "(" : "[", low, high, x));
  return x;
}

std::optional<int64_t> integer(const RequestJson& body, const char* name, int64_t low, int64_t high) {
  const RequestJson* v = field(body, name);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_integer()) {
    x = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
             std::abs(v->get<double>()) < 9.2e18) {
    x = static_cast<int64_t>(v->get<double>());
  } else {
    bad(name, fmt::format("'{}' must be an integer, got {}", name, type_name(*v)));
  }
  if (x < low || x > high) bad(name, fmt::format("'{}' must be in [{}, {}] (got {})", name, low, high, x));
  return x;
}

std::optional<bool> boolean(const RequestJson& body, const char* name) {
  const RequestJson* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean, got {}", name, type_name(*v)));
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const RequestJson& list, const char* name) {
  std::vector<int32_t> ids;
  for (const auto& item : list) {
    if (!item.is_number_integer() || item.get<int64_t>() < 0 || item.get<int64_t>() > INT32_MAX)
      bad(name, fmt::format("'{}' must hold non-negative integer token ids", name));
    ids.push_back(static_cast<int32_t>(item.get<int64_t>()));
  }
  return ids;
}

std::vector<PromptInput> parse_prompt(const RequestJson& body) {
  const RequestJson* p = field(body, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  auto text = [](std::string s) { PromptInput in; in.text = std::move(s); return in; };
  auto ids = [](std::vector<int32_t> v, const char* name) {
    if (v.empty()) bad(name, "a token-id prompt must not be empty");
    PromptInput in;
    in.ids = std::move(v);
    in.is_ids = true;
    return in;
  };
  if (p->is_string()) return {text(p->get<std::string>())};
  if (!p->is_array() || p->empty())
    bad("prompt", "'prompt' must be a string, a list of strings, a list of token ids or a list of token-id lists");
  std::vector<PromptInput> prompts;
  if ((*p)[0].is_number()) return {ids(token_ids(*p, "prompt"), "prompt")};
  for (const auto& item : *p) {
    if (item.is_string()) prompts.push_back(text(item.get<std::string>()));
    else if (item.is_array()) prompts.push_back(ids(token_ids(item, "prompt"), "prompt"));
    else bad("prompt", "'prompt' must be a string, a list of strings, a list of token ids or a list of token-id lists");
  }
  return prompts;
}

// Content as a string: OpenAI's list of parts is joined when every part is text.
RequestJson flatten_content(const RequestJson& content) {
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) bad("messages", "a message's 'content' must be a string, null or a list of text parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      bad("messages", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
    text += part["text"].get<std::string>();
  }
  return text;
}

void parse_chat(const RequestJson& body, GenerationRequest& r) {
  const RequestJson* messages = field(body, "messages");
  if (!messages) bad("messages", "'messages' is required");
  if (!messages->is_array() || messages->empty()) bad("messages", "'messages' must be a non-empty list of messages");
  r.chat.messages = RequestJson::array();
  for (const auto& m : *messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      bad("messages", "each message must be an object with a string 'role'");
    RequestJson message = m;
    if (m.contains("content")) message["content"] = flatten_content(m["content"]);
    r.chat.messages.push_back(std::move(message));
  }
  if (const RequestJson* tools = field(body, "tools")) {
    if (!tools->is_array()) bad("tools", "'tools' must be a list of tool definitions");
    for (const auto& tool : *tools)
      if (!tool.is_object()) bad("tools", "each tool must be an object ({\"type\": \"function\", \"function\": {...}})");
    const RequestJson* choice = field(body, "tool_choice");
    // tool_choice "none": the model must not call tools, so the template does not offer them.
    if (!(choice && choice->is_string() && choice->get<std::string>() == "none")) r.chat.tools = *tools;
  }
  if (const RequestJson* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.chat.template_kwargs = *kwargs;
  }
  r.chat.continue_final_message = boolean(body, "continue_final_message").value_or(false);
  r.chat.add_generation_prompt = boolean(body, "add_generation_prompt").value_or(!r.chat.continue_final_message);
  if (r.chat.continue_final_message && r.chat.add_generation_prompt)
    bad("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true");
}

}  // namespace

RequestJson parse_json_body(std::string_view body) {
  RequestJson j;
  try {
    j = RequestJson::parse(body.begin(), body.end());
  } catch (const nlohmann::json::exception& e) {
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

GenerationRequest parse_generation_request(const RequestJson& body, Endpoint endpoint) {
  GenerationRequest r;
  r.endpoint = endpoint;
  if (const RequestJson* model = field(body, "model")) {
    if (!model->is_string()) bad("model", "'model' must be a string");
    r.model = model->get<std::string>();
  }
  if (endpoint == Endpoint::Completions) r.prompts = parse_prompt(body);
  else parse_chat(body, r);

  sampling::SamplingParams& p = r.params;
  const char* max_name = endpoint == Endpoint::ChatCompletions && field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (auto v = integer(body, max_name, 1, INT32_MAX)) r.max_tokens = static_cast<int32_t>(*v);
  if (auto v = number(body, "temperature", 0, 2)) p.temperature = static_cast<float>(*v);
  if (auto v = number(body, "top_p", 0, 1, /*low_open=*/true)) p.top_p = static_cast<float>(*v);
  if (auto v = integer(body, "top_k", -1, INT32_MAX)) p.top_k = *v < 0 ? 0 : static_cast<int32_t>(*v);
  if (auto v = number(body, "min_p", 0, 1)) p.min_p = static_cast<float>(*v);
  if (auto v = number(body, "presence_penalty", -2, 2)) p.presence_penalty = static_cast<float>(*v);
  if (auto v = number(body, "frequency_penalty", -2, 2)) p.frequency_penalty = static_cast<float>(*v);
  if (auto v = number(body, "repetition_penalty", 0, 2, /*low_open=*/true)) p.repetition_penalty = static_cast<float>(*v);
  if (auto v = integer(body, "seed", INT64_MIN, INT64_MAX)) p.seed = static_cast<uint64_t>(*v);
  if (auto v = integer(body, "n", 1, 128)) p.n = static_cast<int32_t>(*v);
  if (auto v = integer(body, "min_tokens", 0, INT32_MAX)) p.min_tokens = static_cast<int32_t>(*v);
  if (r.max_tokens && p.min_tokens > *r.max_tokens)
    bad("min_tokens", fmt::format("'min_tokens' ({}) must not exceed '{}' ({})", p.min_tokens, max_name, *r.max_tokens));
  if (auto v = boolean(body, "ignore_eos")) p.ignore_eos = *v;
  if (const RequestJson* stop = field(body, "stop")) {
    if (stop->is_string()) {
      p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const auto& s : *stop) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or a list of strings");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or a list of strings");
    }
    if (p.stop.size() > 16) bad("stop", fmt::format("'stop' holds {} strings; at most 16 are allowed", p.stop.size()));
    for (const auto& s : p.stop)
      if (s.empty()) bad("stop", "stop strings must not be empty");
  }
  if (const RequestJson* ids = field(body, "stop_token_ids")) {
    if (!ids->is_array()) bad("stop_token_ids", "'stop_token_ids' must be a list of token ids");
    p.stop_token_ids = token_ids(*ids, "stop_token_ids");
  }
  if (endpoint == Endpoint::Completions) {
    if (auto v = integer(body, "logprobs", 0, sampling::kMaxLogprobs)) {
      r.want_logprobs = true;
      p.logprobs = static_cast<int32_t>(*v);
    }
    if (boolean(body, "echo").value_or(false)) bad("echo", "'echo' is not supported");
    if (const RequestJson* suffix = field(body, "suffix"); suffix && !(suffix->is_string() && suffix->get<std::string>().empty()))
      bad("suffix", "'suffix' is not supported");
    if (auto best_of = integer(body, "best_of", 1, 128); best_of && *best_of != p.n)
      bad("best_of", "'best_of' other than n is not supported");
  } else {
    r.want_logprobs = boolean(body, "logprobs").value_or(false);
    if (auto v = integer(body, "top_logprobs", 0, sampling::kMaxLogprobs)) {
      if (!r.want_logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
      p.logprobs = static_cast<int32_t>(*v);
    }
  }
  if (const RequestJson* bias = field(body, "logit_bias"); bias && !(bias->is_object() && bias->empty()))
    bad("logit_bias", "'logit_bias' is not supported");
  r.return_token_ids = boolean(body, "return_token_ids").value_or(false);
  r.stream = boolean(body, "stream").value_or(false);
  if (const RequestJson* options = field(body, "stream_options")) {
    if (!options->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = boolean(*options, "include_usage").value_or(false);
  }
  return r;
}

}  // namespace iol::server
