// Python's str methods over UTF-8 strings, as chat templates call them (strip, split, title,
// indexing by code point...). Python counts and slices code points, not bytes, and its notion of
// whitespace and case is Unicode's: character classes come from utf8proc, never hand-made tables.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace iol::tokenizer::jinja {

// Thrown by the runtime (values, filters, methods); the renderer adds the template line.
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace py {

std::u32string decode(std::string_view utf8);  // invalid bytes decode as U+FFFD
std::string encode(std::u32string_view code_points);
void append_utf8(std::string& out, char32_t c);
size_t length(std::string_view utf8);  // in code points

bool is_space(char32_t c);  // str.isspace()
bool is_printable(char32_t c);  // str.isprintable(), for repr()
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
bool is_alnum(char32_t c);
bool is_cased_lower(char32_t c);
bool is_cased_upper(char32_t c);
bool is_word(char32_t c);  // regex \w

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize(): first upper (title), rest lower
std::string title(std::string_view s);       // str.title()

// strip/lstrip/rstrip with chars = nullopt strip whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
int64_t find(std::string_view s, std::string_view needle);  // in code points; -1 when absent
int64_t count(std::string_view s, std::string_view needle);
std::string repr(std::string_view s);  // 'quoted' as Python's repr()

// s[index] and s[start:stop:step] with Python's clamping; nullopt = index out of range.
std::optional<std::string> at(std::string_view s, int64_t index);
std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);

// Python's slice index arithmetic for a sequence of `length` (shared by lists and strings).
std::vector<int64_t> slice_indices(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                                   int64_t step);

}  // namespace py
}  // namespace iol::tokenizer::jinja
