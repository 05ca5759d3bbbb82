#include "iol/tokenizer/jinja/builtins.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "iol/tokenizer/jinja/py_string.hpp"

namespace iol::tokenizer::jinja {

namespace {

[[noreturn]] void type_error(const std::string& what) { throw RuntimeError("TypeError: " + what); }
[[noreturn]] void undefined_error(const Value& v) {
  throw RuntimeError("UndefinedError: " + (v.undefined_hint().empty() ? std::string("value is undefined") : v.undefined_hint()));
}

// Python-style argument binding: position `index` or keyword `name`, else the default.
class Args {
 public:
  Args(std::vector<Value>& positional, KwArgs& keywords, std::string function)
      : positional_(positional), keywords_(keywords), function_(std::move(function)) {}

  bool has(size_t index, const char* name) const { return index < positional_.size() || keyword(name); }
  Value get(size_t index, const char* name, Value fallback = Value()) const {
    if (index < positional_.size()) return positional_[index];
    if (const Value* v = keyword(name)) return *v;
    return fallback;
  }
  Value required(size_t index, const char* name) const {
    if (!has(index, name)) type_error(fmt::format("{}() missing required argument '{}'", function_, name));
    return get(index, name);
  }
  int64_t get_int(size_t index, const char* name, int64_t fallback) const {
    Value v = get(index, name);
    if (v.is_undefined() || v.is_none()) return fallback;
    if (!v.is_int() && !v.is_bool()) type_error(fmt::format("{}(): '{}' must be an integer, not {}", function_, name, v.type_name()));
    return v.as_int();
  }
  bool get_bool(size_t index, const char* name, bool fallback) const {
    Value v = get(index, name);
    return v.is_undefined() ? fallback : v.truthy();
  }
  std::optional<std::string> get_string(size_t index, const char* name) const {
    Value v = get(index, name);
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_string()) type_error(fmt::format("{}(): '{}' must be a string, not {}", function_, name, v.type_name()));
    return v.as_string();
  }
  size_t size() const { return positional_.size(); }

 private:
  const Value* keyword(const char* name) const {
    for (const auto& [k, v] : keywords_)
      if (k == name) return &v;
    return nullptr;
  }
  std::vector<Value>& positional_;
  KwArgs& keywords_;
  std::string function_;
};

std::string require_string(const Value& v, const char* what) {
  if (!v.is_string()) type_error(fmt::format("{} must be a string, not {}", what, v.type_name()));
  return v.as_string();
}

void check_size(size_t bytes) {
  if (bytes > kMaxStringBytes) throw RuntimeError(fmt::format("MemoryError: a string of {} bytes exceeds the template limit", bytes));
}

Value string_list(const std::vector<std::string>& parts) {
  ValueList items;
  for (const auto& p : parts) items.emplace_back(p);
  return Value::list(std::move(items));
}

int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<int64_t>(py::length(v.as_string()));
    case Value::Kind::kList: case Value::Kind::kTuple: return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::kDict: case Value::Kind::kNamespace: return static_cast<int64_t>(v.as_dict().items.size());
    default: type_error(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
}

// --- methods of str, dict and list ----------------------------------------------------------

Value string_method(const std::string& s, const std::string& name, Args& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value(py::strip(s, a.get_string(0, "chars"), name != "rstrip", name != "lstrip"));
  if (name == "split") return string_list(py::split(s, a.get_string(0, "sep"), a.get_int(1, "maxsplit", -1)));
  if (name == "rsplit") return string_list(py::rsplit(s, a.get_string(0, "sep"), a.get_int(1, "maxsplit", -1)));
  if (name == "splitlines") return string_list(py::splitlines(s));
  if (name == "startswith" || name == "endswith") {
    Value arg = a.required(0, "prefix");
    ValueList options = arg.is_sequence() ? arg.as_list() : ValueList{arg};
    for (const auto& o : options) {
      const std::string p = require_string(o, (name + "() argument").c_str());
      if (name == "startswith" ? s.compare(0, p.size(), p) == 0
                               : s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)
        return Value(true);
    }
    return Value(false);
  }
  if (name == "upper") return Value(py::upper(s));
  if (name == "lower") return Value(py::lower(s));
  if (name == "title") return Value(py::title(s));
  if (name == "capitalize") return Value(py::capitalize(s));
  if (name == "replace") {
    std::string out = py::replace(s, require_string(a.required(0, "old"), "replace() old"),
                                  require_string(a.required(1, "new"), "replace() new"), a.get_int(2, "count", -1));
    check_size(out.size());
    return Value(std::move(out));
  }
  if (name == "find") return Value(py::find(s, require_string(a.required(0, "sub"), "find() argument")));
  if (name == "count") return Value(py::count(s, require_string(a.required(0, "sub"), "count() argument")));
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const auto& item : iterate(a.required(0, "iterable"))) {
      if (!first) out += s;
      first = false;
      out += require_string(item, "join() item");
      check_size(out.size());
    }
    return Value(std::move(out));
  }
  auto all_of = [&](auto predicate) {
    std::u32string u = py::decode(s);
    return Value(!u.empty() && std::all_of(u.begin(), u.end(), predicate));
  };
  if (name == "isdigit") return all_of(py::is_digit);
  if (name == "isspace") return all_of(py::is_space);
  if (name == "isalpha") return all_of(py::is_alpha);
  if (name == "isalnum") return all_of(py::is_alnum);
  if (name == "islower" || name == "isupper") {
    std::u32string u = py::decode(s);
    bool any_cased = false, all_match = true;
    for (char32_t c : u) {
      const bool lower = py::is_cased_lower(c), upper = py::is_cased_upper(c);
      any_cased |= lower || upper;
      if (name == "islower" ? upper : lower) all_match = false;
    }
    return Value(any_cased && all_match);
  }
  throw RuntimeError("UndefinedError: 'str object' has no attribute '" + name + "'");
}

