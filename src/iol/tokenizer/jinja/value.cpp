#include "iol/tokenizer/jinja/value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "iol/tokenizer/jinja/py_string.hpp"

namespace iol::tokenizer::jinja {

const Value* ValueDict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* ValueDict::find(const std::string& key) const {
  for (const auto& [k, v] : items)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

void ValueDict::set(Value key, Value value) {
  for (auto& [k, v] : items)
    if (equals(k, key)) { v = std::move(value); return; }
  items.emplace_back(std::move(key), std::move(value));
}

Value::Value(Kind kind, ValueList items) : data_(Sequence{kind, std::make_shared<const ValueList>(std::move(items))}) {}

Value Value::dict(ValueDict d) {
  Value v;
  v.data_ = Dict{Kind::kDict, std::make_shared<ValueDict>(std::move(d))};
  return v;
}

Value Value::make_namespace(ValueDict d) {
  Value v;
  v.data_ = Dict{Kind::kNamespace, std::make_shared<ValueDict>(std::move(d))};
  return v;
}

Value Value::function(std::string name, Function f) {
  Value v;
  v.data_ = Callable{std::make_shared<const std::pair<std::string, Function>>(std::move(name), std::move(f))};
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueDict d;
      for (const auto& [k, e] : j.items()) d.items.emplace_back(Value(k), from_json(e));
      return dict(std::move(d));
    }
    default: return undefined("binary JSON value");
  }
}

Value::Kind Value::kind() const {
  switch (data_.index()) {
    case 0: return Kind::kUndefined;
    case 1: return Kind::kNone;
    case 2: return Kind::kBool;
    case 3: return Kind::kInt;
    case 4: return Kind::kFloat;
    case 5: return Kind::kString;
    case 6: return std::get<Sequence>(data_).kind;
    case 7: return std::get<Dict>(data_).kind;
    default: return Kind::kFunction;
  }
}

int64_t Value::as_int() const { return is_bool() ? int64_t{as_bool()} : std::get<int64_t>(data_); }
double Value::as_double() const { return is_float() ? std::get<double>(data_) : static_cast<double>(as_int()); }
const ValueList& Value::as_list() const { return *std::get<Sequence>(data_).items; }
const ValueDict& Value::as_dict() const { return *std::get<Dict>(data_).dict; }
ValueDict& Value::namespace_dict() const { return *std::get<Dict>(data_).dict; }
const Function& Value::as_function() const { return std::get<Callable>(data_).fn->second; }
const std::string& Value::function_name() const { return std::get<Callable>(data_).fn->first; }

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined: case Kind::kNone: return false;
    case Kind::kBool: return as_bool();
    case Kind::kInt: return as_int() != 0;
    case Kind::kFloat: return as_double() != 0.0;
    case Kind::kString: return !as_string().empty();
    case Kind::kList: case Kind::kTuple: return !as_list().empty();
    case Kind::kDict: return !as_dict().items.empty();
    default: return true;
  }
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    default: return "function";
  }
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, then Python's layout rule ('r' format):
  // positional when the decimal exponent is in [-4, 16), else d.ddde±XX.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, end);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out;
  }
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(point) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
  }
  return out;
}

namespace {

std::string sequence_repr(const Value& v) {
  const bool tuple = v.kind() == Value::Kind::kTuple;
  std::string out = tuple ? "(" : "[";
  const auto& items = v.as_list();
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + to_repr(items[i]);
  if (tuple && items.size() == 1) out += ",";
  return out + (tuple ? ")" : "]");
}

std::string dict_repr(const ValueDict& d) {
  std::string out = "{";
  for (size_t i = 0; i < d.items.size(); ++i)
    out += (i ? ", " : "") + to_repr(d.items[i].first) + ": " + to_repr(d.items[i].second);
  return out + "}";
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Value::Kind::kString: return k.as_string();
    case Value::Kind::kNone: return "null";
    case Value::Kind::kBool: return k.as_bool() ? "true" : "false";
    case Value::Kind::kInt: return std::to_string(k.as_int());
    case Value::Kind::kFloat: return python_float_repr(k.as_double());
    default: throw RuntimeError(fmt::format("TypeError: keys must be str, int, float, bool or None, not {}", k.type_name()));
  }
}

void json_dump(std::string& out, const Value& v, int indent, bool sort_keys, int depth) {
  if (depth > 512) throw RuntimeError("RecursionError: value nested too deeply for tojson");
  const std::string newline = indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ') : "";
  const std::string close = indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent * depth), ' ') : "";
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      double d = v.as_double();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float_repr(d);
      return;
    }
    case Value::Kind::kString: json_string(out, v.as_string()); return;
    case Value::Kind::kList: case Value::Kind::kTuple: {
      const auto& items = v.as_list();
      if (items.empty()) { out += "[]"; return; }
      out += "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        out += newline;
        json_dump(out, items[i], indent, sort_keys, depth + 1);
      }
      out += close + "]";
      return;
    }
    case Value::Kind::kDict: {
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [k, e] : v.as_dict().items) entries.emplace_back(json_key(k), &e);
      if (sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      if (entries.empty()) { out += "{}"; return; }
      out += "{";
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_sep;
        out += newline;
        json_string(out, entries[i].first);
        out += ": ";
        json_dump(out, *entries[i].second, indent, sort_keys, depth + 1);
      }
      out += close + "}";
      return;
    }
    default:
      throw RuntimeError(fmt::format("TypeError: Object of type {} is not JSON serializable", v.type_name()));
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kString: return v.as_string();
    default: return to_repr(v);
  }
}

std::string to_repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return python_float_repr(v.as_double());
    case Value::Kind::kString: return py::repr(v.as_string());
    case Value::Kind::kList: case Value::Kind::kTuple: return sequence_repr(v);
    case Value::Kind::kDict: return dict_repr(v.as_dict());
    case Value::Kind::kNamespace: return "<Namespace " + dict_repr(v.as_dict()) + ">";
    default: return "<function " + v.function_name() + ">";
  }
}

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_dump(out, v, indent, sort_keys, 0);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined: case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kList: case Value::Kind::kTuple: {
      const auto &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const auto &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.as_dict() == &b.as_dict();
    default: return a.is_function() && &a.as_function() == &b.as_function();
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());  // UTF-8 byte order == code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_sequence() && a.kind() == b.kind()) {
    const auto &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i])) return compare(x[i], y[i]);
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw RuntimeError(fmt::format("TypeError: '<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name()));
}

}  // namespace iol::tokenizer::jinja
