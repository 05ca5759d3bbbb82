// The Jinja subset against Jinja itself: every case of tests/fixtures/chat_template/jinja_cases.json
// (written by tests/reference/make_chat_template_reference.py with transformers' own Jinja
// environment) must render to the same text, or fail where Jinja fails. Plus the error messages
// and limits a user relies on.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/tokenizer/jinja/template.hpp"

namespace iol::tokenizer::jinja {
namespace {

ValueDict context_of(const nlohmann::ordered_json& j) {
  ValueDict d;
  for (const auto& [k, v] : j.items()) d.items.emplace_back(Value(k), Value::from_json(v));
  return d;
}

std::string render(const std::string& source, const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  return Template(source, "test").render(context_of(context));
}

std::string error_of(const std::string& source, const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  try {
    render(source, context);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(JinjaTemplate, RendersEveryReferenceCaseAsJinjaDoes) {
  std::ifstream in(std::string(IOL_FIXTURES_DIR) + "/chat_template/jinja_cases.json");
  ASSERT_TRUE(in) << "missing fixture jinja_cases.json";
  auto fixture = nlohmann::ordered_json::parse(in);
  int checked = 0, failures = 0;
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    const std::string source = c["template"];
    if (c.contains("error")) {
      std::string got;
      bool raised = false;
      try {
        got = render(source, c["context"]);
      } catch (const Error& e) {
        raised = true;
      }
      if (!raised && ++failures) ADD_FAILURE() << name << ": Jinja raised (" << c["error"].get<std::string>() << ") but iol rendered " << nlohmann::json(got).dump();
    } else {
      std::string got;
      try {
        got = render(source, c["context"]);
      } catch (const Error& e) {
        got = std::string("<error> ") + e.what();
      }
      const std::string want = c["output"];
      if (got != want && ++failures)
        ADD_FAILURE() << name << "\n  template: " << nlohmann::json(source).dump() << "\n  Jinja: " << nlohmann::json(want).dump()
                      << "\n  iol:   " << nlohmann::json(got).dump();
    }
    ++checked;
  }
  EXPECT_GE(checked, 100);
  EXPECT_EQ(failures, 0) << failures << " of " << checked << " cases differ (renderer: " << fixture["renderer"] << ")";
}

}  // namespace
}  // namespace iol::tokenizer::jinja