const std::set<std::string> kStringMethods = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
                                              "endswith", "upper", "lower", "title", "capitalize", "replace", "find",
                                              "count", "join", "isdigit", "isspace", "isalpha", "isalnum", "islower", "isupper"};
const std::set<std::string> kDictMethods = {"items", "keys", "values", "get"};
const std::set<std::string> kDictMutators = {"pop", "popitem", "update", "setdefault", "clear", "copy", "fromkeys"};
const std::set<std::string> kListMethods = {"count", "index"};
const std::set<std::string> kListMutators = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "copy"};

Value dict_method(const Value& d, const std::string& name, Args& a) {
  const ValueDict& dict = d.as_dict();
  if (name == "items") {
    ValueList items;
    for (const auto& [k, v] : dict.items) items.push_back(Value::tuple({k, v}));
    return Value::list(std::move(items));
  }
  if (name == "keys" || name == "values") {
    ValueList items;
    for (const auto& [k, v] : dict.items) items.push_back(name == "keys" ? k : v);
    return Value::list(std::move(items));
  }
  // get
  const Value* found = dict.find(a.required(0, "key"));
  return found ? *found : a.get(1, "default", Value::none());
}

Value list_method(const Value& list, const std::string& name, Args& a) {
  const Value item = a.required(0, "value");
  const auto& items = list.as_list();
  if (name == "count") return Value(static_cast<int64_t>(std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, item); })));
  for (size_t i = 0; i < items.size(); ++i)
    if (equals(items[i], item)) return Value(static_cast<int64_t>(i));
  throw RuntimeError("ValueError: " + to_repr(item) + " is not in list");
}

Value bound(const Value& object, const std::string& name,
            Value (*method)(const Value&, const std::string&, Args&)) {
  return Value::function(object.type_name() + "." + name, [object, name, method](std::vector<Value>& args, KwArgs& kwargs) {
    Args a(args, kwargs, name);
    return method(object, name, a);
  });
}

Value unsafe(const Value& object, const std::string& name) {
  return Value::function(name, [type = object.type_name(), name](std::vector<Value>&, KwArgs&) -> Value {
    throw RuntimeError(fmt::format("SecurityError: access to attribute '{}' of '{}' object is unsafe (templates cannot modify values)", name, type));
  });
}

// --- filters ---------------------------------------------------------------------------------

Value lower_if_string(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(py::lower(v.as_string())) : v;
}

