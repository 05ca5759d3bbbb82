// libFuzzer target for the input parsers — safetensors headers, config.json, tokenizer.json,
// Jinja chat templates (parsed and rendered on a conversation with tools), OpenAI request bodies — and for the tokenizer's
// encoder on arbitrary bytes (invalid UTF-8 included). Any input must give a result or an
// iol::Error — never a crash, hang or other exception.
// The parsers themselves are in parser_targets.hpp. A crash found here becomes a regression test:
// drop the input's first (selector) byte and put the rest in
// tests/fixtures/fuzz_regressions/<folder of the target>/ (tests/unit/fuzz_regression_test.cpp).
#include <cstddef>
#include <cstdint>
#include <span>

#include "parser_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the parser, so one run covers all of them (its bit 2 turns on special
  // tokens when encoding).
  using iol::fuzz::ParserTarget;
  constexpr ParserTarget kBySelector[] = {ParserTarget::kSafetensors, ParserTarget::kModelConfig,
                                          ParserTarget::kTokenizerJson, ParserTarget::kEncode,
                                          ParserTarget::kChatTemplate, ParserTarget::kOpenAiRequest};
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  try {
    iol::fuzz::run_parser_target(kBySelector[data[0] % 6], rest, (data[0] & 4) != 0);
  } catch (const iol::Error&) {
  }
  return 0;
}
