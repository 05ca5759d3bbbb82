// GPT-2 byte-level alphabet: each byte maps to a printable Unicode code point so BPE tokens are
// valid strings (used by Llama 3, Qwen and GPT-style tokenizer.json files).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace iol::tokenizer {

// UTF-8 of the code point standing for `byte`.
const std::string& byte_to_unicode(uint8_t byte);
// The byte a code point stands for, if it is one of the 256.
std::optional<uint8_t> unicode_to_byte(char32_t code_point);

std::string utf8_encode(char32_t code_point);
// Decodes one code point at `pos`, advancing it; nullopt on invalid UTF-8.
std::optional<char32_t> utf8_decode_one(const std::string& text, size_t& pos);
// Length of the longest prefix of `bytes` that ends on a complete UTF-8 character boundary
// (an invalid byte counts as complete: the decoder emits U+FFFD for it).
size_t utf8_complete_prefix(const std::string& bytes);

}  // namespace iol::tokenizer