// Jinja's attribute= argument: a dotted path of item/attribute names ("a.b", "items.0").
Value resolve_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    v = numeric ? get_item(v, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(v, Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

Value item_key(const Value& item, const std::optional<std::string>& attribute, bool case_sensitive) {
  return lower_if_string(attribute ? resolve_path(item, *attribute) : item, case_sensitive);
}

ValueList sorted(ValueList items, bool reverse, bool case_sensitive, const std::optional<std::string>& attribute) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : items) keyed.emplace_back(item_key(item, attribute, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  ValueList out;
  for (auto& [k, v] : keyed) out.push_back(std::move(v));
  return out;
}

Value to_int(const Value& v, const Value& fallback, int64_t base) {
  if (v.is_bool() || v.is_int()) return Value(v.as_int());
  if (v.is_float()) {
    double d = std::trunc(v.as_double());
    if (!std::isfinite(d) || std::abs(d) > 9.2e18) return fallback;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    std::string s = py::strip(v.as_string(), std::nullopt, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (!s.empty()) {
      char* end = nullptr;
      errno = 0;
      long long i = std::strtoll(s.c_str(), &end, static_cast<int>(base));
      if (*end == '\0' && errno == 0) return Value(static_cast<int64_t>(i));
      double d = std::strtod(s.c_str(), &end);
      if (*end == '\0' && std::isfinite(d) && std::abs(d) < 9.2e18) return Value(static_cast<int64_t>(std::trunc(d)));
    }
  }
  return fallback;
}

Value to_float(const Value& v, const Value& fallback) {
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    std::string s = py::strip(v.as_string(), std::nullopt, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value(d);
  }
  return fallback;
}

Value round_value(const Value& v, int64_t precision, const std::string& method) {
  if (!v.is_number()) type_error("round() needs a number, not " + v.type_name());
  if (method != "common" && method != "ceil" && method != "floor")
    throw RuntimeError("FilterArgumentError: method must be common, ceil or floor");
  if (method == "common" && !v.is_float() && precision >= 0) return Value(v.as_int());
  const double x = v.as_double();
  if (method != "common") {
    const double scale = std::pow(10.0, static_cast<double>(precision));
    return Value((method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale)) / scale);
  }
  if (precision < 0) {
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    return Value(std::nearbyint(x / scale) * scale);
  }
  // Python rounds the exact binary value half-to-even, as printf does.
  std::string s = fmt::format("{:.{}f}", x, static_cast<int>(std::min<int64_t>(precision, 340)));
  return Value(std::strtod(s.c_str(), nullptr));
}

Value select_or_reject(const Value& subject, Args& a, bool select, bool by_attribute) {
  ValueList out;
  size_t next = 0;
  std::optional<std::string> attribute;
  if (by_attribute) attribute = require_string(a.required(next++, "attribute"), "attribute");
  std::optional<std::string> test;
  if (a.size() > next) test = require_string(a.get(next, "test"), "test name");
  std::vector<Value> test_args;
  for (size_t i = next + 1; i < a.size(); ++i) test_args.push_back(a.get(i, ""));
  if (test && !is_test(*test)) throw RuntimeError("TemplateRuntimeError: no test named '" + *test + "'");
  for (const auto& item : iterate(subject)) {
    Value probe = attribute ? resolve_path(item, *attribute) : item;
    bool pass = test ? call_test(*test, probe, test_args) : probe.truthy();
    if (pass == select) out.push_back(item);
  }
  return Value::list(std::move(out));
}

std::string indent_text(const std::string& s, const std::string& prefix, bool first, bool blank) {
  std::vector<std::string> lines = py::splitlines(s + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n";
    const bool indent = (i > 0 || first) && (blank || !lines[i].empty());
    out += (indent ? prefix : "") + lines[i];
  }
  if (first && lines.empty()) out = prefix;
  return out;
}

using FilterFn = Value (*)(const Value&, Args&);

#define IOL_FILTER(name) [](const Value& s, Args& a) -> Value
const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", IOL_FILTER(abs) {
         (void)a;
         if (s.is_float()) return Value(std::abs(s.as_double()));
         if (s.is_int() || s.is_bool()) {
           if (s.as_int() == INT64_MIN) throw RuntimeError("OverflowError: integer overflow");
           return Value(std::abs(s.as_int()));
         }
         type_error("bad operand type for abs(): '" + s.type_name() + "'");
       }},
      {"capitalize", IOL_FILTER(capitalize) { (void)a; return Value(py::capitalize(to_str(s))); }},
      {"center", IOL_FILTER(center) {
         std::string text = to_str(s);
         int64_t width = a.get_int(0, "width", 80), len = static_cast<int64_t>(py::length(text));
         if (width <= len) return Value(text);
         check_size(static_cast<size_t>(width));
         int64_t margin = width - len, left = margin / 2 + (margin & width & 1);
         return Value(std::string(static_cast<size_t>(left), ' ') + text + std::string(static_cast<size_t>(margin - left), ' '));
       }},
      {"count", IOL_FILTER(count) { (void)a; return Value(length_of(s)); }},
      {"length", IOL_FILTER(length) { (void)a; return Value(length_of(s)); }},
      {"default", IOL_FILTER(default) {
         return s.is_undefined() || (a.get_bool(1, "boolean", false) && !s.truthy()) ? a.get(0, "default_value", Value("")) : s;
       }},
      {"dictsort", IOL_FILTER(dictsort) {
         if (!s.is_dict()) type_error("dictsort needs a dict, not " + s.type_name());
         const bool case_sensitive = a.get_bool(0, "case_sensitive", false), reverse = a.get_bool(2, "reverse", false);
         const int pos = a.get_string(1, "by").value_or("key") == "value" ? 1 : 0;
         ValueList items;
         for (const auto& [k, v] : s.as_dict().items) items.push_back(Value::tuple({k, v}));
         std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
           Value kx = lower_if_string(x.as_list()[pos], case_sensitive), ky = lower_if_string(y.as_list()[pos], case_sensitive);
           return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
         });
         return Value::list(std::move(items));
       }},
      {"first", IOL_FILTER(first) {
         (void)a;
         ValueList items = iterate(s);
         return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
       }},
      {"last", IOL_FILTER(last) {
         (void)a;
         ValueList items = iterate(s);
         return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
       }},
      {"float", IOL_FILTER(float) { return to_float(s, a.get(0, "default", Value(0.0))); }},
      {"int", IOL_FILTER(int) { return to_int(s, a.get(0, "default", Value(0)), a.get_int(1, "base", 10)); }},
      {"indent", IOL_FILTER(indent) {
         Value width = a.get(0, "width", Value(4));
         std::string prefix = width.is_string() ? width.as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1 << 20)), ' ');
         std::string out = indent_text(to_str(s), prefix, a.get_bool(1, "first", false), a.get_bool(2, "blank", false));
         check_size(out.size());
         return Value(std::move(out));
       }},
      {"items", IOL_FILTER(items) {
         (void)a;
         if (s.is_undefined()) return Value::list({});
         if (!s.is_dict()) type_error("items needs a dict, not " + s.type_name());
         ValueList items;
         for (const auto& [k, v] : s.as_dict().items) items.push_back(Value::tuple({k, v}));
         return Value::list(std::move(items));
       }},
      {"join", IOL_FILTER(join) {
         const std::string sep = to_str(a.get(0, "d", Value("")));
         std::optional<std::string> attribute = a.get_string(1, "attribute");
         std::string out;
         bool first = true;
         for (const auto& item : iterate(s)) {
           if (!first) out += sep;
           first = false;
           out += to_str(attribute ? resolve_path(item, *attribute) : item);
           check_size(out.size());
         }
         return Value(std::move(out));
       }},
      {"list", IOL_FILTER(list) { (void)a; return Value::list(iterate(s)); }},
      {"lower", IOL_FILTER(lower) { (void)a; return Value(py::lower(to_str(s))); }},
      {"upper", IOL_FILTER(upper) { (void)a; return Value(py::upper(to_str(s))); }},
      {"title", IOL_FILTER(title) {
         // Jinja's title (not str.title): words start after whitespace, '-', or an opening bracket.
         (void)a;
         std::u32string u = py::decode(to_str(s));
         bool word_start = true;
         for (auto& c : u) {
           const bool separator = py::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
           if (separator) { word_start = true; continue; }
           std::string one = py::encode(std::u32string(1, c));
           c = py::decode(word_start ? py::upper(one) : py::lower(one))[0];
           word_start = false;
         }
         return Value(py::encode(u));
       }},
      {"map", IOL_FILTER(map) {
         ValueList out;
         if (std::optional<std::string> attribute = a.get_string(99, "attribute")) {
           Value fallback = a.get(99, "default");
           for (const auto& item : iterate(s)) {
             Value v = resolve_path(item, *attribute);
             out.push_back(v.is_undefined() && !fallback.is_undefined() ? fallback : v);
           }
           return Value::list(std::move(out));
         }
         const std::string filter = require_string(a.required(0, "filter"), "map() filter name");
         if (!is_filter(filter)) throw RuntimeError("TemplateRuntimeError: no filter named '" + filter + "'");
         std::vector<Value> rest;
         for (size_t i = 1; i < a.size(); ++i) rest.push_back(a.get(i, ""));
         for (const auto& item : iterate(s)) out.push_back(call_filter(filter, item, rest, {}));
         return Value::list(std::move(out));
       }},
      {"max", IOL_FILTER(max) {
         ValueList items = sorted(iterate(s), true, a.get_bool(0, "case_sensitive", false), a.get_string(1, "attribute"));
         return items.empty() ? Value::undefined("No aggregated item, sequence was empty.") : items.front();
       }},
      {"min", IOL_FILTER(min) {
         ValueList items = sorted(iterate(s), false, a.get_bool(0, "case_sensitive", false), a.get_string(1, "attribute"));
         return items.empty() ? Value::undefined("No aggregated item, sequence was empty.") : items.front();
       }},
      {"reject", IOL_FILTER(reject) { return select_or_reject(s, a, false, false); }},
      {"rejectattr", IOL_FILTER(rejectattr) { return select_or_reject(s, a, false, true); }},
      {"select", IOL_FILTER(select) { return select_or_reject(s, a, true, false); }},
      {"selectattr", IOL_FILTER(selectattr) { return select_or_reject(s, a, true, true); }},
      {"replace", IOL_FILTER(replace) {
         std::string out = py::replace(to_str(s), to_str(a.required(0, "old")), to_str(a.required(1, "new")), a.get_int(2, "count", -1));
         check_size(out.size());
         return Value(std::move(out));
       }},
      {"reverse", IOL_FILTER(reverse) {
         (void)a;
         if (s.is_string()) return Value(py::slice(s.as_string(), std::nullopt, std::nullopt, -1));
         ValueList items = iterate(s);
         std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"round", IOL_FILTER(round) {
         return round_value(s, a.get_int(0, "precision", 0), a.get_string(1, "method").value_or("common"));
       }},
      {"safe", IOL_FILTER(safe) { (void)a; return s; }},
      {"sort", IOL_FILTER(sort) {
         return Value::list(sorted(iterate(s), a.get_bool(0, "reverse", false), a.get_bool(1, "case_sensitive", false),
                                   a.get_string(2, "attribute")));
       }},
      {"string", IOL_FILTER(string) { (void)a; return Value(to_str(s)); }},
      {"sum", IOL_FILTER(sum) {
         std::optional<std::string> attribute = a.get_string(0, "attribute");
         Value total = a.get(1, "start", Value(0));
         for (const auto& item : iterate(s)) total = binary_op("+", total, attribute ? resolve_path(item, *attribute) : item);
         return total;
       }},
      {"tojson", IOL_FILTER(tojson) {
         Value indent = a.get(99, "indent", Value::none());
         if (a.get_bool(99, "ensure_ascii", false)) throw RuntimeError("NotImplementedError: tojson(ensure_ascii=true) is not supported by iol's Jinja subset");
         if (!a.get(99, "separators", Value::none()).is_none()) throw RuntimeError("NotImplementedError: tojson(separators=...) is not supported by iol's Jinja subset");
         const int width = indent.is_none() || indent.is_undefined() ? -1 : static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
         std::string out = to_json(s, width, a.get_bool(99, "sort_keys", false));
         check_size(out.size());
         return Value(std::move(out));
       }},
      {"trim", IOL_FILTER(trim) { return Value(py::strip(to_str(s), a.get_string(0, "chars"), true, true)); }},
      {"unique", IOL_FILTER(unique) {
         const bool case_sensitive = a.get_bool(0, "case_sensitive", false);
         std::optional<std::string> attribute = a.get_string(1, "attribute");
         ValueList out, seen;
         for (const auto& item : iterate(s)) {
           Value key = item_key(item, attribute, case_sensitive);
           if (std::none_of(seen.begin(), seen.end(), [&](const Value& k) { return equals(k, key); })) {
             seen.push_back(key);
             out.push_back(item);
           }
         }
         return Value::list(std::move(out));
       }},
      {"wordcount", IOL_FILTER(wordcount) {
         (void)a;
         int64_t words = 0;
         bool in_word = false;
         for (char32_t c : py::decode(to_str(s))) {
           const bool w = py::is_word(c);
           words += w && !in_word;
           in_word = w;
         }
         return Value(words);
       }},
      {"batch", IOL_FILTER(batch) {
         const int64_t size = a.get_int(0, "linecount", 1);
         if (size <= 0) throw RuntimeError("ValueError: batch size must be positive");
         Value fill = a.get(1, "fill_with", Value::none());
         ValueList out, current;
         for (const auto& item : iterate(s)) {
           current.push_back(item);
           if (static_cast<int64_t>(current.size()) == size) out.push_back(Value::list(std::exchange(current, {})));
         }
         if (!current.empty()) {
           if (!fill.is_none()) while (static_cast<int64_t>(current.size()) < size) current.push_back(fill);
           out.push_back(Value::list(std::move(current)));
         }
         return Value::list(std::move(out));
       }},
  };
  return table;
}
#undef IOL_FILTER

