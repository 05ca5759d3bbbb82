// DraftModelProposer: a small model with the target's tokenizer proposes k tokens per step,
// autoregressively, in k batched forwards of its own backend (its own KV pool, paged like the
// target's; no prefix caching, no sharing). Each sequence keeps its draft block table and the
// tokens its draft K/V was computed for: after verification the draft resumes from the longest
// prefix those share with the sequence's tokens, so rejected proposals are rolled back for free.
// Proposals are drawn from q, the draft's distribution after the request's own sampling
// parameters (penalties, masks, temperature, top-k, top-p, min-p), with the request's draft random
// stream; q goes to the verifier with them (Leviathan et al. 2023). Greedy requests propose the
// draft's argmax.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/spec/proposer.hpp"

namespace iol::spec {

class DraftModelProposer final : public Proposer {
 public:
  // Throws iol::Error when the draft's vocabulary differs from the target's. A draft backend that
  // reserves activations for a fixed step (cuda) gets max_tokens_per_forward (its
  // max_num_batched_tokens, >= the running sequences): long unseen prefixes go in pieces.
  DraftModelProposer(std::shared_ptr<backend::Backend> draft, int64_t target_vocab_size,
                     int64_t max_tokens_per_forward = 0);
  const char* name() const override { return "draft"; }
  void propose(std::span<const ProposalRequest> requests, ProposalBatch& out) override;
  void release(uint64_t key) override;

  int64_t num_free_blocks() const { return static_cast<int64_t>(free_blocks_.size()); }

 private:
  struct State {
    std::vector<int32_t> block_table;
    std::vector<int32_t> cached_tokens;  // the tokens whose K/V the draft cache holds, from position 0
    int64_t last_step = -1;              // the propose() call that last used it
  };
  // Grows the state's table to hold num_tokens, evicting states unused in this call if needed.
  bool reserve(State& state, int64_t num_tokens);
  void free_state(State& state);

  std::shared_ptr<backend::Backend> draft_;
  int64_t vocab_, block_size_, max_tokens_per_forward_;
  std::vector<int32_t> free_blocks_;
  std::unordered_map<uint64_t, State> states_;
  int64_t step_ = 0;
};

}  // namespace iol::spec
