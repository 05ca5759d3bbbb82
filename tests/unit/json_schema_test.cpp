#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iol/bench/json_schema.hpp"

namespace iol::bench {

TEST(JsonSchema, ReportsTheFirstViolationWithItsPath) {
  auto schema = nlohmann::json::parse(R"({
    "type": "object", "required": ["a", "b"], "additionalProperties": false,
    "$defs": {"pos": {"type": "number", "minimum": 0, "maximum": 10}},
    "properties": {"a": {"$ref": "#/$defs/pos"}, "b": {"type": "array", "items": {"enum": ["x", "y"]}},
                   "c": {"type": ["string", "null"]}, "v": {"const": 1}}})");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 1, "b": ["x"], "c": null, "v": 1})")), "");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 1})")), "/: missing required key 'b'");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": -1, "b": []})")), "/a: -1 is below the minimum 0");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 11, "b": []})")), "/a: 11 is above the maximum 10");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 1, "b": ["z"]})")), "/b/0: \"z\" is not one of [\"x\",\"y\"]");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 1, "b": [], "d": 0})")), "/: unexpected key 'd'");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": "1", "b": []})")), "/a: expected type \"number\", got \"1\"");
  EXPECT_EQ(validate_json_schema(schema, nlohmann::json::parse(R"({"a": 1, "b": [], "v": 2})")), "/v: expected 1, got 2");
}

}  // namespace iol::bench
