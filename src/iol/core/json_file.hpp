// Reading a JSON file with a one-line error naming the file (cannot open / malformed, and where).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace iol {

nlohmann::json read_json_file(const std::string& path);
// Keeps object keys in file order: for data a template renders back (chat messages, tool schemas).
nlohmann::ordered_json read_ordered_json_file(const std::string& path);
// The whole file as bytes.
std::string read_text_file(const std::string& path);

}  // namespace iol
