#include "iol/tokenizer/jinja/template.hpp"

#include "iol/core/error.hpp"
#include "iol/tokenizer/jinja/builtins.hpp"
#include "iol/tokenizer/jinja/lexer.hpp"
#include "iol/tokenizer/jinja/parser.hpp"
#include "iol/tokenizer/jinja/renderer.hpp"

namespace iol::tokenizer::jinja {

namespace {

// Jinja rejects unknown filters and tests when it compiles; so do we, naming the line.
void check_names(const Expr* e, const std::string& name) {
  if (!e) return;
  if (e->kind == Expr::Kind::kFilter && !is_filter(e->name))
    fail("{}: line {}: no filter named '{}' (not in iol's Jinja subset)", name, e->line, e->name);
  if (e->kind == Expr::Kind::kTest && !is_test(e->name))
    fail("{}: line {}: no test named '{}' (not in iol's Jinja subset)", name, e->line, e->name);
  for (const auto& a : e->args) check_names(a.get(), name);
  for (const auto& [k, v] : e->kwargs) check_names(v.get(), name);
}

void check_names(const Body& body, const std::string& name) {
  for (const auto& node : body) {
    check_names(node->expr.get(), name);
    check_names(node->filter.get(), name);
    for (const auto& [condition, branch] : node->branches) {
      check_names(condition.get(), name);
      check_names(branch, name);
    }
    for (const auto& [param, dflt] : node->params) check_names(dflt.get(), name);
    check_names(node->body, name);
    check_names(node->else_body, name);
  }
}

}  // namespace

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  auto body = std::make_shared<Body>(parse(lex(source, name_), name_));
  check_names(*body, name_);
  body_ = std::move(body);
}

std::string Template::render(const ValueDict& variables) const { return Renderer(name_).render(*body_, variables); }

}  // namespace iol::tokenizer::jinja
