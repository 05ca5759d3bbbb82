#include "iol/cli/parse_ids.hpp"

#include <charconv>

#include <fmt/format.h>

#include "iol/core/error.hpp"

namespace iol::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    size_t first = item.find_first_not_of(' '), last = item.find_last_not_of(' ');
    item = first == std::string::npos ? "" : item.substr(first, last - first + 1);
    int32_t value = 0;
    auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || error != std::errc() || end != item.data() + item.size() || value < 0)
      throw UsageError(fmt::format("{}: '{}' is not a non-negative token id (expected e.g. 1,2,3)", flag, item));
    ids.push_back(value);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace iol::cli
