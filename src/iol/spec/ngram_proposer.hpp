// NgramProposer: prompt lookup decoding (Saxena 2023; vLLM's `ngram` method). The last n tokens
// of a sequence (n from prompt_lookup_max down to prompt_lookup_min) are searched for in its
// prompt and output so far; at the most recent earlier occurrence, the tokens that followed it
// are proposed. No model, no state: it pays where the output copies its context (summaries,
// code edits, extraction) and costs only a search where it does not.
#pragma once
#include <cstdint>

#include "iol/spec/proposer.hpp"

namespace iol::spec {

class NgramProposer final : public Proposer {
 public:
  // Throws iol::Error unless 1 <= prompt_lookup_min <= prompt_lookup_max.
  NgramProposer(int64_t prompt_lookup_min, int64_t prompt_lookup_max);
  const char* name() const override { return "ngram"; }
  void propose(std::span<const ProposalRequest> requests, ProposalBatch& out) override;

  // The proposal for one context: up to max_proposals tokens (empty when no n-gram recurs).
  static void lookup(std::span<const int32_t> tokens, int64_t min_n, int64_t max_n, int32_t max_proposals,
                     std::vector<int32_t>& out);

 private:
  int64_t min_n_, max_n_;
};

}  // namespace iol::spec
