// A small JSON Schema validator for the subset our schemas use: type, enum, const, required,
// properties, additionalProperties (boolean), items, minimum, and $ref into #/$defs.
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace iol::bench {

// Returns "" when `value` validates, else the first violation with its JSON pointer.
std::string validate_json_schema(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace iol::bench