const std::map<std::string, std::string>& filter_aliases() {
  static const std::map<std::string, std::string> aliases = {{"d", "default"}, {"e", "escape"}};
  return aliases;
}

std::string canonical_filter(const std::string& name) {
  auto it = filter_aliases().find(name);
  return it == filter_aliases().end() ? name : it->second;
}

// --- tests ---------------------------------------------------------------------------------

bool is_lower_or_upper(const Value& v, bool lower) {
  if (!v.is_string()) return false;
  bool any = false;
  for (char32_t c : py::decode(v.as_string())) {
    if (lower ? py::is_cased_upper(c) : py::is_cased_lower(c)) return false;
    any |= lower ? py::is_cased_lower(c) : py::is_cased_upper(c);
  }
  return any;
}

const std::map<std::string, std::string>& comparison_tests() {
  static const std::map<std::string, std::string> table = {
      {"eq", "=="}, {"equalto", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="}, {"lt", "<"}, {"lessthan", "<"},
      {"<", "<"}, {"le", "<="}, {"<=", "<="}, {"gt", ">"}, {"greaterthan", ">"}, {">", ">"}, {"ge", ">="}, {">=", ">="}};
  return table;
}

const std::set<std::string>& plain_tests() {
  static const std::set<std::string> names = {"defined", "undefined", "none",   "boolean", "false",   "true",
                                              "integer", "float",     "number", "string",  "mapping", "iterable",
                                              "sequence", "callable", "odd",    "even",    "divisibleby", "in",
                                              "sameas",  "lower",     "upper",  "filter",  "test",    "escaped"};
  return names;
}

}  // namespace

