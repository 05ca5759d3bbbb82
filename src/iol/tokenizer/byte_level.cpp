#include "iol/tokenizer/byte_level.hpp"

#include <map>
#include <vector>

namespace iol::tokenizer {

namespace {
struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::map<char32_t, uint8_t> to_byte;
  ByteTables() {
    // Printable bytes map to themselves; the others to 256 + n in order (GPT-2's bytes_to_unicode).
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      to_unicode[static_cast<size_t>(b)] = utf8_encode(cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteTables& tables() {
  static const ByteTables instance;
  return instance;
}
}  // namespace

const std::string& byte_to_unicode(uint8_t byte) { return tables().to_unicode[byte]; }

std::optional<uint8_t> unicode_to_byte(char32_t code_point) {
  auto it = tables().to_byte.find(code_point);
  if (it == tables().to_byte.end()) return std::nullopt;
  return it->second;
}

std::string utf8_encode(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

std::optional<char32_t> utf8_decode_one(const std::string& text, size_t& pos) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || pos + static_cast<size_t>(length) > text.size()) return std::nullopt;
  char32_t cp = length == 1 ? lead : length == 2 ? (lead & 0x1F) : length == 3 ? (lead & 0x0F) : (lead & 0x07);
  for (int i = 1; i < length; ++i) {
    unsigned char next = byte(pos + static_cast<size_t>(i));
    if ((next & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (next & 0x3F);
  }
  pos += static_cast<size_t>(length);
  return cp;
}

size_t utf8_complete_prefix(const std::string& bytes) {
  // Only the last three bytes can start an unfinished character.
  size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t needed = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    return needed > back ? n - back : n;
  }
  return n;
}

}  // namespace iol::tokenizer
