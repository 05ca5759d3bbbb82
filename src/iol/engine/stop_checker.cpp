#include "iol/engine/stop_checker.hpp"

#include <algorithm>

namespace iol::engine {

StopChecker::StopChecker(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {
  for (const auto& s : stop_strings_) longest_ = std::max(longest_, s.size());
}

std::optional<size_t> StopChecker::find_stop(const std::string& text, size_t new_bytes) const {
  if (stop_strings_.empty()) return std::nullopt;
  // A new match must overlap the new bytes: search from longest - 1 bytes before them.
  size_t from = text.size() - std::min(text.size(), new_bytes + longest_ - 1);
  std::optional<size_t> earliest;
  for (const auto& stop : stop_strings_) {
    size_t at = text.find(stop, from);
    if (at != std::string::npos && (!earliest || at < *earliest)) earliest = at;
  }
  return earliest;
}

size_t StopChecker::streamable_prefix(const std::string& text) const {
  if (longest_ == 0) return text.size();
  size_t cut = text.size() - std::min(text.size(), longest_ - 1);
  // Never split a UTF-8 character.
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

}  // namespace iol::engine
