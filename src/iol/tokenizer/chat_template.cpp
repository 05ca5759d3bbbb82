#include "iol/tokenizer/chat_template.hpp"

#include <filesystem>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/tokenizer/jinja/py_string.hpp"

namespace iol::tokenizer {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// The special-token strings transformers passes to templates (its special_tokens_map): each may
// be a string or an AddedToken object {"content": ...}; unset or null ones are left undefined.
ordered_json special_tokens_of(const ordered_json& config) {
  ordered_json tokens = ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!config.contains(key)) continue;
    const ordered_json& v = config[key];
    if (v.is_string()) tokens[key] = v;
    else if (v.is_object() && v.contains("content") && v["content"].is_string()) tokens[key] = v["content"];
  }
  return tokens;
}

// tokenizer_config.json of a directory ({} when absent).
ordered_json read_tokenizer_config(const fs::path& directory) {
  const fs::path path = directory / "tokenizer_config.json";
  if (!fs::exists(path)) return ordered_json::object();
  ordered_json config = read_ordered_json_file(path.string());
  if (!config.is_object()) fail("{}: expected a JSON object", path.string());
  return config;
}

}  // namespace

ChatRequest ChatRequest::from_json(const ordered_json& j, const std::string& source) {
  ChatRequest request;
  if (j.is_array()) {
    request.messages = j;
  } else if (j.is_object() && j.contains("messages")) {
    request.messages = j["messages"];
    if (j.contains("tools") && !j["tools"].is_null()) {
      if (!j["tools"].is_array()) fail("{}: \"tools\" must be a list of tool schemas", source);
      request.tools = j["tools"];
    }
  } else {
    fail("{}: expected a list of messages or an object with \"messages\"", source);
  }
  if (!request.messages.is_array() || request.messages.empty()) fail("{}: \"messages\" must be a non-empty list", source);
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const ordered_json& m = request.messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail("{}: message {} must be an object with a string \"role\"", source, i);
  }
  return request;
}

std::unique_ptr<ChatTemplate> ChatTemplate::from_directory(const std::string& directory, const std::string& name) {
  const fs::path dir(directory);
  const fs::path config_path = dir / "tokenizer_config.json";
  const ordered_json config = read_tokenizer_config(dir);
  const fs::path jinja_path = dir / "chat_template.jinja";
  if (fs::exists(jinja_path))
    return std::make_unique<ChatTemplate>(read_text_file(jinja_path.string()), jinja_path.string(), special_tokens_of(config));
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return nullptr;
  const ordered_json& t = config["chat_template"];
  const std::string origin = config_path.string() + " chat_template";
  if (t.is_string()) {
    if (!name.empty() && name != "default") fail("{}: has a single template, not one named '{}'", origin, name);
    return std::make_unique<ChatTemplate>(t.get<std::string>(), origin, special_tokens_of(config));
  }
  if (!t.is_array()) fail("{}: expected a string or a list of {{\"name\", \"template\"}}", origin);
  std::string names;
  for (const auto& entry : t) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
        !entry["template"].is_string())
      fail("{}: every entry needs a string \"name\" and \"template\"", origin);
    const std::string entry_name = entry["name"];
    names += (names.empty() ? "" : ", ") + entry_name;
    if (entry_name == (name.empty() ? "default" : name))
      return std::make_unique<ChatTemplate>(entry["template"].get<std::string>(), origin + " '" + entry_name + "'",
                                            special_tokens_of(config));
  }
  fail("{}: no template named '{}' (it has: {})", origin, name.empty() ? "default" : name, names);
}

std::unique_ptr<ChatTemplate> ChatTemplate::from_file(const std::string& path, const std::string& tokenizer_directory) {
  return std::make_unique<ChatTemplate>(read_text_file(path), path,
                                        tokenizer_directory.empty() ? ordered_json::object()
                                                                   : special_tokens_of(read_tokenizer_config(tokenizer_directory)));
}

ChatTemplate::ChatTemplate(const std::string& source, std::string origin, ordered_json special_tokens)
    : template_(source, std::move(origin)), special_tokens_(std::move(special_tokens)) {}

std::string ChatTemplate::render(const ChatRequest& request) const {
  if (request.continue_final_message && request.add_generation_prompt)
    fail("{}: continue_final_message and add_generation_prompt are not compatible: use one or the other", origin());
  // Variables as transformers passes them: special tokens, then messages/tools/add_generation_prompt,
  // then the caller's kwargs (which may override any of them).
  jinja::ValueDict variables;
  for (const auto& [k, v] : special_tokens_.items()) variables.set(jinja::Value(k), jinja::Value::from_json(v));
  variables.set(jinja::Value("messages"), jinja::Value::from_json(request.messages));
  variables.set(jinja::Value("tools"), request.tools.is_null() ? jinja::Value::none() : jinja::Value::from_json(request.tools));
  variables.set(jinja::Value("documents"), jinja::Value::none());
  variables.set(jinja::Value("add_generation_prompt"), jinja::Value(request.add_generation_prompt));
  for (const auto& [k, v] : request.template_kwargs.items()) variables.set(jinja::Value(k), jinja::Value::from_json(v));
  std::string text = template_.render(variables);
  if (!request.continue_final_message) return text;

  // Cut the prompt right after the final message's text so generation continues it
  // (transformers' rule: the last occurrence of the stripped message, keeping its leading
  // spacing when the template kept it).
  const ordered_json& last = request.messages.back();
  std::string final_text;
  if (last.contains("content") && last["content"].is_string()) {
    final_text = last["content"];
  } else if (last.contains("content") && last["content"].is_array()) {
    for (auto it = last["content"].rbegin(); it != last["content"].rend(); ++it)
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string()) { final_text = (*it)["text"]; break; }
  }
  const std::string stripped = jinja::py::strip(final_text, std::nullopt, true, true);
  const size_t at = text.rfind(stripped);
  if (final_text.empty() || at == std::string::npos)
    fail("{}: continue_final_message is set but the final message does not appear in the rendered chat", origin());
  const std::string lstripped = jinja::py::strip(final_text, std::nullopt, true, false);
  const bool kept = text.compare(at, lstripped.size(), final_text) == 0;
  text.resize(at + (kept ? lstripped.size() : stripped.size()));
  return text;
}

}  // namespace iol::tokenizer