// --- work budget -------------------------------------------------------------------------------

namespace {
thread_local int64_t work_left = kMaxRenderWork;  // one render runs on one thread
}

void reset_work_budget() { work_left = kMaxRenderWork; }

void charge_work(int64_t units) {
  work_left -= units;
  if (work_left < 0) throw RuntimeError("TimeoutError: the template did too much work (a loop that does not end?)");
}

// --- access, iteration, calls ------------------------------------------------------------------

Value get_attribute(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: undefined_error(object);
    case Value::Kind::kDict:
      if (kDictMethods.count(name)) return bound(object, name, dict_method);
      if (kDictMutators.count(name)) return unsafe(object, name);
      if (const Value* v = object.as_dict().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    case Value::Kind::kNamespace:
      if (const Value* v = object.as_dict().find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    case Value::Kind::kString:
      if (kStringMethods.count(name))
        return Value::function("str." + name, [s = object.as_string(), name](std::vector<Value>& args, KwArgs& kwargs) {
          Args a(args, kwargs, name);
          return string_method(s, name, a);
        });
      break;
    case Value::Kind::kList: case Value::Kind::kTuple:
      if (kListMethods.count(name)) return bound(object, name, list_method);
      if (kListMutators.count(name)) return unsafe(object, name);
      break;
    default: break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no attribute '" + name + "'");
}

Value get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: undefined_error(object);
    case Value::Kind::kDict: case Value::Kind::kNamespace:
      if (const Value* v = object.as_dict().find(key)) return *v;
      if (key.is_string()) return get_attribute(object, key.as_string());
      return Value::undefined("'dict object' has no attribute " + to_repr(key));
    case Value::Kind::kList: case Value::Kind::kTuple: {
      if (key.is_int() || key.is_bool()) {
        const auto& items = object.as_list();
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
        return Value::undefined(fmt::format("'{} object' has no element {}", object.type_name(), key.as_int()));
      }
      if (key.is_string()) return get_attribute(object, key.as_string());
      break;
    }
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        if (auto c = py::at(object.as_string(), key.as_int())) return Value(*c);
        return Value::undefined(fmt::format("'str object' has no element {}", key.as_int()));
      }
      if (key.is_string()) return get_attribute(object, key.as_string());
      break;
    default: break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no element " + to_repr(key));
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  auto bound_of = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) type_error(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  const std::optional<int64_t> b = bound_of(start, "start"), e = bound_of(stop, "stop"), s = bound_of(step, "step");
  if (object.is_undefined()) undefined_error(object);
  if (object.is_string()) return Value(py::slice(object.as_string(), b, e, s.value_or(1)));
  if (object.is_sequence()) {
    const auto& items = object.as_list();
    ValueList out;
    for (int64_t i : py::slice_indices(static_cast<int64_t>(items.size()), b, e, s.value_or(1))) out.push_back(items[static_cast<size_t>(i)]);
    return object.kind() == Value::Kind::kTuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  type_error("'" + object.type_name() + "' object is not subscriptable");
}

ValueList iterate(const Value& v) {
  charge_work(1 + (v.is_sequence() ? static_cast<int64_t>(v.as_list().size()) : 0));
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: case Value::Kind::kTuple: return v.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      for (const auto& [k, e] : v.as_dict().items) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (char32_t c : py::decode(v.as_string())) chars.emplace_back(py::encode(std::u32string(1, c)));
      return chars;
    }
    default: type_error("'" + v.type_name() + "' object is not iterable");
  }
}

