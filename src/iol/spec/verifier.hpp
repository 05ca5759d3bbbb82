// Verifier: the target model's verdict on speculative proposals, behind the backend like plain
// sampling (the host reference of the contract; docs/speculative.md).
//
// A sequence's verified run is k + 1 consecutive sampling rows, one per position (SamplingRow:
// proposed_token, draft_probs_row). Row j's distribution p_j is the target's, after the same
// penalties, masks and temperature / top-k / top-p / min-p as without speculation, with the
// proposals before it as part of the output. Rows are walked in order:
//  - greedy, or a deterministic proposal (n-gram: q one-hot at x): the row's plain draw y_j — the
//    token plain sampling would draw at this position from this context, with the same random
//    stream — is computed; x_j is accepted iff y_j == x_j, otherwise y_j is emitted and the run
//    ends. For one-hot q this *is* the rule of Leviathan et al. 2023 (accept with probability
//    min(1, p(x)/q(x)) = p(x); on rejection draw from norm(max(0, p - q)) = p conditioned on ≠ x),
//    realised by the Gumbel-max coupling: P(y = x) = p(x), and y given y ≠ x is distributed as p
//    restricted to the other tokens. So the output is token for token what plain sampling draws.
//  - a draft-model proposal x ~ q (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023): accept
//    when u < p(x) / q(x), u from the request's accept stream; otherwise emit a draw from
//    norm(max(0, p - q)) (Gumbel-max with the target's sampling stream at this position).
//  - the bonus row (after k accepted proposals) emits its plain draw.
// Rows after a rejection emit kNotEmitted.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

#include "iol/sampling/sampler.hpp"
#include "iol/sampling/sampling_batch.hpp"

namespace iol::spec {

struct Verdict {
  bool accepted = false;
  int32_t token = -1;  // the proposal when accepted, else the residual draw
};

// The rejection-sampling rule for one proposal x drawn from q: p is the target's sampling
// distribution and q the draft's (both sum to 1 over the vocabulary). `key` is the position's
// key in the target's sampling stream; the coin is drawn from the accept stream with the same
// (seed, sample, position).
Verdict verify_proposal(std::span<const double> p, std::span<const float> q, int32_t proposal,
                        const sampling::RandomKey& key);

// The fp32 logits of one logits row (SamplingRow::logits_row), vocab values, on the host.
using LogitsRowFn = std::function<std::span<const float>(int32_t logits_row)>;

// The verification walk over a batch whose rows already hold their plain draws in `out` (as
// sampling::sample_batch_on_host or a device sampler draws them, same random streams): each run
// is verified as above, rejected runs' later rows set to kNotEmitted. `logits_of` is asked only
// for draft-model proposals under sampling (p and the residual need the row's logits); greedy and
// n-gram runs are decided by the plain draws alone. A batch without proposals is left as is.
void verify_sampled_runs(const sampling::SamplingBatch& batch, int64_t vocab, const LogitsRowFn& logits_of,
                         sampling::SampledBatch& out);

// A backend step's sampling half with speculative runs on the host: every row sampled as
// sampling::sample_batch_on_host does, then verify_sampled_runs.
void sample_and_verify_on_host(std::span<const float> logits, int64_t vocab, const sampling::SamplingBatch& batch,
                               sampling::SampledBatch& out);

}  // namespace iol::spec
