// Value: what a Jinja expression evaluates to, with Python's semantics (Jinja runs on Python, and
// chat templates depend on Python's str(), ==, truthiness and json.dumps). Lists, dicts and
// namespaces are shared (cheap to copy); only namespaces are mutable, as in transformers'
// ImmutableSandboxedEnvironment. Integers are int64 (overflow is an error, not a bigint).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace iol::tokenizer::jinja {

class Value;
using ValueList = std::vector<Value>;

// Keyword arguments keep their order (Jinja passes them as a Python dict).
using KwArgs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(std::vector<Value>& args, KwArgs& kwargs)>;

struct ValueDict {
  std::vector<std::pair<Value, Value>> items;  // insertion order, as Python dicts
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(Value key, Value value);
};

struct Undefined {
  std::string hint;  // what was looked up, for the error when it is used
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kTuple, kDict, kNamespace, kFunction };

  Value() : data_(Undefined{}) {}
  static Value undefined(std::string hint) { Value v; v.data_ = Undefined{std::move(hint)}; return v; }
  static Value none() { Value v; v.data_ = std::monostate{}; return v; }
  Value(bool b) : data_(b) {}
  Value(int64_t i) : data_(i) {}
  Value(int i) : data_(int64_t{i}) {}
  Value(double d) : data_(d) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  static Value list(ValueList items) { return Value(Kind::kList, std::move(items)); }
  static Value tuple(ValueList items) { return Value(Kind::kTuple, std::move(items)); }
  static Value dict(ValueDict d = {});
  static Value make_namespace(ValueDict d = {});
  static Value function(std::string name, Function f);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const;
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_sequence() const { return kind() == Kind::kList || kind() == Kind::kTuple; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_function() const { return kind() == Kind::kFunction; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;    // bool or int
  double as_double() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const ValueList& as_list() const;          // list or tuple
  const ValueDict& as_dict() const;          // dict or namespace
  ValueDict& namespace_dict() const;         // mutable: namespaces only
  const Function& as_function() const;
  const std::string& function_name() const;
  const std::string& undefined_hint() const { return std::get<Undefined>(data_).hint; }

  bool truthy() const;
  std::string type_name() const;  // Python's: 'str', 'int', 'dict', ...

 private:
  struct Sequence { Kind kind; std::shared_ptr<const ValueList> items; };
  struct Dict { Kind kind; std::shared_ptr<ValueDict> dict; };
  struct Callable { std::shared_ptr<const std::pair<std::string, Function>> fn; };
  Value(Kind kind, ValueList items);
  std::variant<Undefined, std::monostate, bool, int64_t, double, std::string, Sequence, Dict, Callable> data_;
};

// Python's str(value): what {{ }} prints ('True', 'None', '2.5', "['a', 1]"); undefined prints ''.
std::string to_str(const Value& v);
// Python's repr(value): strings quoted and escaped as Python does.
std::string to_repr(const Value& v);
// json.dumps(value, ensure_ascii=False, indent, separators, sort_keys): transformers' tojson filter.
std::string to_json(const Value& v, int indent = -1, bool sort_keys = false);
// Python's float repr: shortest round-trip digits, '1.0', '1e+20', '1e-07'.
std::string python_float_repr(double d);

// Python ==, and <, <=, >, >= (TypeError across incompatible types).
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // -1, 0, 1; throws for unorderable types

}  // namespace iol::tokenizer::jinja
