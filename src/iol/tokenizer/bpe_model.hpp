// BpeModel: byte-pair encoding of one pre-tokenized piece (Sennrich et al. 2016), as the
// Hugging Face `tokenizers` BPE model does: merges applied lowest rank first, byte fallback to
// <0xNN> tokens, unknown-token fusing, and `ignore_merges` (a piece already in the vocabulary is
// one token). A cache keeps the ids of repeated pieces.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::tokenizer {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object; errors name `source`.
  static BpeModel from_json(const nlohmann::json& model, const std::string& source);
  BpeModel(BpeModel&& other) noexcept;

  // Appends the ids of one piece (already normalized and pre-tokenized) to `out`.
  void encode_piece(const std::string& piece, std::vector<int32_t>& out) const;
  std::optional<int32_t> token_to_id(const std::string& token) const;
  size_t vocab_size() const { return vocab_.size(); }

 private:
  BpeModel() = default;
  void merge_symbols(std::vector<int32_t>& symbols) const;

  std::unordered_map<std::string, int32_t> vocab_;
  // (left id, right id) → (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::optional<int32_t> unk_id_;
  int32_t byte_ids_[256] = {};  // <0xNN> token ids (byte fallback), -1 when absent

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace iol::tokenizer
