// BatchBuilder: turns the scheduler's decision into the backend's step input — the ForwardBatch
// (token ids, positions, slot_mapping, block tables) and one SamplingRow per token to draw.
// Its buffers live across steps, so once a run has seen its largest step nothing is allocated.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "iol/backend/forward_batch.hpp"
#include "iol/engine/scheduler.hpp"
#include "iol/engine/sequence.hpp"
#include "iol/sampling/sampling_batch.hpp"

namespace iol::engine {

class BatchBuilder {
 public:
  BatchBuilder(int64_t block_size, int64_t max_num_batched_tokens, int64_t max_num_seqs);

  // `samplers[i]` are the sequences drawing from scheduled sequence i's logits (empty when the
  // step does not complete its known tokens; several for a request forking n samples).
  // Speculative decoding: `proposals[i]` (empty or absent: none) are tokens proposed for
  // scheduled sequence i, a decode with lookahead slots for them. They follow its new token in the
  // forward, each position gets a logits row, and the sequence gets one sampling row per position
  // (docs/speculative.md). `draft_probs_rows[i]` is the row of `draft_probs` holding q of its first
  // proposal (-1 or absent: deterministic proposals).
  void build(std::span<const ScheduledSequence> scheduled, std::span<const std::vector<Sequence*>> samplers,
             std::span<const std::span<const int32_t>> proposals = {}, std::span<const int32_t> draft_probs_rows = {},
             std::span<const float> draft_probs = {});

  backend::ForwardBatch forward_batch() const;
  sampling::SamplingBatch sampling_batch() const { return {rows_, sampling_token_ids_, draft_probs_}; }
  // The sequence of each sampling row.
  std::span<Sequence* const> row_sequences() const { return row_sequences_; }

 private:
  // Row `offset` of a speculative run (0 for a plain row) draws output token
  // num_output_tokens() + offset, after `proposed_before` (the run's earlier proposals).
  void add_sampling_row(Sequence& sequence, int32_t logits_row, int64_t run_offset = 0,
                        std::span<const int32_t> proposed_before = {}, int32_t proposed_token = -1,
                        int32_t draft_probs_row = -1);

  int64_t block_size_;
  int32_t max_blocks_ = 0;
  std::vector<int32_t> token_ids_, positions_, query_start_loc_, context_lens_, block_tables_, logits_indices_;
  std::vector<int64_t> slot_mapping_;
  std::vector<sampling::SamplingRow> rows_;
  std::vector<int32_t> sampling_token_ids_;
  std::vector<Sequence*> row_sequences_;
  std::span<const float> draft_probs_;
};

}  // namespace iol::engine
