// Parsing of comma-separated token-id lists given on the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace iol::cli {

// "1,2, 3" → {1, 2, 3}; throws UsageError naming `flag` on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

}  // namespace iol::cli
