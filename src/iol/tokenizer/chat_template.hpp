// ChatTemplate: a model's chat_template turned into a prompt, as transformers'
// tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=...,
// continue_final_message=..., **kwargs, tokenize=False) does. The template comes from
// chat_template.jinja beside the tokenizer (transformers' newer layout), else tokenizer_config.json's
// "chat_template" (a string, or a list of named templates), or a file the user names. The special
// tokens of tokenizer_config.json (bos_token, eos_token, ...) are template variables, as in
// transformers. The rendered text is encoded without adding special tokens (the template writes them).
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "iol/tokenizer/jinja/template.hpp"

namespace iol::tokenizer {

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}, ...]
  nlohmann::ordered_json tools;                                       // null, or a list of tool schemas
  bool add_generation_prompt = true;
  bool continue_final_message = false;  // end the prompt inside the last (assistant) message
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // enable_thinking, date_string, ...

  // A JSON list of messages, or an object {"messages": [...], "tools": [...]}; `source` names it in errors.
  static ChatRequest from_json(const nlohmann::ordered_json& j, const std::string& source);
};

class ChatTemplate {
 public:
  // The template of a tokenizer directory; null when it has none. `name` picks one of several
  // named templates ("default" otherwise).
  static std::unique_ptr<ChatTemplate> from_directory(const std::string& directory, const std::string& name = "");
  // A template file (e.g. chat_templates/llama-2-chat.jinja) with the special tokens of `tokenizer_directory`.
  static std::unique_ptr<ChatTemplate> from_file(const std::string& path, const std::string& tokenizer_directory);

  ChatTemplate(const std::string& source, std::string origin, nlohmann::ordered_json special_tokens);

  // Throws iol::Error naming the template and line (including the template's own raise_exception).
  std::string render(const ChatRequest& request) const;
  const std::string& origin() const { return template_.name(); }

 private:
  jinja::Template template_;
  nlohmann::ordered_json special_tokens_;  // {"bos_token": "<s>", ...}
};

}  // namespace iol::tokenizer
