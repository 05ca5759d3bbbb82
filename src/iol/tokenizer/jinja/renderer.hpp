// Renderer: executes a parsed template against variables. Scoping follows Jinja: `if` shares its
// scope, each loop iteration, macro call and `with` gets a child scope (so `set` inside a loop
// does not leak out; `namespace()` objects carry state across iterations), macros close over the
// scope they were defined in. Output and recursion are bounded so no template can exhaust the
// process.
#pragma once
#include <memory>
#include <string>

#include "iol/tokenizer/jinja/ast.hpp"

namespace iol::tokenizer::jinja {

struct Scope;

class Renderer {
 public:
  explicit Renderer(const std::string& name) : name_(name) {}

  // Throws iol::Error ("<name>: line N: <Python-style error>").
  std::string render(const Body& body, const ValueDict& variables);

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Flow exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec_for(const Node& node, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_set(const Node& node, const std::shared_ptr<Scope>& scope);
  Value make_macro(const Node& node, const std::shared_ptr<Scope>& scope);
  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope);
  void append(std::string& out, const std::string& text) const;

  const std::string& name_;
  int line_ = 0;
  int call_depth_ = 0;
};

}  // namespace iol::tokenizer::jinja
