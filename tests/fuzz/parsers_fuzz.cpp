// libFuzzer target for the input parsers — safetensors headers, config.json, tokenizer.json, Jinja
// chat templates (parsed and rendered on a conversation with tools) — and for the tokenizer's
// encoder on arbitrary bytes (invalid UTF-8 included). Any input must give a result or an
// iol::Error — never a crash, hang or other exception.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/model_config.hpp"
#include "iol/model/safetensors.hpp"
#include "iol/tokenizer/chat_template.hpp"
#include "iol/tokenizer/incremental_detokenizer.hpp"
#include "iol/tokenizer/tokenizer.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace {
// Byte-level (GPT-2/Llama 3 style regex, ignore_merges) and SentencePiece-style (NFC, Metaspace,
// byte fallback) tokenizers with a few merges, built once in memory.
const std::vector<std::unique_ptr<iol::tokenizer::Tokenizer>>& tokenizers() {
  static const auto instances = [] {
    std::vector<std::unique_ptr<iol::tokenizer::Tokenizer>> list;
    auto [byte_level, config] = iol::tokenizer::make_byte_level_tokenizer(300, 256, 257);
    byte_level["model"]["vocab"]["ab"] = 258;
    byte_level["model"]["vocab"]["abab"] = 259;
    byte_level["model"]["merges"] = {"a b", "ab ab"};
    byte_level["model"]["ignore_merges"] = true;
    byte_level["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
    list.push_back(iol::tokenizer::Tokenizer::from_json(byte_level, config, "fuzz/byte-level"));
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
    list.push_back(iol::tokenizer::Tokenizer::from_json(sentencepiece, nlohmann::json::object(), "fuzz/sentencepiece"));
    return list;
  }();
  return instances;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the parser, so one run covers all of them.
  const uint8_t selector = data[0] % 5;
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  try {
    if (selector == 0) {
      (void)iol::model::parse_safetensors(rest, "fuzz.safetensors");
    } else if (selector == 1) {
      (void)iol::model::ModelConfig::from_json_text(
          std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()), "fuzz/config.json");
    } else if (selector == 3) {
      const std::string text(reinterpret_cast<const char*>(rest.data()), rest.size());
      for (const auto& tokenizer : tokenizers()) {
        std::vector<int32_t> ids = tokenizer->encode(text, (data[0] & 4) != 0);
        std::vector<int64_t> wide(ids.begin(), ids.end());
        iol::tokenizer::IncrementalDetokenizer stream(tokenizer->vocabulary());
        std::string streamed;
        for (auto id : wide) streamed += stream.add(id);
        streamed += stream.flush();
        if (streamed != tokenizer->decode(wide, true)) __builtin_trap();  // streaming must equal full decode
      }
    } else if (selector == 4) {
      static const auto request = iol::tokenizer::ChatRequest::from_json(nlohmann::ordered_json::parse(R"({
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi \u00e9"},
                     {"role": "assistant", "content": "<think>r</think>ok", "tool_calls": [
                       {"function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}]},
                     {"role": "tool", "content": "42"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})"), "fuzz");
      const std::string source(reinterpret_cast<const char*>(rest.data()), rest.size());
      iol::tokenizer::ChatTemplate chat_template(source, "fuzz.jinja", {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
      (void)chat_template.render(request);
    } else {
      auto json = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
      if (!json.is_discarded()) (void)iol::tokenizer::Vocabulary::from_json(json, "fuzz/tokenizer.json");
    }
  } catch (const iol::Error&) {
  }
  return 0;
}
