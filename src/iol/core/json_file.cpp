#include "iol/core/json_file.hpp"

#include <fstream>
#include <sstream>

#include "iol/core/error.hpp"

namespace iol {

namespace {
template <typename Json>
Json parse_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", path, e.what());  // nlohmann's message gives line and column
  }
}
}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json read_json_file(const std::string& path) { return parse_json_file<nlohmann::json>(path); }
nlohmann::ordered_json read_ordered_json_file(const std::string& path) { return parse_json_file<nlohmann::ordered_json>(path); }

}  // namespace iol
