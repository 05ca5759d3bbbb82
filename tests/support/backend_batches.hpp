// Batches for backend-level tests: seeded random prompts, and one step that prefills several
// prompts on a fresh backend and returns the logits of every position.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/core/rng.hpp"

namespace iol::testing {

inline std::vector<std::vector<int32_t>> random_prompts(const std::vector<int>& lengths, uint64_t seed, int64_t vocab) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> prompts;
  for (int length : lengths) {
    std::vector<int32_t> p;
    for (int i = 0; i < length; ++i) p.push_back(static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(std::min<int64_t>(vocab, 256))));
    prompts.push_back(p);
  }
  return prompts;
}

// All prompts prefilled in one step on a fresh backend; logits of every position.
inline std::vector<float> prefill_logits(backend::Backend& backend, const std::vector<std::vector<int32_t>>& prompts) {
  const int64_t block_size = backend.kv_cache_shape().block_size;
  std::vector<int32_t> tokens, positions, query_start{0}, context_lens, tables, logits_indices;
  std::vector<int64_t> slots;
  int32_t max_blocks = 0;
  for (const auto& p : prompts) max_blocks = std::max<int32_t>(max_blocks, static_cast<int32_t>((p.size() + block_size - 1) / block_size));
  // Blocks handed out in reverse order, so tables are not the identity.
  int32_t next_block = static_cast<int32_t>(backend.kv_cache_shape().num_blocks) - 1;
  for (const auto& p : prompts) {
    std::vector<int32_t> table;
    for (int32_t b = 0; b < max_blocks; ++b) table.push_back(b * block_size < static_cast<int64_t>(p.size()) ? next_block-- : -1);
    for (size_t i = 0; i < p.size(); ++i) {
      logits_indices.push_back(static_cast<int32_t>(tokens.size()));
      tokens.push_back(p[i]);
      positions.push_back(static_cast<int32_t>(i));
      slots.push_back(static_cast<int64_t>(table[i / static_cast<size_t>(block_size)]) * block_size + static_cast<int64_t>(i) % block_size);
    }
    query_start.push_back(static_cast<int32_t>(tokens.size()));
    context_lens.push_back(static_cast<int32_t>(p.size()));
    tables.insert(tables.end(), table.begin(), table.end());
  }
  backend::ForwardBatch batch{tokens, positions, slots, query_start, context_lens, tables, max_blocks, logits_indices};
  std::vector<float> logits(logits_indices.size() * static_cast<size_t>(backend.vocab_size()), NAN);
  backend.compute_logits(batch, logits);
  return logits;
}

}  // namespace iol::testing
