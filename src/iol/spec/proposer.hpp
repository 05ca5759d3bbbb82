// Proposer: guesses the next tokens of decoding sequences so the target model can verify several
// positions in one forward (speculative decoding; Leviathan et al. 2023, Chen et al. 2023).
// Implementations: NgramProposer (prompt lookup, no model) and DraftModelProposer (a small model
// with its own KV cache). The engine asks once per step for every sequence that has lookahead
// slots; what the proposer returns is verified (spec/verifier.hpp) and never changes the output
// distribution — only how many tokens a step yields.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/sampling/sampling_params.hpp"

namespace iol::spec {

struct ProposalRequest {
  uint64_t key = 0;                      // the sequence, stable across steps (keys the proposer's state)
  std::span<const int32_t> token_ids;    // prompt + output so far
  int64_t num_prompt_tokens = 0;
  int32_t max_proposals = 0;             // at most this many (k, fewer near max_tokens or the token budget)
  // How the target samples this sequence: a draft model samples q the same way.
  const sampling::SamplingParams* params = nullptr;
  uint64_t seed = 0;
  uint32_t sample_index = 0;
  std::span<const int32_t> stop_token_ids;  // masked while fewer than params->min_tokens outputs exist
};

struct ProposalBatch {
  std::vector<int32_t> tokens;   // every request's proposals, request after request
  std::vector<int32_t> offsets;  // num_requests + 1 prefix sums into tokens
  // The draft's distribution q of each proposed token, [tokens.size()][vocab], when the proposer
  // samples (draft model); empty when proposals are deterministic (n-gram: q is one-hot).
  std::vector<float> probs;

  std::span<const int32_t> of(size_t request) const {
    return std::span<const int32_t>(tokens).subspan(static_cast<size_t>(offsets[request]),
                                                    static_cast<size_t>(offsets[request + 1] - offsets[request]));
  }
  void clear() {
    tokens.clear();
    offsets.assign(1, 0);
    probs.clear();
  }
};

class Proposer {
 public:
  virtual ~Proposer() = default;
  virtual const char* name() const = 0;
  // Fills `out` (cleared first) with up to max_proposals tokens per request; none is allowed.
  virtual void propose(std::span<const ProposalRequest> requests, ProposalBatch& out) = 0;
  // The sequence `key` ended (finished or aborted): its state can go.
  virtual void release(uint64_t /*key*/) {}
};

}  // namespace iol::spec
