// Reading a JSON file with a one-line error naming the file (cannot open / malformed).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace iol {

nlohmann::json read_json_file(const std::string& path);

}  // namespace iol
