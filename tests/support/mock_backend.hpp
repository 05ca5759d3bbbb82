// A model-free backend for engine tests. Its KV cache stores each token id in its slot; the
// logits of a row put all mass on next_token(context), where the context is read back through
// the block table. Any block-table or sharing bug changes the outputs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/core/error.hpp"

namespace iol::testing {

inline int32_t mock_next_token(std::span<const int32_t> context, int64_t vocab) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : context) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
  return static_cast<int32_t>(h % static_cast<uint64_t>(vocab));
}

// Greedy continuation of `prompt` under the mock model.
inline std::vector<int32_t> mock_greedy(std::vector<int32_t> tokens, int64_t max_tokens, int64_t vocab) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < max_tokens; ++i) {
    out.push_back(mock_next_token(tokens, vocab));
    tokens.push_back(out.back());
  }
  return out;
}

class MockBackend final : public backend::Backend {
 public:
  MockBackend(int64_t num_blocks, int64_t block_size, int64_t vocab)
      : shape_{num_blocks, block_size, 1, 1, 1}, vocab_(vocab), slots_(static_cast<size_t>(num_blocks * block_size), -1) {}
  std::string name() const override { return "mock"; }
  const backend::KvCacheShape& kv_cache_shape() const override { return shape_; }
  int64_t vocab_size() const override { return vocab_; }
  void forward(const backend::ForwardBatch& batch, std::span<float> logits) override {
    for (size_t t = 0; t < batch.num_tokens(); ++t) slots_[static_cast<size_t>(batch.slot_mapping[t])] = batch.token_ids[t];
    std::fill(logits.begin(), logits.end(), 0.0f);
    size_t row = 0;
    for (size_t s = 0; s < batch.num_seqs(); ++s) {
      const int32_t last = batch.query_start_loc[s + 1] - 1;
      if (row >= batch.logits_indices.size() || batch.logits_indices[row] != last) continue;
      std::vector<int32_t> context;
      for (int32_t p = 0; p <= batch.positions[static_cast<size_t>(last)]; ++p) {
        int32_t block = batch.block_tables[s * static_cast<size_t>(batch.max_blocks_per_seq) + static_cast<size_t>(p / shape_.block_size)];
        if (block < 0) fail("mock backend: position {} has no block", p);
        context.push_back(slots_[static_cast<size_t>(block * shape_.block_size + p % shape_.block_size)]);
      }
      logits[row * static_cast<size_t>(vocab_) + static_cast<size_t>(mock_next_token(context, vocab_))] = 10.0f;
      ++row;
    }
    if (row != batch.logits_indices.size()) fail("mock backend: logits rows are not sequence ends");
  }

 private:
  backend::KvCacheShape shape_;
  int64_t vocab_;
  std::vector<int32_t> slots_;
};

}  // namespace iol::testing
