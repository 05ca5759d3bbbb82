// The input parsers the fuzz target drives — safetensors headers, config.json, tokenizer.json,
// the tokenizer's encoder (with an incremental-detokenizer round trip) and Jinja chat templates —
// one entry point per kind of input. Shared by tests/fuzz/parsers_fuzz.cpp and by the unit test
// that replays tests/fixtures/fuzz_regressions/<folder>/* (tests/unit/fuzz_regression_test.cpp),
// so a crash found by fuzzing stays a regression test of exactly the code it crashed.
// Contract: run_parser_target returns or throws iol::Error; anything else is a bug.
#pragma once
#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/safetensors.hpp"
#include "iol/server/openai_request.hpp"
#include "iol/tokenizer/chat_template.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"
#include "iol/tokenizer/tokenizer.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::fuzz {

enum class ParserTarget { kSafetensors, kModelConfig, kTokenizerJson, kEncode, kChatTemplate, kOpenAiRequest };

inline constexpr std::array<ParserTarget, 6> kParserTargets = {ParserTarget::kSafetensors, ParserTarget::kModelConfig,
                                                               ParserTarget::kTokenizerJson, ParserTarget::kEncode,
                                                               ParserTarget::kChatTemplate, ParserTarget::kOpenAiRequest};

// Folder of tests/fixtures/fuzz_regressions/ holding regression inputs for the target.
inline const char* regression_folder(ParserTarget target) {
  switch (target) {
    case ParserTarget::kSafetensors: return "safetensors";
    case ParserTarget::kModelConfig: return "config";
    case ParserTarget::kTokenizerJson: return "tokenizer_json";
    case ParserTarget::kEncode: return "encode";
    case ParserTarget::kChatTemplate: return "chat_template";
    case ParserTarget::kOpenAiRequest: return "openai_request";
  }
  return "?";
}

// Byte-level (GPT-2/Llama 3 style regex, ignore_merges) and SentencePiece-style (NFC, Metaspace,
// byte fallback) tokenizers with a few merges, built once in memory.
inline const std::vector<std::unique_ptr<tokenizer::Tokenizer>>& fuzz_tokenizers() {
  static const auto instances = [] {
    std::vector<std::unique_ptr<tokenizer::Tokenizer>> list;
    auto [byte_level, config] = tokenizer::make_byte_level_tokenizer(300, 256, 257);
    byte_level["model"]["vocab"]["ab"] = 258;
    byte_level["model"]["vocab"]["abab"] = 259;
    byte_level["model"]["merges"] = {"a b", "ab ab"};
    byte_level["model"]["ignore_merges"] = true;
    byte_level["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
    list.push_back(tokenizer::Tokenizer::from_json(byte_level, config, "fuzz/byte-level"));
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = b;
    vocab["\xE2\x96\x81"] = 256;
    vocab["a"] = 257;
    vocab["\xE2\x96\x81" "a"] = 258;
    vocab["<unk>"] = 259;
    nlohmann::json sentencepiece = {
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", true}}},
        {"decoder", {{"type", "Sequence"}, {"decoders", nlohmann::json::array()}}},
        {"added_tokens", {{{"id", 260}, {"content", "<s>"}, {"special", true}, {"lstrip", true}, {"rstrip", true}}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xE2\x96\x81" " a"}}, {"byte_fallback", true},
                   {"fuse_unk", true}, {"unk_token", "<unk>"}}}};
    list.push_back(tokenizer::Tokenizer::from_json(sentencepiece, nlohmann::json::object(), "fuzz/sentencepiece"));
    return list;
  }();
  return instances;
}

// Feeds `input` to the target's parser. Throws iol::Error when the parser rejects the input;
// throws std::logic_error when an invariant breaks (streamed text differs from the full decode).
inline void run_parser_target(ParserTarget target, std::span<const std::byte> input, bool add_special_tokens) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  switch (target) {
    case ParserTarget::kSafetensors:
      (void)model::parse_safetensors(input, "fuzz.safetensors");
      return;
    case ParserTarget::kModelConfig:
      (void)model::ModelConfig::from_json_text(text, "fuzz/config.json");
      return;
    case ParserTarget::kTokenizerJson: {
      auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (!json.is_discarded()) (void)tokenizer::Vocabulary::from_json(json, "fuzz/tokenizer.json");
      return;
    }
    case ParserTarget::kEncode:
      for (const auto& tokenizer : fuzz_tokenizers()) {
        std::vector<int32_t> ids = tokenizer->encode(std::string(text), add_special_tokens);
        std::vector<int64_t> wide(ids.begin(), ids.end());
        tokenizer::IncrementalDetokenizer stream(tokenizer->vocabulary());
        std::string streamed;
        for (auto id : wide) streamed += stream.add(id);
        streamed += stream.flush();
        if (streamed != tokenizer->decode(wide, true))
          throw std::logic_error("incremental detokenizer: streamed text differs from the full decode");
      }
      return;
    case ParserTarget::kChatTemplate: {
      static const auto request = tokenizer::ChatRequest::from_json(nlohmann::ordered_json::parse(R"({
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi \u00e9"},
                     {"role": "assistant", "content": "<think>r</think>ok", "tool_calls": [
                       {"function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}]},
                     {"role": "tool", "content": "42"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})"), "fuzz");
      tokenizer::ChatTemplate chat_template(std::string(text), "fuzz.jinja", {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
      (void)chat_template.render(request);
      return;
    }
    case ParserTarget::kOpenAiRequest: {
      // A request body of either endpoint (bit 2 of the selector picks chat), as iol serve parses it.
      const auto body = server::parse_json_body(text);
      (void)server::parse_generation_request(
          body, add_special_tokens ? server::Endpoint::ChatCompletions : server::Endpoint::Completions);
      return;
    }
  }
}

}  // namespace iol::fuzz
