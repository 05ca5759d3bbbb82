// Reading JSON (and other text) input with one-line errors naming the file: only regular files
// are opened (a FIFO or device would block or never end), sizes are capped, and nesting deeper
// than kMaxJsonDepth is refused before parsing (deep values overflow the stack in recursive
// copies and conversions downstream).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace iol {

inline constexpr int kMaxJsonDepth = 256;
inline constexpr int64_t kMaxTextFileBytes = int64_t{4} << 30;

nlohmann::json read_json_file(const std::string& path);
// Keeps object keys in file order: for data a template renders back (chat messages, tool schemas).
nlohmann::ordered_json read_ordered_json_file(const std::string& path);
// The whole file as bytes; throws iol::Error unless `path` is a regular file of at most max_bytes.
std::string read_text_file(const std::string& path, int64_t max_bytes = kMaxTextFileBytes);

// nlohmann's message without its "[json.exception.type_error.302] " prefix (line, column and
// what was expected stay): error lines read as ours, not as a library's exception.
std::string json_error_text(const nlohmann::json::exception& error);

// Throws iol::Error "SOURCE: JSON nested deeper than N levels" when brackets nest too deep.
void check_json_depth(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);
// Parses `text` (depth-checked); errors name `source` ("FILE", "FILE:LINE", "--flag").
nlohmann::json parse_json(std::string_view text, const std::string& source);
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source);
// As parse_json, but returns a discarded value instead of throwing on malformed JSON (depth still throws).
nlohmann::json parse_json_or_discarded(std::string_view text, const std::string& source);

}  // namespace iol
