#include "iol/engine/batch_builder.hpp"

#include <algorithm>

namespace iol::engine {

BatchBuilder::BatchBuilder(int64_t block_size, int64_t max_num_batched_tokens, int64_t max_num_seqs)
    : block_size_(block_size) {
  const auto tokens = static_cast<size_t>(max_num_batched_tokens), seqs = static_cast<size_t>(max_num_seqs);
  token_ids_.reserve(tokens);
  positions_.reserve(tokens);
  slot_mapping_.reserve(tokens);
  query_start_loc_.reserve(seqs + 1);
  context_lens_.reserve(seqs);
  logits_indices_.reserve(seqs);
  rows_.reserve(seqs);
  row_sequences_.reserve(seqs);
}

void BatchBuilder::build(std::span<const ScheduledSequence> scheduled, std::span<const std::vector<Sequence*>> samplers,
                         std::span<const std::span<const int32_t>> proposals, std::span<const int32_t> draft_probs_rows,
                         std::span<const float> draft_probs) {
  draft_probs_ = draft_probs;
  token_ids_.clear();
  positions_.clear();
  slot_mapping_.clear();
  query_start_loc_.assign(1, 0);
  context_lens_.clear();
  block_tables_.clear();
  logits_indices_.clear();
  rows_.clear();
  sampling_token_ids_.clear();
  row_sequences_.clear();

  size_t max_blocks = 0;
  for (const auto& s : scheduled) max_blocks = std::max(max_blocks, s.sequence->block_table.size());
  max_blocks_ = static_cast<int32_t>(max_blocks);
  for (size_t i = 0; i < scheduled.size(); ++i) {
    const ScheduledSequence& s = scheduled[i];
    const Sequence& seq = *s.sequence;
    const std::vector<int32_t>& ids = seq.token_ids();
    const std::span<const int32_t> proposed = i < proposals.size() ? proposals[i] : std::span<const int32_t>();
    const int64_t end = seq.num_computed_tokens + s.num_new_tokens;
    for (int64_t p = seq.num_computed_tokens; p < end + static_cast<int64_t>(proposed.size()); ++p) {
      token_ids_.push_back(p < end ? ids[static_cast<size_t>(p)] : proposed[static_cast<size_t>(p - end)]);
      positions_.push_back(static_cast<int32_t>(p));
      slot_mapping_.push_back(static_cast<int64_t>(seq.block_table[static_cast<size_t>(p / block_size_)]) * block_size_ +
                              p % block_size_);
    }
    query_start_loc_.push_back(static_cast<int32_t>(token_ids_.size()));
    context_lens_.push_back(static_cast<int32_t>(end + static_cast<int64_t>(proposed.size())));
    block_tables_.insert(block_tables_.end(), seq.block_table.begin(), seq.block_table.end());
    block_tables_.resize(block_tables_.size() + max_blocks - seq.block_table.size(), -1);
    if (!proposed.empty()) {
      // A verified run: the positions of the new token and of every proposal but the last draw
      // (verify) the token after them; the last proposal's position draws the bonus token.
      const int32_t q_row = i < draft_probs_rows.size() ? draft_probs_rows[i] : -1;
      const auto first = static_cast<int32_t>(token_ids_.size() - proposed.size()) - 1;
      for (size_t j = 0; j <= proposed.size(); ++j) {
        const auto logits_row = static_cast<int32_t>(logits_indices_.size());
        logits_indices_.push_back(first + static_cast<int32_t>(j));
        const bool bonus = j == proposed.size();
        add_sampling_row(*s.sequence, logits_row, static_cast<int64_t>(j), proposed.first(j), bonus ? -1 : proposed[j],
                         bonus || q_row < 0 ? -1 : q_row + static_cast<int32_t>(j));
      }
    } else if (!samplers[i].empty()) {
      const auto logits_row = static_cast<int32_t>(logits_indices_.size());
      logits_indices_.push_back(static_cast<int32_t>(token_ids_.size()) - 1);
      for (Sequence* sampler : samplers[i]) add_sampling_row(*sampler, logits_row);
    }
  }
}

void BatchBuilder::add_sampling_row(Sequence& sequence, int32_t logits_row, int64_t run_offset,
                                    std::span<const int32_t> proposed_before, int32_t proposed_token,
                                    int32_t draft_probs_row) {
  const sampling::SamplingParams& p = sequence.params();
  sampling::SamplingRow row;
  row.logits_row = logits_row;
  row.temperature = p.temperature;
  row.top_k = p.top_k;
  row.top_p = p.top_p;
  row.min_p = p.min_p;
  row.repetition_penalty = p.repetition_penalty;
  row.presence_penalty = p.presence_penalty;
  row.frequency_penalty = p.frequency_penalty;
  row.seed = sequence.seed();
  row.sample_index = static_cast<uint32_t>(sequence.sample_index());
  row.position = static_cast<uint32_t>(sequence.num_output_tokens() + run_offset);
  row.proposed_token = proposed_token;
  row.draft_probs_row = draft_probs_row;
  row.num_top_logprobs = p.logprobs;
  // Token lists only where a penalty needs them: a request without penalties costs no host work
  // proportional to its context.
  const auto offset = [&] { return static_cast<int32_t>(sampling_token_ids_.size()); };
  row.prompt_begin = offset();
  if (row.has_penalties()) {
    const auto prompt = sequence.prompt_ids();
    sampling_token_ids_.insert(sampling_token_ids_.end(), prompt.begin(), prompt.end());
  }
  row.prompt_end = offset();
  if (row.has_penalties()) {
    const auto output = sequence.output_ids();
    sampling_token_ids_.insert(sampling_token_ids_.end(), output.begin(), output.end());
    sampling_token_ids_.insert(sampling_token_ids_.end(), proposed_before.begin(), proposed_before.end());
  }
  row.output_end = offset();
  const auto masked = sequence.masked_token_ids_at(sequence.num_output_tokens() + run_offset);
  row.masked_begin = offset();
  sampling_token_ids_.insert(sampling_token_ids_.end(), masked.begin(), masked.end());
  row.masked_end = offset();
  rows_.push_back(row);
  row_sequences_.push_back(&sequence);
}

backend::ForwardBatch BatchBuilder::forward_batch() const {
  return {token_ids_, positions_, slot_mapping_, query_start_loc_, context_lens_, block_tables_, max_blocks_,
          logits_indices_};
}

}  // namespace iol::engine
