#include "iol/bench/json_schema.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::bench {

using nlohmann::json;

namespace {

bool has_type(const json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  fail("json schema: unknown type '{}'", type);
}

std::string check(const json& root, const json& schema, const json& value, const std::string& pointer) {
  const std::string where = pointer.empty() ? "/" : pointer;
  if (auto ref = schema.find("$ref"); ref != schema.end()) {
    std::string target = ref->get<std::string>();
    if (target.rfind("#/", 0) != 0) fail("json schema: only local $ref are supported (got '{}')", target);
    return check(root, root.at(json::json_pointer(target.substr(1))), value, pointer);
  }
  if (auto type = schema.find("type"); type != schema.end()) {
    bool ok = false;
    if (type->is_string()) ok = has_type(value, type->get<std::string>());
    else for (const auto& t : *type) ok |= has_type(value, t.get<std::string>());
    if (!ok) return fmt::format("{}: expected type {}, got {}", where, type->dump(), value.dump().substr(0, 60));
  }
  if (auto options = schema.find("enum"); options != schema.end()) {
    bool ok = false;
    for (const auto& option : *options) ok |= option == value;
    if (!ok) return fmt::format("{}: {} is not one of {}", where, value.dump(), options->dump());
  }
  if (auto expected = schema.find("const"); expected != schema.end() && *expected != value)
    return fmt::format("{}: expected {}, got {}", where, expected->dump(), value.dump());
  if (auto minimum = schema.find("minimum"); minimum != schema.end() && value.is_number() &&
                                             value.get<double>() < minimum->get<double>())
    return fmt::format("{}: {} is below the minimum {}", where, value.dump(), minimum->dump());
  if (auto maximum = schema.find("maximum"); maximum != schema.end() && value.is_number() &&
                                             value.get<double>() > maximum->get<double>())
    return fmt::format("{}: {} is above the maximum {}", where, value.dump(), maximum->dump());
  if (value.is_object()) {
    if (auto required = schema.find("required"); required != schema.end())
      for (const auto& key : *required)
        if (!value.contains(key.get<std::string>())) return fmt::format("{}: missing required key '{}'", where, key.get<std::string>());
    const json* properties = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (const auto& [key, item] : value.items()) {
      if (properties && properties->contains(key)) {
        if (auto error = check(root, (*properties)[key], item, pointer + "/" + key); !error.empty()) return error;
      } else if (schema.value("additionalProperties", true) == false) {
        return fmt::format("{}: unexpected key '{}'", where, key);
      }
    }
  }
  if (value.is_array()) {
    if (auto items = schema.find("items"); items != schema.end())
      for (size_t i = 0; i < value.size(); ++i)
        if (auto error = check(root, *items, value[i], pointer + "/" + std::to_string(i)); !error.empty()) return error;
  }
  return {};
}

}  // namespace

std::string validate_json_schema(const json& schema, const json& value) { return check(schema, schema, value, ""); }

}  // namespace iol::bench
