#include "iol/tokenizer/jinja/renderer.hpp"

#include "iol/core/error.hpp"
#include "iol/tokenizer/jinja/builtins.hpp"

namespace iol::tokenizer::jinja {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get())
      for (const auto& [k, v] : s->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars)
      if (k == name) { v = std::move(value); return; }
    vars.emplace_back(name, std::move(value));
  }
};

namespace {
constexpr int kMaxCallDepth = 100;  // macro recursion; Python's limit is higher but frames are bigger
std::shared_ptr<Scope> child(const std::shared_ptr<Scope>& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}
}  // namespace

std::string Renderer::render(const Body& body, const ValueDict& variables) {
  auto globals = std::make_shared<Scope>();
  for (auto& [k, v] : make_globals().items) globals->set(k.as_string(), v);
  auto root = child(globals);
  for (const auto& [k, v] : variables.items)
    if (k.is_string()) root->set(k.as_string(), v);
  std::string out;
  try {
    reset_work_budget();
    exec(body, root, out);
  } catch (const TemplateException& e) {
    fail("{}: line {}: the template raised an exception: {}", name_, line_, e.what());
  } catch (const RuntimeError& e) {
    fail("{}: line {}: {}", name_, line_, e.what());
  }
  return out;
}

void Renderer::append(std::string& out, const std::string& text) const {
  if (out.size() + text.size() > kMaxStringBytes)
    throw RuntimeError("MemoryError: the rendered text exceeds the template output limit");
  out += text;
}

