// Tokenizer: a Hugging Face tokenizer.json (+ tokenizer_config.json) encoded exactly as
// transformers' AutoTokenizer does: added/special tokens matched first (leftmost-longest), then
// normalizer → pre-tokenizer → BPE per piece, then the post-processor's special tokens.
// Decoding goes through Vocabulary. Checked id-for-id against transformers on a 320-string
// corpus for Llama 3, Llama 2 and Qwen3 (tests/integration/tokenizer_parity_test.cpp).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "iol/tokenizer/bpe_model.hpp"
#include "iol/tokenizer/text_pipeline.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::tokenizer {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false;
};

class Tokenizer {
 public:
  // `directory` holds tokenizer.json and optionally tokenizer_config.json.
  static std::unique_ptr<Tokenizer> from_directory(const std::string& directory);
  static std::unique_ptr<Tokenizer> from_json(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                                              const std::string& source);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = true) const;
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = true) const {
    return vocabulary_.decode(ids, skip_special_tokens);
  }
  const Vocabulary& vocabulary() const { return vocabulary_; }
  // The token's text as stored in the vocabulary (for `iol tokenize` pieces).
  std::string id_to_token(int32_t id) const;
  std::optional<int32_t> bos_token_id() const { return bos_id_; }
  std::optional<int32_t> eos_token_id() const { return eos_id_; }

 private:
  Tokenizer(BpeModel model, Vocabulary vocabulary) : model_(std::move(model)), vocabulary_(std::move(vocabulary)) {}
  void encode_segment(const std::string& segment, bool first, std::vector<int32_t>& out) const;

  BpeModel model_;
  Vocabulary vocabulary_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::vector<AddedToken> added_tokens_;
  std::vector<std::vector<const AddedToken*>> added_by_first_byte_;  // 256 lists: only these can match
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor template around the sequence
  std::vector<std::string> id_to_token_;
  std::optional<int32_t> bos_id_, eos_id_;
};

}  // namespace iol::tokenizer
