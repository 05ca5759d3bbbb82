// The chat flags shared by `iol tokenize` and `iol generate`: a conversation (--messages) turned
// into a prompt with the model's chat template, as transformers' apply_chat_template does.
#pragma once
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace iol::cli {

struct ChatOptions {
  std::string messages_file;
  std::string tools_file;
  std::string chat_template_file;
  std::string chat_template_name;
  std::string chat_template_kwargs;  // a JSON object
  bool no_generation_prompt = false;
  bool continue_final_message = false;

  void add_to(CLI::App& command);
  bool active() const { return !messages_file.empty(); }
  // The rendered prompt; `tokenizer_directory` supplies the template and special tokens (may be
  // empty when --chat-template names the template). Throws iol::Error / UsageError.
  std::string render(const std::string& tokenizer_directory) const;
};

}  // namespace iol::cli
