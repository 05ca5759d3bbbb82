#include "iol/bench/prometheus_text.hpp"

#include <cstdlib>
#include <string>

namespace iol::bench {

std::optional<double> prometheus_value(std::string_view text, std::string_view name) {
  std::optional<double> sum;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#' || line.substr(0, name.size()) != name) continue;
    std::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;
    if (rest[0] == '{') {
      const size_t close = rest.rfind('}');
      if (close == std::string_view::npos) continue;
      rest = rest.substr(close + 1);
    }
    const std::string value(rest);
    char* parsed_end = nullptr;
    const double v = std::strtod(value.c_str(), &parsed_end);
    if (parsed_end == value.c_str()) continue;
    sum = sum.value_or(0.0) + v;
  }
  return sum;
}

}  // namespace iol::bench
