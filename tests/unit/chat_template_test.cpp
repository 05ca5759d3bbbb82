// ChatTemplate: where the template comes from (chat_template.jinja, tokenizer_config.json string or
// named list, a user file), the variables transformers passes, continue_final_message, and the
// errors for bad conversations and configs.
#include <gtest/gtest.h>

#include <fstream>

#include "iol/core/error.hpp"
#include "iol/tokenizer/chat_template.hpp"
#include "../support/temp_dir.hpp"

namespace iol::tokenizer {
namespace {

using nlohmann::ordered_json;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

const char* kTurns = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}"
                     "{% if add_generation_prompt %}<assistant>{% endif %}";

ChatRequest chat(const char* messages_json) {
  return ChatRequest::from_json(ordered_json::parse(messages_json), "chat.json");
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ChatTemplate, ReadsTheConfigTemplateWithItsSpecialTokens) {
  testing::TempDir dir;
  write(dir.str("tokenizer_config.json"),
        ordered_json({{"chat_template", kTurns}, {"bos_token", {{"content", "<s>"}, {"lstrip", false}}}, {"eos_token", "</s>"}}).dump());
  auto t = ChatTemplate::from_directory(dir.str());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->render(chat(R"([{"role": "user", "content": "hi"}])")), "<s><user>hi</user><assistant>");
  ChatRequest no_prompt = chat(R"([{"role": "user", "content": "hi"}])");
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(t->render(no_prompt), "<s><user>hi</user>");
}

TEST(ChatTemplate, ChatTemplateJinjaFileTakesPrecedence) {
  testing::TempDir dir;
  write(dir.str("tokenizer_config.json"), ordered_json({{"chat_template", "config"}, {"bos_token", "<s>"}}).dump());
  write(dir.str("chat_template.jinja"), "file {{ bos_token }}\n");
  EXPECT_EQ(ChatTemplate::from_directory(dir.str())->render(chat(R"([{"role": "user", "content": "x"}])")), "file <s>");
}

TEST(ChatTemplate, NamedTemplatesPickDefaultOrTheOneAskedFor) {
  testing::TempDir dir;
  write(dir.str("tokenizer_config.json"),
        ordered_json({{"chat_template", {{{"name", "default"}, {"template", "D"}}, {{"name", "tool_use"}, {"template", "T"}}}}}).dump());
  const ChatRequest c = chat(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(ChatTemplate::from_directory(dir.str())->render(c), "D");
  EXPECT_EQ(ChatTemplate::from_directory(dir.str(), "tool_use")->render(c), "T");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_directory(dir.str(), "rag"); }),
            dir.str("tokenizer_config.json") + " chat_template: no template named 'rag' (it has: default, tool_use)");
}

TEST(ChatTemplate, NoTemplateIsNullAndAUserFileStillGetsTheSpecialTokens) {
  testing::TempDir dir;
  write(dir.str("tokenizer_config.json"), ordered_json({{"bos_token", "<s>"}, {"eos_token", "</s>"}}).dump());
  EXPECT_EQ(ChatTemplate::from_directory(dir.str()), nullptr);
  write(dir.str("mine.jinja"), "{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}");
  EXPECT_EQ(ChatTemplate::from_file(dir.str("mine.jinja"), dir.str())->render(chat(R"([{"role": "user", "content": "q"}])")),
            "<s>[q]</s>");
}

TEST(ChatTemplate, ToolsAndKwargsReachTheTemplate) {
  ChatTemplate t("{% if tools %}{{ tools|length }} tools;{% endif %}{{ enable_thinking is defined and enable_thinking }}", "t",
                 ordered_json::object());
  ChatRequest c = ChatRequest::from_json(ordered_json::parse(R"({"messages": [{"role": "user", "content": "x"}],
                                                               "tools": [{"type": "function"}, {"type": "function"}]})"),
                                         "chat.json");
  EXPECT_EQ(t.render(c), "2 tools;False");
  c.template_kwargs = {{"enable_thinking", true}};
  EXPECT_EQ(t.render(c), "2 tools;True");
}

TEST(ChatTemplate, ContinueFinalMessageEndsThePromptInsideTheLastMessage) {
  ChatTemplate t(kTurns, "t", ordered_json::object());
  ChatRequest c = chat(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure, here"}])");
  c.add_generation_prompt = false;
  c.continue_final_message = true;
  EXPECT_EQ(t.render(c), "<user>hi</user><assistant>Sure, here");
  c.add_generation_prompt = true;
  EXPECT_EQ(error_of([&] { t.render(c); }),
            "t: continue_final_message and add_generation_prompt are not compatible: use one or the other");
}

TEST(ChatTemplate, BadConversationsAreOneLineErrors) {
  EXPECT_EQ(error_of([] { chat(R"({"role": "user"})"); }), "chat.json: expected a list of messages or an object with \"messages\"");
  EXPECT_EQ(error_of([] { chat("[]"); }), "chat.json: \"messages\" must be a non-empty list");
  EXPECT_EQ(error_of([] { chat(R"([{"content": "no role"}])"); }), "chat.json: message 0 must be an object with a string \"role\"");
  EXPECT_EQ(error_of([] { chat(R"({"messages": [{"role": "user"}], "tools": {"a": 1}})"); }),
            "chat.json: \"tools\" must be a list of tool schemas");
  ChatTemplate strict("{% if messages[0].role != 'system' %}{{ raise_exception('a system message comes first') }}{% endif %}",
                      "strict.jinja", ordered_json::object());
  EXPECT_EQ(error_of([&] { strict.render(chat(R"([{"role": "user", "content": "x"}])")); }),
            "strict.jinja: line 1: the template raised an exception: a system message comes first");
}

TEST(ChatTemplate, MalformedConfigAndTemplateSyntaxAreOneLineErrors) {
  testing::TempDir dir;
  write(dir.str("tokenizer_config.json"), "{\"chat_template\": ");
  EXPECT_NE(error_of([&] { ChatTemplate::from_directory(dir.str()); }).find(dir.str("tokenizer_config.json") + ": malformed JSON"),
            std::string::npos);
  write(dir.str("tokenizer_config.json"), ordered_json({{"chat_template", 42}}).dump());
  EXPECT_EQ(error_of([&] { ChatTemplate::from_directory(dir.str()); }),
            dir.str("tokenizer_config.json") + " chat_template: expected a string or a list of {\"name\", \"template\"}");
  write(dir.str("tokenizer_config.json"), ordered_json({{"chat_template", "{% for m in messages %}\n{{ m.content }"}}).dump());
  EXPECT_EQ(error_of([&] { ChatTemplate::from_directory(dir.str()); }),
            dir.str("tokenizer_config.json") + " chat_template: line 2: unclosed tag: expected '}}'");
}

}  // namespace
}  // namespace iol::tokenizer
