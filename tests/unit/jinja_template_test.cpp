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

TEST(JinjaTemplate, SyntaxErrorsNameTheTemplateLineAndConstruct) {
  EXPECT_EQ(error_of("a\n{% if true %}open"),
            "test: line 2: unexpected end of template: '{% if %}' opened here is not closed (expected 'elif' or 'else' or 'endif')");
  EXPECT_EQ(error_of("x\n\n{% include 'other.jinja' %}"), "test: line 3: '{% include %}' is not supported by iol's Jinja subset");
  EXPECT_EQ(error_of("{% frobnicate %}"), "test: line 1: unknown tag 'frobnicate'");
  EXPECT_EQ(error_of("{% endfor %}"), "test: line 1: unknown tag 'endfor'");
  EXPECT_EQ(error_of("{{ 1 + }}"), "test: line 1: unexpected end of tag");
  EXPECT_EQ(error_of("{{ x|no_such_filter }}"), "test: line 1: no filter named 'no_such_filter' (not in iol's Jinja subset)");
  EXPECT_EQ(error_of("{% if x is shiny %}{% endif %}"), "test: line 1: no test named 'shiny' (not in iol's Jinja subset)");
  EXPECT_EQ(error_of("{{ 'unclosed }}"), "test: line 1: unclosed string literal");
  EXPECT_EQ(error_of("{{ x"), "test: line 1: unclosed tag: expected '}}'");
  EXPECT_EQ(error_of("{# never closed"), "test: line 1: unclosed comment: '{#' without '#}'");
  EXPECT_EQ(error_of("{% break %}"), "test: line 1: '{% break %}' outside of a loop");
  EXPECT_EQ(error_of("{% for x in xs recursive %}{% endfor %}"), "test: line 1: recursive for loops are not supported by iol's Jinja subset");
  EXPECT_EQ(error_of("{{ f(*args) }}"), "test: line 1: *args and **kwargs in calls are not supported by iol's Jinja subset");
}

TEST(JinjaTemplate, RuntimeErrorsNameTheLineAndThePythonError) {
  EXPECT_EQ(error_of("ok\n{{ raise_exception('roles must alternate') }}"),
            "test: line 2: the template raised an exception: roles must alternate");
  EXPECT_EQ(error_of("{{ missing.attr }}"), "test: line 1: UndefinedError: 'missing' is undefined");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "test: line 1: TypeError: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "test: line 1: ZeroDivisionError: integer division or modulo by zero");
  EXPECT_EQ(error_of("{{ [1].append(2) }}"),
            "test: line 1: SecurityError: access to attribute 'append' of 'list' object is unsafe (templates cannot modify values)");
  EXPECT_EQ(error_of("{{ 9223372036854775807 + 1 }}"), "test: line 1: OverflowError: integer result does not fit in 64 bits");
  EXPECT_EQ(error_of("{% set d = {} %}{% set d.a = 1 %}"), "test: line 1: TemplateRuntimeError: cannot assign attribute on non-namespace object");
  EXPECT_EQ(error_of("{% for a, b in [1] %}{% endfor %}"), "test: line 1: TypeError: 'int' object is not iterable");
}

TEST(JinjaTemplate, HostileTemplatesFailInsteadOfExhaustingTheProcess) {
  // Deep nesting, runaway recursion and huge strings are errors, not stack overflows or OOM.
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested too deeply"), std::string::npos);
  std::string deep_ifs;
  for (int i = 0; i < 5000; ++i) deep_ifs += "{% if true %}";
  EXPECT_NE(error_of(deep_ifs).find("nested too deeply"), std::string::npos);
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("RecursionError"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000000 }}").find("MemoryError"), std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000)|length }}").find("OverflowError"), std::string::npos);
  EXPECT_NE(error_of("{% for i in range(100000) %}{{ range(100000)|length }}{% endfor %}").find("TimeoutError"),
            std::string::npos);
  EXPECT_NE(error_of("{% set s = 'ab' * 20000000 %}{% for i in range(2) %}{{ s }}{% endfor %}").find("MemoryError"), std::string::npos);
}

TEST(JinjaTemplate, OneTemplateRendersManyContexts) {
  Template t("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}", "test");
  auto ctx = [](const char* json) {
    ValueDict d;
    d.items.emplace_back(Value("messages"), Value::from_json(nlohmann::ordered_json::parse(json)));
    return d;
  };
  EXPECT_EQ(t.render(ctx(R"([{"role": "user", "content": "a"}])")), "user:a;");
  EXPECT_EQ(t.render(ctx(R"([{"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}])")), "user:b;assistant:c;");
}

TEST(JinjaTemplate, PythonFloatRepr) {
  EXPECT_EQ(python_float_repr(1.0), "1.0");
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(0.00001), "1e-05");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(123456.789), "123456.789");
  EXPECT_EQ(python_float_repr(1.5e-300), "1.5e-300");
}

}  // namespace
}  // namespace iol::tokenizer::jinja
