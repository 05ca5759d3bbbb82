#include "iol/sampling/batch_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "iol/sampling/sampler.hpp"

namespace iol::sampling {

SamplingParams params_of(const SamplingRow& row) {
  SamplingParams params;
  params.temperature = row.temperature;
  params.top_k = row.top_k;
  params.top_p = row.top_p;
  params.min_p = row.min_p;
  params.repetition_penalty = row.repetition_penalty;
  params.presence_penalty = row.presence_penalty;
  params.frequency_penalty = row.frequency_penalty;
  params.seed = row.seed;
  params.logprobs = row.num_top_logprobs;
  return params;
}

void sample_batch_on_host(std::span<const float> logits, int64_t vocab, const SamplingBatch& batch, SampledBatch& out) {
  out.resize(batch.rows.size());
  std::vector<float> row_logits(static_cast<size_t>(vocab));
  const auto ids = [&](int32_t begin, int32_t end) {
    return batch.token_ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
  };
  for (size_t r = 0; r < batch.rows.size(); ++r) {
    const SamplingRow& row = batch.rows[r];
    // Several rows may read one logits row (n samples of a prompt): each works on its own copy.
    const auto source = logits.subspan(static_cast<size_t>(row.logits_row) * static_cast<size_t>(vocab),
                                       static_cast<size_t>(vocab));
    // One pass over the row (cheap next to the LM head that produced it). +inf counts too: the
    // softmax of a row with +inf is NaN.
    if (!std::all_of(source.begin(), source.end(), [](float x) { return std::isfinite(x); })) {
      out.tokens[r] = kInvalidToken;
      out.logprobs[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    std::copy(source.begin(), source.end(), row_logits.begin());
    const SampledToken t = sample(row_logits, params_of(row), ids(row.prompt_begin, row.prompt_end),
                                  ids(row.prompt_end, row.output_end), ids(row.masked_begin, row.masked_end),
                                  RandomKey{row.seed, row.sample_index, row.position});
    out.tokens[r] = t.token;
    out.logprobs[r] = t.logprob;
    for (size_t j = 0; j < t.top_logprobs.size(); ++j) {
      out.top_ids[r * kMaxLogprobs + j] = t.top_logprobs[j].first;
      out.top_logprobs[r * kMaxLogprobs + j] = t.top_logprobs[j].second;
    }
  }
}

}  // namespace iol::sampling
