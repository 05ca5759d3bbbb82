#include "iol/cli/numeric_flags.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace iol::cli {

namespace {
std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  const size_t end = text.find_last_not_of(" \t");
  return begin == std::string::npos ? std::string() : text.substr(begin, end - begin + 1);
}
}  // namespace

CLI::Validator int_range(int64_t min, int64_t max) {
  const std::string range = fmt::format("[{}, {}]", min, max);
  return CLI::Validator(
      [min, max, range](std::string& input) -> std::string {
        const std::string text = trimmed(input);
        int64_t value = 0;
        const char* begin = text.data() + (text.size() > 1 && text[0] == '+' ? 1 : 0);
        const auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
        if (error == std::errc::result_out_of_range) return fmt::format("'{}' is outside {}", input, range);
        if (text.empty() || error != std::errc() || end != text.data() + text.size())
          return fmt::format("'{}' is not an integer (expected one in {})", input, range);
        if (value < min || value > max) return fmt::format("{} is outside {}", value, range);
        input = std::to_string(value);
        return {};
      },
      "INT in " + range, "int_range");
}

CLI::Validator uint_range(uint64_t max) {
  const std::string range = fmt::format("[0, {}]", max);
  return CLI::Validator(
      [max, range](std::string& input) -> std::string {
        const std::string text = trimmed(input);
        uint64_t value = 0;
        // from_chars for unsigned rejects a leading '-' (strtoull would wrap "-1" to 2^64 - 1).
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (error == std::errc::result_out_of_range) return fmt::format("'{}' is outside {}", input, range);
        if (text.empty() || error != std::errc() || end != text.data() + text.size())
          return fmt::format("'{}' is not a non-negative integer (expected one in {})", input, range);
        if (value > max) return fmt::format("{} is outside {}", value, range);
        input = std::to_string(value);
        return {};
      },
      "UINT in " + range, "uint_range");
}

CLI::Validator real_range(double min, double max, bool min_exclusive) {
  const std::string range = fmt::format("{}{:g}, {:g}]", min_exclusive ? "(" : "[", min, max);
  return CLI::Validator(
      [min, max, min_exclusive, range](std::string& input) -> std::string {
        const std::string text = trimmed(input);
        char* end = nullptr;
        const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size())
          return fmt::format("'{}' is not a number (expected one in {})", input, range);
        if (!std::isfinite(value)) return fmt::format("'{}' is not finite (expected a number in {})", input, range);
        if (value < min || value > max || (min_exclusive && value == min))
          return fmt::format("{} is outside {}", input, range);
        return {};
      },
      "NUMBER in " + range, "real_range");
}

}  // namespace iol::cli
