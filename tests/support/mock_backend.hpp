// A model-free backend for engine tests. Its KV cache stores each token id in its slot; the
// logits of a row are mock_logits(context), where the context is read back through the block
// table. Any block-table, sharing or copy-on-write bug changes the outputs.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/core/error.hpp"
#include "iol/core/rng.hpp"
#include "iol/sampling/batch_sampler.hpp"
#include "iol/sampling/sampler.hpp"
#include "iol/spec/verifier.hpp"

namespace iol::testing {

// Logits of the mock model: a pseudo-random spread in [0, 4) over the vocabulary, a function of
// the whole context, so sampling with temperature gives genuinely different continuations.
// `perturbation` > 0 gives a different model that agrees with the mock more or less (a draft
// model for speculative-decoding tests): each logit moves by up to that much, as a function of the
// context. `window` > 0 makes the logits a function of the last `window` tokens only (a Markov
// model, whose greedy text soon repeats itself: what n-gram lookup can predict).
inline std::vector<float> mock_logits(std::span<const int32_t> context, int64_t vocab, float perturbation = 0.0f,
                                      int64_t window = 0) {
  if (window > 0 && static_cast<int64_t>(context.size()) > window) context = context.last(static_cast<size_t>(window));
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : context) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (int64_t v = 0; v < vocab; ++v) {
    uint64_t x = (h ^ (static_cast<uint64_t>(v) * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    logits[static_cast<size_t>(v)] = static_cast<float>((x >> 40) % 1000) / 250.0f;
    if (perturbation > 0.0f) {
      const uint64_t y = (x ^ 0x5bd1e9955bd1e995ull) * 0x94d049bb133111ebull;
      logits[static_cast<size_t>(v)] += perturbation * (static_cast<float>((y >> 40) % 1000) / 500.0f - 1.0f);
    }
  }
  return logits;
}

inline int32_t mock_next_token(std::span<const int32_t> context, int64_t vocab) {
  auto logits = mock_logits(context, vocab);
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// What sample `sample_index` of a seeded request must produce: the sampler applied step by step
// to the mock model's logits of the true context, with the generator the engine gives it.
inline std::vector<int32_t> mock_sampled(const std::vector<int32_t>& prompt, const sampling::SamplingParams& params,
                                         int32_t sample_index, int64_t vocab) {
  std::vector<int32_t> tokens = prompt, out;
  for (int32_t i = 0; i < params.max_tokens; ++i) {
    auto logits = mock_logits(tokens, vocab);
    const sampling::RandomKey key{*params.seed, static_cast<uint32_t>(sample_index), static_cast<uint32_t>(i)};
    out.push_back(sampling::sample(logits, params, prompt, out, {}, key).token);
    tokens.push_back(out.back());
  }
  return out;
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

class MockBackend : public backend::Backend {
 public:
  MockBackend(int64_t num_blocks, int64_t block_size, int64_t vocab, float perturbation = 0.0f, int64_t window = 0)
      : spec_{{num_blocks, block_size, 1, 1, 1}, DType::I32, 4 * block_size},
        shape_(spec_.shape),
        vocab_(vocab),
        perturbation_(perturbation),
        window_(window),
        slots_(static_cast<size_t>(num_blocks * block_size), -1) {}
  bool supports_speculative_decoding() const override { return true; }
  int64_t num_forward_tokens = 0;  // tokens computed over all steps
  std::string name() const override { return "mock"; }
  const backend::KvCacheSpec& kv_cache_spec() const override { return spec_; }
  void execute(const backend::ForwardBatch& batch, const sampling::SamplingBatch& sampling,
               sampling::SampledBatch& out) override {
    std::vector<float> logits(batch.logits_indices.size() * static_cast<size_t>(vocab_));
    compute_logits(batch, logits);
    spec::sample_and_verify_on_host(logits, vocab_, sampling, out);
  }
  int64_t vocab_size() const override { return vocab_; }
  void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) override {
    for (const auto& [source, destination] : copies)
      std::copy_n(slots_.begin() + source * shape_.block_size, shape_.block_size, slots_.begin() + destination * shape_.block_size);
  }
  void compute_logits(const backend::ForwardBatch& batch, std::span<float> logits) override {
    for (size_t t = 0; t < batch.num_tokens(); ++t) slots_[static_cast<size_t>(batch.slot_mapping[t])] = batch.token_ids[t];
    num_forward_tokens += static_cast<int64_t>(batch.num_tokens());
    if (logits.size() != batch.logits_indices.size() * static_cast<size_t>(vocab_)) fail("mock backend: logits size");
    // Any token's logits may be asked for (speculative runs want every position's): the context
    // is read back through the block table up to that token's position.
    for (size_t row = 0; row < batch.logits_indices.size(); ++row) {
      const int32_t t = batch.logits_indices[row];
      size_t s = 0;
      while (batch.query_start_loc[s + 1] <= t) ++s;
      std::vector<int32_t> context;
      for (int32_t p = 0; p <= batch.positions[static_cast<size_t>(t)]; ++p) {
        int32_t block = batch.block_tables[s * static_cast<size_t>(batch.max_blocks_per_seq) + static_cast<size_t>(p / shape_.block_size)];
        if (block < 0) fail("mock backend: position {} has no block", p);
        context.push_back(slots_[static_cast<size_t>(block * shape_.block_size + p % shape_.block_size)]);
      }
      auto row_logits = mock_logits(context, vocab_, perturbation_, window_);
      std::copy(row_logits.begin(), row_logits.end(), logits.begin() + static_cast<std::ptrdiff_t>(row * static_cast<size_t>(vocab_)));
    }
  }

 private:
  backend::KvCacheSpec spec_;
  const backend::KvCacheShape& shape_;
  int64_t vocab_;
  float perturbation_;
  int64_t window_;
  std::vector<int32_t> slots_;
};

}  // namespace iol::testing