Value call_value(const Value& callee, std::vector<Value>& args, KwArgs& kwargs) {
  if (callee.is_function()) return callee.as_function()(args, kwargs);
  if (callee.is_undefined()) undefined_error(callee);
  type_error("'" + callee.type_name() + "' object is not callable");
}

bool compare_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  const int c = compare(a, b);
  return op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) type_error("'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList: case Value::Kind::kTuple:
      return std::any_of(container.as_list().begin(), container.as_list().end(), [&](const Value& v) { return equals(v, item); });
    case Value::Kind::kDict: case Value::Kind::kNamespace: return container.as_dict().find(item) != nullptr;
    default: type_error("argument of type '" + container.type_name() + "' is not iterable");
  }
}

// --- operators ---------------------------------------------------------------------------------

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string out = to_str(a) + to_str(b);
    check_size(out.size());
    return Value(std::move(out));
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  const bool numbers = a.is_number() && b.is_number();
  auto unsupported = [&]() -> Value {
    type_error(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name()));
  };
  auto overflow = []() -> Value { throw RuntimeError("OverflowError: integer result does not fit in 64 bits"); };
  if (op == "+") {
    if (ints) { int64_t r; return __builtin_add_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r); }
    if (numbers) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_sequence() && a.kind() == b.kind()) {
      ValueList items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return a.kind() == Value::Kind::kTuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    if (a.is_string() && !b.is_string()) type_error("can only concatenate str (not \"" + b.type_name() + "\") to str");
    return unsupported();
  }
  if (op == "-") {
    if (ints) { int64_t r; return __builtin_sub_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r); }
    if (numbers) return Value(a.as_double() - b.as_double());
    return unsupported();
  }
  if (op == "*") {
    if (ints) { int64_t r; return __builtin_mul_overflow(a.as_int(), b.as_int(), &r) ? overflow() : Value(r); }
    if (numbers) return Value(a.as_double() * b.as_double());
    const Value& seq = a.is_int() || a.is_bool() ? b : a;
    const Value& times = a.is_int() || a.is_bool() ? a : b;
    if (!(times.is_int() || times.is_bool())) return unsupported();
    const int64_t n = std::max<int64_t>(0, times.as_int());
    if (seq.is_string()) {
      check_size(seq.as_string().size() * static_cast<size_t>(std::min<int64_t>(n, int64_t{1} << 40)));
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.as_string();
      return Value(std::move(out));
    }
    if (seq.is_sequence()) {
      check_size(seq.as_list().size() * static_cast<size_t>(std::min<int64_t>(n, int64_t{1} << 40)));
      ValueList items;
      for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.as_list().begin(), seq.as_list().end());
      return seq.kind() == Value::Kind::kTuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    return unsupported();
  }
  if (!numbers) {
    if (op == "%" && a.is_string()) throw RuntimeError("NotImplementedError: '%' string formatting is not supported by iol's Jinja subset");
    return unsupported();
  }
  if (op == "/") {
    if (b.as_double() == 0.0) throw RuntimeError("ZeroDivisionError: division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw RuntimeError("ZeroDivisionError: integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) return op == "%" ? Value(int64_t{0}) : overflow();
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) { --q; r += y; }  // Python floors
      return Value(op == "//" ? q : r);
    }
    const double x = a.as_double(), y = b.as_double();
    if (y == 0.0) throw RuntimeError("ZeroDivisionError: float division by zero");
    // CPython's float_divmod: the remainder takes the divisor's sign, the quotient is floored.
    double mod = std::fmod(x, y), div = (x - mod) / y;
    if (mod != 0.0) {
      if ((y < 0) != (mod < 0)) { mod += y; div -= 1.0; }
    } else {
      mod = std::copysign(0.0, y);
    }
    double floordiv = std::copysign(0.0, x / y);
    if (div != 0.0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    }
    return Value(op == "//" ? floordiv : mod);
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), exp = b.as_int(), result = 1;
      while (exp > 0) {
        if (exp & 1)
          if (__builtin_mul_overflow(result, base, &result)) return overflow();
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return overflow();
      }
      return Value(result);
    }
    if (a.as_double() == 0.0 && b.as_double() < 0) throw RuntimeError("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  return unsupported();
}

