#include "iol/spec/ngram_proposer.hpp"

#include <algorithm>

#include "iol/core/error.hpp"

namespace iol::spec {

NgramProposer::NgramProposer(int64_t prompt_lookup_min, int64_t prompt_lookup_max)
    : min_n_(prompt_lookup_min), max_n_(prompt_lookup_max) {
  if (min_n_ < 1 || max_n_ < min_n_)
    fail("ngram proposer: need 1 <= --prompt-lookup-min ({}) <= --prompt-lookup-max ({})", min_n_, max_n_);
}

void NgramProposer::lookup(std::span<const int32_t> tokens, int64_t min_n, int64_t max_n, int32_t max_proposals,
                           std::vector<int32_t>& out) {
  const auto length = static_cast<int64_t>(tokens.size());
  if (max_proposals <= 0) return;
  // Longest n first: a longer match predicts better.
  for (int64_t n = std::min(max_n, length - 1); n >= min_n; --n) {
    const auto suffix = tokens.subspan(static_cast<size_t>(length - n));
    // The most recent earlier occurrence (start < length - n, so it is not the suffix itself).
    for (int64_t start = length - n - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) continue;
      const int64_t from = start + n, count = std::min<int64_t>(max_proposals, length - from);
      out.insert(out.end(), tokens.begin() + from, tokens.begin() + from + count);
      return;
    }
  }
}

void NgramProposer::propose(std::span<const ProposalRequest> requests, ProposalBatch& out) {
  out.clear();
  for (const ProposalRequest& request : requests) {
    lookup(request.token_ids, min_n_, max_n_, request.max_proposals, out.tokens);
    out.offsets.push_back(static_cast<int32_t>(out.tokens.size()));
  }
}

}  // namespace iol::spec
