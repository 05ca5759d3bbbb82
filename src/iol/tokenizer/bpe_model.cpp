#include "iol/tokenizer/bpe_model.hpp"

#include <queue>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/tokenizer/byte_level.hpp"

namespace iol::tokenizer {

using nlohmann::json;

namespace {
uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
constexpr size_t kMaxCacheEntries = 1 << 16;
}  // namespace

BpeModel::BpeModel(BpeModel&& other) noexcept
    : vocab_(std::move(other.vocab_)),
      merges_(std::move(other.merges_)),
      byte_fallback_(other.byte_fallback_),
      fuse_unk_(other.fuse_unk_),
      ignore_merges_(other.ignore_merges_),
      unk_id_(other.unk_id_),
      cache_(std::move(other.cache_)) {
  std::copy(std::begin(other.byte_ids_), std::end(other.byte_ids_), std::begin(byte_ids_));
}

BpeModel BpeModel::from_json(const json& model, const std::string& source) {
  if (!model.is_object()) fail("{}: 'model' must be an object", source);
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") fail("{}: model type '{}' is not supported (supported: BPE)", source, type);
  auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) fail("{}: 'model.vocab' must be an object of token → id", source);
  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) fail("{}: 'model.merges' is missing (a BPE model needs its merges)", source);
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string() &&
      !model["continuing_subword_prefix"].get<std::string>().empty())
    fail("{}: BPE continuing_subword_prefix is not supported", source);

  BpeModel bpe;
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer()) fail("{}: vocab entry '{}' must map to an integer id", source, token);
    bpe.vocab_.emplace(token, id.get<int32_t>());
  }
  int32_t rank = 0;
  for (const auto& merge : *merges) {
    std::string left, right;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      size_t space = text.find(' ', 1);
      if (space == std::string::npos) fail("{}: merge {} is not 'left right'", source, rank);
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      fail("{}: merge {} must be \"left right\" or [left, right]", source, rank);
    }
    auto l = bpe.vocab_.find(left), r = bpe.vocab_.find(right), m = bpe.vocab_.find(left + right);
    if (l == bpe.vocab_.end() || r == bpe.vocab_.end() || m == bpe.vocab_.end())
      fail("{}: merge {} ('{}' + '{}') uses a token missing from the vocabulary", source, rank, left, right);
    bpe.merges_.emplace(pair_key(l->second, r->second), std::make_pair(rank, m->second));
    ++rank;
  }
  bpe.byte_fallback_ = model.value("byte_fallback", false);
  bpe.fuse_unk_ = model.value("fuse_unk", false);
  bpe.ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = bpe.vocab_.find(model["unk_token"].get<std::string>());
    if (it == bpe.vocab_.end()) fail("{}: unk_token '{}' is not in the vocabulary", source, model["unk_token"].get<std::string>());
    bpe.unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = bpe.vocab_.find(fmt::format("<0x{:02X}>", b));
    bpe.byte_ids_[b] = it == bpe.vocab_.end() ? -1 : it->second;
  }
  return bpe;
}

std::optional<int32_t> BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbols) const {
  // Merge the adjacent pair of lowest rank, leftmost on ties, until none applies: a min-heap of
  // candidate pairs over a linked list of symbols, O(n log n) (as tokenizers' Word::merge_all).
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int left;           // position of the left symbol
    int32_t left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int left) {
    if (left < 0) return;  // the first symbol has no left neighbour
    const int right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    const int32_t a = symbols[static_cast<size_t>(left)], b = symbols[static_cast<size_t>(right)];
    if (a < 0 || b < 0) return;
    auto it = merges_.find(pair_key(a, b));
    if (it != merges_.end()) heap.push({it->second.first, left, a, b});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(static_cast<size_t>(n), true);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    const int left = c.left, right = next[static_cast<size_t>(left)];
    // Stale: a symbol changed or died since this candidate was pushed.
    if (!alive[static_cast<size_t>(left)] || right < 0 || symbols[static_cast<size_t>(left)] != c.left_id ||
        symbols[static_cast<size_t>(right)] != c.right_id)
      continue;
    symbols[static_cast<size_t>(left)] = merges_.at(pair_key(c.left_id, c.right_id)).second;
    alive[static_cast<size_t>(right)] = false;
    next[static_cast<size_t>(left)] = next[static_cast<size_t>(right)];
    if (next[static_cast<size_t>(right)] >= 0) prev[static_cast<size_t>(next[static_cast<size_t>(right)])] = left;
    push(prev[static_cast<size_t>(left)]);
    push(left);
  }
  std::vector<int32_t> merged;
  for (int i = 0; i >= 0; i = next[static_cast<size_t>(i)]) merged.push_back(symbols[static_cast<size_t>(i)]);
  symbols = std::move(merged);
}

void BpeModel::encode_piece(const std::string& piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  auto whole = vocab_.find(piece);
  if (ignore_merges_ && whole != vocab_.end()) {
    ids.push_back(whole->second);
  } else {
    // Initial symbols: one per UTF-8 character; characters outside the vocabulary are kept as
    // text (negative index into `unknown`) for byte fallback or the unknown token.
    std::vector<int32_t> symbols;
    std::vector<std::string> unknown;
    for (size_t pos = 0; pos < piece.size();) {
      size_t start = pos;
      if (!utf8_decode_one(piece, pos)) pos = start + 1;  // invalid byte: a one-byte symbol
      std::string ch = piece.substr(start, pos - start);
      auto it = vocab_.find(ch);
      if (it != vocab_.end()) {
        symbols.push_back(it->second);
      } else {
        unknown.push_back(std::move(ch));
        symbols.push_back(-static_cast<int32_t>(unknown.size()));
      }
    }
    merge_symbols(symbols);
    bool previous_unk = false;
    for (int32_t symbol : symbols) {
      if (symbol >= 0) {
        ids.push_back(symbol);
        previous_unk = false;
        continue;
      }
      const std::string& text = unknown[static_cast<size_t>(-symbol - 1)];
      bool all_bytes = byte_fallback_;
      for (unsigned char c : text) all_bytes = all_bytes && byte_ids_[c] >= 0;
      if (all_bytes) {
        for (unsigned char c : text) ids.push_back(byte_ids_[c]);
        previous_unk = false;
      } else if (unk_id_) {
        if (!(fuse_unk_ && previous_unk)) ids.push_back(*unk_id_);
        previous_unk = true;
      }
      // No unknown token and no byte fallback: the character is dropped, as tokenizers does.
    }
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(piece, std::move(ids));
}

}  // namespace iol::tokenizer
