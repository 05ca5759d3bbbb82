#include "iol/spec/verifier.hpp"

#include <cmath>
#include <vector>

#include "iol/core/error.hpp"
#include "iol/core/philox.hpp"
#include "iol/sampling/batch_sampler.hpp"

namespace iol::spec {

Verdict verify_proposal(std::span<const double> p, std::span<const float> q, int32_t proposal,
                        const sampling::RandomKey& key) {
  const auto x = static_cast<size_t>(proposal);
  const double coin = stream_uniform(key.seed, key.sample_index, key.position, 0u, kAcceptStream);
  // u < p/q, written without the division (q(x) = 0 cannot be drawn, but must not divide by 0).
  if (coin * static_cast<double>(q[x]) < p[x]) return {true, proposal};
  // Residual distribution norm(max(0, p - q)), drawn by Gumbel-max: argmax log r_i + g_i. If it
  // is empty (p == q to rounding) p itself is drawn.
  int32_t best_token = -1;
  double best = -INFINITY;
  for (int pass = 0; pass < 2 && best_token < 0; ++pass) {
    for (size_t i = 0; i < p.size(); ++i) {
      const double r = pass == 0 ? p[i] - static_cast<double>(q[i]) : p[i];
      if (!(r > 0.0)) continue;
      const double score = std::log(r) + static_cast<double>(sampling::gumbel_noise(key, static_cast<int32_t>(i)));
      if (best_token < 0 || score > best) {
        best = score;
        best_token = static_cast<int32_t>(i);
      }
    }
  }
  return {false, best_token};
}

void verify_sampled_runs(const sampling::SamplingBatch& batch, int64_t vocab, const LogitsRowFn& logits_of,
                         sampling::SampledBatch& out) {
  const size_t num_rows = batch.rows.size();
  std::vector<float> row_logits;
  const auto ids = [&](int32_t begin, int32_t end) {
    return batch.token_ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
  };
  for (size_t r = 0; r < num_rows; ++r) {
    const sampling::SamplingRow& row = batch.rows[r];
    if (!row.is_proposal()) continue;  // a plain row or a run's bonus row: its draw stands
    bool accepted = false;
    if (out.tokens[r] == sampling::kInvalidToken) {
      accepted = false;  // non-finite logits: the engine fails the request at this row
    } else if (batch.forced_acceptance >= 0.0) {
      // Benchmark only: a coin decides; an accepted proposal is emitted as if the target agreed,
      // a rejected one emits the row's plain draw (its logprob is the plain draw's either way).
      accepted = stream_uniform(row.seed, row.sample_index, row.position, 0u, kForcedAcceptStream) < batch.forced_acceptance;
      if (accepted) out.tokens[r] = row.proposed_token;
    } else if (row.greedy() || row.draft_probs_row < 0) {
      accepted = out.tokens[r] == row.proposed_token;
    } else {
      const std::span<const float> source = logits_of(row.logits_row);
      if (source.size() != static_cast<size_t>(vocab))
        fail("verifier: logits row {} has {} values, the vocabulary {}", row.logits_row, source.size(), vocab);
      row_logits.assign(source.begin(), source.end());
      const sampling::SamplingParams params = sampling::params_of(row);
      sampling::apply_penalties(row_logits, params, ids(row.prompt_begin, row.prompt_end),
                                ids(row.prompt_end, row.output_end));
      sampling::mask_tokens(row_logits, ids(row.masked_begin, row.masked_end));
      const std::vector<double> p = sampling::sampling_distribution(row_logits, params);
      const auto q = batch.draft_probs.subspan(static_cast<size_t>(row.draft_probs_row) * static_cast<size_t>(vocab),
                                               static_cast<size_t>(vocab));
      const Verdict verdict =
          verify_proposal(p, q, row.proposed_token, sampling::RandomKey{row.seed, row.sample_index, row.position});
      accepted = verdict.accepted;
      if (verdict.token != out.tokens[r]) {
        // The logprob is of the raw model distribution, as for a plain draw.
        const std::vector<float> raw = sampling::log_softmax(source);
        out.tokens[r] = verdict.token;
        out.logprobs[r] = raw[static_cast<size_t>(verdict.token)];
      }
    }
    if (accepted) continue;
    // Rejected: this row's token is emitted, the rest of the run (through its bonus row) is not.
    size_t next = r + 1;
    for (; next < num_rows; ++next) {
      out.tokens[next] = sampling::kNotEmitted;
      if (!batch.rows[next].is_proposal()) break;
    }
    r = next;
  }
}

void sample_and_verify_on_host(std::span<const float> logits, int64_t vocab, const sampling::SamplingBatch& batch,
                               sampling::SampledBatch& out) {
  sampling::sample_batch_on_host(logits, vocab, batch, out);
  verify_sampled_runs(batch, vocab,
                      [&](int32_t logits_row) {
                        return logits.subspan(static_cast<size_t>(logits_row) * static_cast<size_t>(vocab),
                                              static_cast<size_t>(vocab));
                      },
                      out);
}

}  // namespace iol::spec
