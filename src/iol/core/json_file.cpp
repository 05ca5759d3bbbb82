#include "iol/core/json_file.hpp"

#include <fstream>
#include <sstream>

#include "iol/core/error.hpp"

namespace iol {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json value = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) fail("{}: malformed JSON", path);
  return value;
}

}  // namespace iol
