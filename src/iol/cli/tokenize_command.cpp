// iol tokenize: text → ids and pieces (or ids → text with --decode), with any tokenizer.json.
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "iol/cli/chat_options.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/parse_ids.hpp"
#include "iol/core/error.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::cli {

namespace {
struct TokenizeOptions {
  std::string model_dir;
  std::optional<std::string> text;  // given (possibly empty) or not: --text "" encodes the empty string
  std::string decode;
  bool json = false;
  bool no_special = false;
  bool render_only = false;
  ChatOptions chat;
};

void run_tokenize(const TokenizeOptions& o) {
  if (o.model_dir.empty()) throw UsageError("--model DIR is required (a directory with tokenizer.json)");
  if (o.text.has_value() + !o.decode.empty() + o.chat.active() != 1)
    throw UsageError("give exactly one of --text TEXT, --messages FILE or --decode IDS");
  if (o.render_only && !o.chat.active()) throw UsageError("--render-only needs --messages FILE");
  std::string text = o.text.value_or("");
  bool add_special = !o.no_special;
  if (o.chat.active()) {
    text = o.chat.render(o.model_dir);
    add_special = false;  // the chat template writes BOS and the turn markers itself
    if (o.render_only) {
      fmt::print("{}", text);
      return;
    }
  }
  auto tokenizer = tokenizer::Tokenizer::from_directory(o.model_dir);
  if (!o.decode.empty()) {
    std::vector<int32_t> ids32 = parse_id_list(o.decode, "--decode");
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    std::string text = tokenizer->decode(ids, o.no_special);
    if (o.json) fmt::print("{}\n", nlohmann::json({{"ids", ids}, {"text", text}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    else fmt::print("{}\n", text);
    return;
  }
  std::vector<int32_t> ids = tokenizer->encode(text, add_special);
  std::vector<std::string> pieces;
  for (auto id : ids) pieces.push_back(tokenizer->id_to_token(id));
  if (o.json) {
    nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
    if (o.chat.active()) out["text"] = text;
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("{}\n", fmt::join(ids, ","));
  for (size_t i = 0; i < ids.size(); ++i) fmt::print("{}\t{}\n", ids[i], nlohmann::json(pieces[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  fmt::print(stderr, "iol tokenize: {} tokens\n", ids.size());
}
}  // namespace

void add_tokenize_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* command = app.add_subcommand("tokenize", "Encode text or a chat with a model's tokenizer (or decode ids)");
  command->footer(
      "Examples:\n"
      "  iol tokenize --model models/llama3 --text 'Hello world'\n"
      "  iol tokenize --model models/llama3 --text 'Hello world' --json --no-special\n"
      "  iol tokenize --model models/llama3 --decode 9906,1917\n"
      "  iol tokenize --model models/qwen3 --messages chat.json --render-only\n"
      "  iol tokenize --model models/qwen3 --messages chat.json --tools tools.json --chat-template-kwargs '{\"enable_thinking\": false}'");
  command->add_option("--model", options->model_dir, "Model or tokenizer directory (tokenizer.json [+ tokenizer_config.json])");
  command->add_option("--text", options->text, "Text to encode");
  command->add_option("--decode", options->decode, "Comma-separated ids to decode instead");
  command->add_flag("--json", options->json, "Print JSON: ids and pieces (or ids and text)");
  command->add_flag("--no-special", options->no_special, "Encode without BOS/post-processor tokens; decode without special tokens");
  command->add_flag("--render-only", options->render_only, "With --messages: print the rendered chat prompt, not its ids");
  options->chat.add_to(*command);
  command->callback([options, &runner] { runner = [options] { run_tokenize(*options); }; });
}

}  // namespace iol::cli
