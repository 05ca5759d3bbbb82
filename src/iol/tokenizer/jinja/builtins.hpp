// The runtime library of the Jinja subset: attribute and item access (Jinja's getattr/getitem
// rules over Python objects), iteration, calls, the filters and tests chat templates use, str and
// dict methods, and the globals transformers provides (range, namespace, dict, raise_exception,
// strftime_now). Errors are RuntimeError with Python's exception name first.
#pragma once
#include <string>
#include <vector>

#include "iol/tokenizer/jinja/py_string.hpp"
#include "iol/tokenizer/jinja/value.hpp"

namespace iol::tokenizer::jinja {

Value get_attribute(const Value& object, const std::string& name);
Value get_item(const Value& object, const Value& key);
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);
ValueList iterate(const Value& v);
Value call_value(const Value& callee, std::vector<Value>& args, KwArgs& kwargs);

bool is_filter(const std::string& name);
bool is_test(const std::string& name);
Value call_filter(const std::string& name, const Value& subject, std::vector<Value> args, KwArgs kwargs);
bool call_test(const std::string& name, const Value& subject, std::vector<Value> args);

// `raise_exception(msg)` throws this: the template's own refusal (roles out of order, ...).
class TemplateException : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

ValueDict make_globals();

// Arithmetic and membership with Python's rules (int64 overflow is an error).
Value binary_op(const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);
// a OP b for OP in == != < <= > >= in, not in (comparisons and the eq/lt/... tests).
bool compare_op(const std::string& op, const Value& a, const Value& b);

// Longest string any operation may build: a template cannot exhaust memory.
inline constexpr size_t kMaxStringBytes = size_t{64} << 20;

// Work budget of one render (statements, expressions and items iterated): a template cannot run
// forever either. Real chat templates use a few thousand units per conversation.
inline constexpr int64_t kMaxRenderWork = 5'000'000;
void reset_work_budget();
void charge_work(int64_t units);  // throws RuntimeError once the budget is spent

}  // namespace iol::tokenizer::jinja