Renderer::Flow Renderer::exec(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
  for (const auto& node_ptr : body) {
    const Node& node = *node_ptr;
    line_ = node.line;
    charge_work(1);
    switch (node.kind) {
      case Node::Kind::kText: append(out, node.text); break;
      case Node::Kind::kOutput: append(out, to_str(eval(*node.expr, scope))); break;
      case Node::Kind::kIf:
        for (const auto& [condition, branch] : node.branches) {
          if (condition && !eval(*condition, scope).truthy()) continue;
          if (Flow f = exec(branch, scope, out); f != Flow::kNormal) return f;
          break;
        }
        break;
      case Node::Kind::kFor:
        if (Flow f = exec_for(node, scope, out); f != Flow::kNormal) return f;
        break;
      case Node::Kind::kSet: exec_set(node, scope); break;
      case Node::Kind::kSetBlock: {
        std::string text;
        exec(node.body, scope, text);
        scope->set(node.targets[0], Value(std::move(text)));
        break;
      }
      case Node::Kind::kMacro: scope->set(node.text, make_macro(node, scope)); break;
      case Node::Kind::kWith: {
        auto inner = child(scope);
        for (const auto& [name, expr] : node.params) inner->set(name, eval(*expr, scope));
        if (Flow f = exec(node.body, inner, out); f != Flow::kNormal) return f;
        break;
      }
      case Node::Kind::kBlock:
        if (Flow f = exec(node.body, scope, out); f != Flow::kNormal) return f;
        break;
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
    }
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec_for(const Node& node, const std::shared_ptr<Scope>& scope, std::string& out) {
  auto bind = [&](const std::shared_ptr<Scope>& target, const Value& item) {
    if (node.targets.size() == 1) {
      target->set(node.targets[0], item);
      return;
    }
    ValueList parts = iterate(item);
    if (parts.size() != node.targets.size())
      throw RuntimeError(fmt::format("ValueError: cannot unpack {} values into {} loop variables", parts.size(), node.targets.size()));
    for (size_t i = 0; i < parts.size(); ++i) target->set(node.targets[i], parts[i]);
  };
  ValueList items = iterate(eval(*node.expr, scope));
  if (node.filter) {  // `for x in xs if cond`: filtered before loop.index/length are counted
    ValueList kept;
    for (const auto& item : items) {
      auto probe = child(scope);
      bind(probe, item);
      if (eval(*node.filter, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(node.else_body, child(scope), out);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    auto iteration = child(scope);
    bind(iteration, items[static_cast<size_t>(i)]);
    ValueDict loop;
    loop.items = {{Value("index"), Value(i + 1)},
                  {Value("index0"), Value(i)},
                  {Value("revindex"), Value(n - i)},
                  {Value("revindex0"), Value(n - i - 1)},
                  {Value("first"), Value(i == 0)},
                  {Value("last"), Value(i == n - 1)},
                  {Value("length"), Value(n)},
                  {Value("depth"), Value(1)},
                  {Value("depth0"), Value(0)},
                  {Value("previtem"), i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item")},
                  {Value("nextitem"), i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item")},
                  {Value("cycle"), Value::function("loop.cycle", [i](std::vector<Value>& args, KwArgs&) {
                     if (args.empty()) throw RuntimeError("TypeError: no items for cycling given");
                     return args[static_cast<size_t>(i) % args.size()];
                   })}};
    iteration->set("loop", Value::dict(std::move(loop)));
    if (exec(node.body, iteration, out) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Renderer::exec_set(const Node& node, const std::shared_ptr<Scope>& scope) {
  Value value = eval(*node.expr, scope);
  if (!node.attribute.empty()) {
    const Value* target = scope->find(node.targets[0]);
    if (!target || !target->is_namespace())
      throw RuntimeError("TemplateRuntimeError: cannot assign attribute on non-namespace object");
    target->namespace_dict().set(Value(node.attribute), std::move(value));
    return;
  }
  if (node.targets.size() == 1) {
    scope->set(node.targets[0], std::move(value));
    return;
  }
  ValueList parts = iterate(value);
  if (parts.size() != node.targets.size())
    throw RuntimeError(fmt::format("ValueError: cannot unpack {} values into {} variables", parts.size(), node.targets.size()));
  for (size_t i = 0; i < parts.size(); ++i) scope->set(node.targets[i], parts[i]);
}

Value Renderer::make_macro(const Node& node, const std::shared_ptr<Scope>& scope) {
  const Node* macro = &node;
  std::weak_ptr<Scope> defined_in = scope;  // weak: the macro is stored in that scope (no cycle)
  return Value::function(node.text, [this, macro, defined_in](std::vector<Value>& args, KwArgs& kwargs) {
    if (args.size() > macro->params.size())
      throw RuntimeError(fmt::format("TypeError: macro '{}' takes {} arguments, {} given", macro->text, macro->params.size(), args.size()));
    if (++call_depth_ > kMaxCallDepth) throw RuntimeError("RecursionError: macro calls nested too deeply");
    struct Leave { int& d; ~Leave() { --d; } } leave{call_depth_};
    auto parent = defined_in.lock();
    if (!parent) throw RuntimeError("TemplateRuntimeError: macro '" + macro->text + "' called outside the scope it was defined in");
    auto frame = child(parent);
    for (size_t i = 0; i < macro->params.size(); ++i) {
      const auto& [name, dflt] = macro->params[i];
      Value v = i < args.size() ? args[i] : Value::undefined("'" + name + "' is undefined");
      for (const auto& [k, kv] : kwargs)
        if (k == name) v = kv;
      if (i >= args.size() && v.is_undefined() && dflt) v = eval(*dflt, frame);
      frame->set(name, v);
    }
    for (const auto& [k, kv] : kwargs) {
      bool known = false;
      for (const auto& p : macro->params) known |= p.first == k;
      if (!known) throw RuntimeError(fmt::format("TypeError: macro '{}' has no argument '{}'", macro->text, k));
    }
    const int saved_line = line_;
    std::string out;
    exec(macro->body, frame, out);
    line_ = saved_line;
    return Value(std::move(out));
  });
}

Value Renderer::eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Value left = eval(*e.args[0], scope);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], scope);
    const bool ok = compare_op(e.ops[i], left, right);
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Renderer::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  line_ = e.line;
  charge_work(1);
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.value;
    case Expr::Kind::kName: {
      const Value* v = scope->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::Kind::kList: case Expr::Kind::kTuple: {
      ValueList items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return e.kind == Expr::Kind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case Expr::Kind::kDict: {
      ValueDict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) d.set(eval(*e.args[i], scope), eval(*e.args[i + 1], scope));
      return Value::dict(std::move(d));
    }
    case Expr::Kind::kGetAttr: return get_attribute(eval(*e.args[0], scope), e.name);
    case Expr::Kind::kGetItem: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
    case Expr::Kind::kSlice: {
      Value object = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.args[static_cast<size_t>(i + 1)] ? eval(*e.args[static_cast<size_t>(i + 1)], scope) : Value::none();
      return get_slice(object, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: case Expr::Kind::kFilter: case Expr::Kind::kTest: {
      Value subject = eval(*e.args[0], scope);
      std::vector<Value> args;
      for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i], scope));
      KwArgs kwargs;
      for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v, scope));
      line_ = e.line;
      if (e.kind == Expr::Kind::kCall) return call_value(subject, args, kwargs);
      if (e.kind == Expr::Kind::kFilter) return call_filter(e.name, subject, std::move(args), std::move(kwargs));
      return Value(call_test(e.name, subject, std::move(args)) != e.negated);
    }
    case Expr::Kind::kUnary: {
      Value v = eval(*e.args[0], scope);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) throw RuntimeError("UndefinedError: " + v.undefined_hint());
      if (!v.is_number()) throw RuntimeError("TypeError: bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
      if (v.is_float()) return Value(-v.as_double());
      if (v.as_int() == INT64_MIN) throw RuntimeError("OverflowError: integer result does not fit in 64 bits");
      return Value(-v.as_int());
    }
    case Expr::Kind::kBinary: {
      Value a = eval(*e.args[0], scope);
      Value b = eval(*e.args[1], scope);
      line_ = e.line;
      return binary_op(e.name, a, b);
    }
    case Expr::Kind::kAnd: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? eval(*e.args[1], scope) : a;
    }
    case Expr::Kind::kOr: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? a : eval(*e.args[1], scope);
    }
    case Expr::Kind::kCompare: return eval_compare(e, scope);
    case Expr::Kind::kConditional:
      if (eval(*e.args[0], scope).truthy()) return eval(*e.args[1], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the conditional expression has no else branch");
  }
  return Value();
}

}  // namespace iol::tokenizer::jinja