// --- filters and tests -------------------------------------------------------------------------

bool is_filter(const std::string& name) { return filters().count(canonical_filter(name)) > 0; }

bool is_test(const std::string& name) { return plain_tests().count(name) || comparison_tests().count(name); }

Value call_filter(const std::string& name, const Value& subject, std::vector<Value> args, KwArgs kwargs) {
  auto it = filters().find(canonical_filter(name));
  if (it == filters().end()) throw RuntimeError("TemplateAssertionError: no filter named '" + name + "'");
  Args a(args, kwargs, name);
  return it->second(subject, a);
}

bool call_test(const std::string& name, const Value& v, std::vector<Value> args) {
  if (auto it = comparison_tests().find(name); it != comparison_tests().end()) {
    if (args.empty()) type_error("test '" + name + "' needs a value to compare with");
    return compare_op(it->second, v, args[0]);
  }
  auto arg = [&](const char* what) -> const Value& {
    if (args.empty()) type_error(std::string("test '") + name + "' needs " + what);
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict();
  if (name == "sequence") return v.is_string() || v.is_sequence() || v.is_dict();
  if (name == "callable") return v.is_function();
  if (name == "odd" || name == "even") {
    if (!v.is_int() && !v.is_bool()) type_error("test '" + name + "' needs an integer, not " + v.type_name());
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    Value r = binary_op("%", v, arg("a divisor"));
    return !r.truthy();
  }
  if (name == "in") return contains(arg("a container"), v);
  if (name == "sameas") {  // Python `is`: identity for None/bools; equal values of one kind otherwise
    const Value& other = arg("a value");
    return v.kind() == other.kind() && equals(v, other);
  }
  if (name == "lower") return is_lower_or_upper(v, true);
  if (name == "upper") return is_lower_or_upper(v, false);
  if (name == "filter") return v.is_string() && is_filter(v.as_string());
  if (name == "test") return v.is_string() && is_test(v.as_string());
  if (name == "escaped") return false;
  throw RuntimeError("TemplateAssertionError: no test named '" + name + "'");
}

namespace {
// dict(...) and namespace(...): positional mappings, then keyword arguments.
ValueDict merge_mappings(const char* function, const std::vector<Value>& args, const KwArgs& kwargs) {
  ValueDict d;
  for (const auto& a : args) {
    if (!a.is_dict()) type_error(std::string(function) + "() positional argument must be a dict");
    for (const auto& [k, v] : a.as_dict().items) d.set(k, v);
  }
  for (const auto& [k, v] : kwargs) d.set(Value(k), v);
  return d;
}
}  // namespace

ValueDict make_globals() {
  ValueDict g;
  g.set(Value("range"), Value::function("range", [](std::vector<Value>& args, KwArgs&) {
          for (const auto& a : args)
            if (!a.is_int() && !a.is_bool()) type_error("range() arguments must be integers, not " + a.type_name());
          if (args.empty() || args.size() > 3) type_error("range expected 1 to 3 arguments");
          int64_t start = args.size() > 1 ? args[0].as_int() : 0;
          int64_t stop = args.size() > 1 ? args[1].as_int() : args[0].as_int();
          int64_t step = args.size() > 2 ? args[2].as_int() : 1;
          if (step == 0) throw RuntimeError("ValueError: range() arg 3 must not be zero");
          ValueList items;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            charge_work(1);
            if (items.size() >= 100000) throw RuntimeError("OverflowError: range too big, maximum size for range is 100000");
            items.emplace_back(i);
          }
          return Value::list(std::move(items));
        }));
  g.set(Value("namespace"), Value::function("namespace", [](std::vector<Value>& args, KwArgs& kwargs) {
          return Value::make_namespace(merge_mappings("namespace", args, kwargs));
        }));
  g.set(Value("dict"), Value::function("dict", [](std::vector<Value>& args, KwArgs& kwargs) {
          return Value::dict(merge_mappings("dict", args, kwargs));
        }));
  g.set(Value("raise_exception"), Value::function("raise_exception", [](std::vector<Value>& args, KwArgs&) -> Value {
          throw TemplateException(args.empty() ? std::string("raise_exception() called") : to_str(args[0]));
        }));
  g.set(Value("strftime_now"), Value::function("strftime_now", [](std::vector<Value>& args, KwArgs&) {
          const std::string format = args.empty() ? std::string("%Y-%m-%d") : require_string(args[0], "strftime_now() format");
          std::time_t now = std::time(nullptr);
          std::tm local{};
          localtime_r(&now, &local);
          char buf[512];
          size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
          return Value(std::string(buf, n));
        }));
  return g;
}

}  // namespace iol::tokenizer::jinja
