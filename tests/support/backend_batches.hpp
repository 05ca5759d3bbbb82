// Batches for backend-level tests: seeded random prompts, and one step that prefills several
// prompts on a fresh backend and returns the logits of every position.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/core/rng.hpp"
#include "iol/sampling/sampling_params.hpp"

namespace iol::testing {

// Greedy, EOS ignored, with the top-2 logprobs a near-tie tolerance reads (a reference's top-2
// gap decides where tokens computed in bf16 must agree with it).
inline sampling::SamplingParams greedy_with_top2(int32_t max_tokens) {
  sampling::SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  p.logprobs = 2;
  return p;
}

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

// The prompts prefilled in one step, then `steps` decode steps of one token per sequence (the
// tokens drawn from `seed`, not sampled); the logits of every prefill position and of every decode
// row, in that order. Exercises the decode attention over what the prefill wrote to the cache.
inline std::vector<float> prefill_then_decode_logits(backend::Backend& backend,
                                                     const std::vector<std::vector<int32_t>>& prompts, int steps,
                                                     uint64_t seed) {
  const int64_t block_size = backend.kv_cache_shape().block_size, vocab = backend.vocab_size();
  int32_t max_blocks = 0;
  for (const auto& p : prompts)
    max_blocks = std::max<int32_t>(max_blocks, static_cast<int32_t>((p.size() + steps + block_size - 1) / block_size));
  std::vector<int32_t> tables;
  int32_t next_block = static_cast<int32_t>(backend.kv_cache_shape().num_blocks) - 1;
  for (size_t s = 0; s < prompts.size(); ++s)
    for (int32_t b = 0; b < max_blocks; ++b) tables.push_back(next_block--);
  auto slot = [&](size_t s, int64_t position) {
    return static_cast<int64_t>(tables[s * max_blocks + position / block_size]) * block_size + position % block_size;
  };
  std::vector<float> all;
  auto run = [&](std::vector<int32_t> tokens, std::vector<int32_t> positions, std::vector<int64_t> slots,
                 std::vector<int32_t> query_start, std::vector<int32_t> context_lens) {
    std::vector<int32_t> logits_indices(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) logits_indices[i] = static_cast<int32_t>(i);
    backend::ForwardBatch batch{tokens, positions, slots, query_start, context_lens, tables, max_blocks, logits_indices};
    std::vector<float> logits(logits_indices.size() * static_cast<size_t>(vocab), NAN);
    backend.compute_logits(batch, logits);
    all.insert(all.end(), logits.begin(), logits.end());
  };
  {
    std::vector<int32_t> tokens, positions, query_start{0}, context_lens;
    std::vector<int64_t> slots;
    for (size_t s = 0; s < prompts.size(); ++s) {
      for (size_t i = 0; i < prompts[s].size(); ++i) {
        tokens.push_back(prompts[s][i]);
        positions.push_back(static_cast<int32_t>(i));
        slots.push_back(slot(s, static_cast<int64_t>(i)));
      }
      query_start.push_back(static_cast<int32_t>(tokens.size()));
      context_lens.push_back(static_cast<int32_t>(prompts[s].size()));
    }
    run(tokens, positions, slots, query_start, context_lens);
  }
  Rng rng(seed);
  for (int step = 0; step < steps; ++step) {
    std::vector<int32_t> tokens, positions, query_start{0}, context_lens;
    std::vector<int64_t> slots;
    for (size_t s = 0; s < prompts.size(); ++s) {
      const int64_t position = static_cast<int64_t>(prompts[s].size()) + step;
      tokens.push_back(static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(std::min<int64_t>(vocab, 256))));
      positions.push_back(static_cast<int32_t>(position));
      slots.push_back(slot(s, position));
      query_start.push_back(static_cast<int32_t>(tokens.size()));
      context_lens.push_back(static_cast<int32_t>(position + 1));
    }
    run(tokens, positions, slots, query_start, context_lens);
  }
  return all;
}

}  // namespace iol::testing
