// Vocabulary: the id → bytes side of a Hugging Face tokenizer.json (decoding only; encoding is
// the BPE tokenizer's job). Handles byte-level (GPT-2 alphabet) and SentencePiece-style
// (▁ for space, <0xNN> byte fallback) vocabularies, and added/special tokens.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::tokenizer {

class Vocabulary {
 public:
  static Vocabulary from_file(const std::string& tokenizer_json_path);
  static Vocabulary from_json(const nlohmann::json& tokenizer_json, const std::string& source);

  size_t size() const { return token_bytes_.size(); }
  bool is_special(int64_t id) const;
  // Raw bytes of one token (empty for ids the file does not define).
  const std::string& token_bytes(int64_t id) const;
  // Bytes of a sequence; SentencePiece vocabularies drop the one leading space the encoder added.
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = true) const;
  bool strips_leading_space() const { return strip_leading_space_; }

 private:
  static Vocabulary parse_vocabulary(const nlohmann::json& tokenizer_json, const std::string& source);

  std::vector<std::string> token_bytes_;
  std::vector<bool> special_;
  bool strip_leading_space_ = false;
};

// A small valid tokenizer.json for models made by `iol model create`: byte-level BPE over the
// 256 bytes, BOS/EOS special tokens at the config's ids, reserved specials for the rest of a
// small vocabulary. Returns {tokenizer.json, tokenizer_config.json}.
std::pair<nlohmann::json, nlohmann::json> make_byte_level_tokenizer(int64_t vocab_size, int64_t bos_id,
                                                                    int64_t eos_id);

}  // namespace iol::tokenizer
