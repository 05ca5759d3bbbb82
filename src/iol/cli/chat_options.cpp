#include "iol/cli/chat_options.hpp"

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"
#include "iol/tokenizer/chat_template.hpp"

namespace iol::cli {

void ChatOptions::add_to(CLI::App& command) {
  command.add_option("--messages", messages_file,
                     "Chat as a JSON file: a list of {role, content, ...} messages, or {\"messages\": [...], \"tools\": [...]}; "
                     "rendered with the model's chat template");
  command.add_option("--tools", tools_file, "JSON file with a list of tool schemas for the chat template");
  command.add_option("--chat-template", chat_template_file,
                     "Jinja chat template file to use instead of the model's (e.g. chat_templates/llama-2-chat.jinja)");
  command.add_option("--chat-template-name", chat_template_name, "Which of the model's named chat templates to use");
  command.add_option("--chat-template-kwargs", chat_template_kwargs,
                     "JSON object of extra template variables, e.g. '{\"enable_thinking\": false}'");
  command.add_flag("--no-generation-prompt", no_generation_prompt, "Do not open an assistant turn at the end");
  command.add_flag("--continue-final-message", continue_final_message,
                   "End the prompt inside the last (assistant) message so generation continues it");
}

std::string ChatOptions::render(const std::string& tokenizer_directory) const {
  if (!active()) {
    if (!tools_file.empty() || !chat_template_file.empty() || !chat_template_kwargs.empty() || continue_final_message ||
        no_generation_prompt || !chat_template_name.empty())
      throw UsageError("chat options need --messages FILE");
    return {};
  }
  tokenizer::ChatRequest request =
      tokenizer::ChatRequest::from_json(read_ordered_json_file(messages_file), messages_file);
  if (!tools_file.empty()) {
    nlohmann::ordered_json tools = read_ordered_json_file(tools_file);
    if (!tools.is_array()) fail("{}: expected a JSON list of tool schemas", tools_file);
    request.tools = std::move(tools);
  }
  if (!chat_template_kwargs.empty()) {
    check_json_depth(chat_template_kwargs, "--chat-template-kwargs");
    nlohmann::ordered_json kwargs = nlohmann::ordered_json::parse(chat_template_kwargs, nullptr, false);
    if (kwargs.is_discarded() || !kwargs.is_object())
      throw UsageError("--chat-template-kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'");
    request.template_kwargs = std::move(kwargs);
  }
  request.continue_final_message = continue_final_message;
  request.add_generation_prompt = !no_generation_prompt && !continue_final_message;
  std::unique_ptr<tokenizer::ChatTemplate> chat_template;
  if (!chat_template_file.empty()) {
    chat_template = tokenizer::ChatTemplate::from_file(chat_template_file, tokenizer_directory);
  } else if (!tokenizer_directory.empty()) {
    chat_template = tokenizer::ChatTemplate::from_directory(tokenizer_directory, chat_template_name);
  }
  if (!chat_template)
    fail("{}: no chat template (no chat_template.jinja, no \"chat_template\" in tokenizer_config.json); "
         "pass one with --chat-template FILE",
         tokenizer_directory.empty() ? std::string("this model") : tokenizer_directory);
  return chat_template->render(request);
}

}  // namespace iol::cli
