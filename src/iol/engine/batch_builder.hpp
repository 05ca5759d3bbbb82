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
  void build(std::span<const ScheduledSequence> scheduled, std::span<const std::vector<Sequence*>> samplers);

  backend::ForwardBatch forward_batch() const;
  sampling::SamplingBatch sampling_batch() const { return {rows_, sampling_token_ids_}; }
  // The sequence of each sampling row.
  std::span<Sequence* const> row_sequences() const { return row_sequences_; }

 private:
  void add_sampling_row(Sequence& sequence, int32_t logits_row);

  int64_t block_size_;
  int32_t max_blocks_ = 0;
  std::vector<int32_t> token_ids_, positions_, query_start_loc_, context_lens_, block_tables_, logits_indices_;
  std::vector<int64_t> slot_mapping_;
  std::vector<sampling::SamplingRow> rows_;
  std::vector<int32_t> sampling_token_ids_;
  std::vector<Sequence*> row_sequences_;
};

}  // namespace iol::engine
