// Scheduler: decides, at every step, which sequences run and how many of their tokens, within
// the token budget (max_num_batched_tokens), max_num_seqs and the KV pool. Running sequences go
// first (decodes and unfinished prefill chunks, oldest first); when blocks run out the most
// recently admitted running sequence is preempted (recompute: its blocks are freed and it is
// requeued first). Waiting sequences are admitted while budget, seats and blocks allow; under
// SchedulerPolicy::GuaranteedNoEvict only while the blocks of their whole life fit beside the
// running sequences' remaining growth, so that preemption does not happen.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "iol/engine/block_manager.hpp"
#include "iol/engine/engine_config.hpp"
#include "iol/engine/sequence.hpp"

namespace iol::engine {

struct ScheduledSequence {
  Sequence* sequence;
  int64_t num_new_tokens;  // tokens computed this step, from sequence->num_computed_tokens on
  bool needs_logits;       // the step completes the sequence's known tokens: sample next
  // Speculative decoding: KV slots reserved past the new tokens for proposals the target
  // verifies this step (positions num_computed_tokens + num_new_tokens onward).
  int64_t num_lookahead_slots = 0;
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;
  std::vector<std::pair<int32_t, int32_t>> block_copies;  // copy-on-write, {source, destination}
  int64_t num_preempted = 0;
  int64_t num_batched_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(const EngineConfig& config, BlockManager& block_manager);

  void add(Sequence* sequence);
  // A parallel sample forked from a running sequence: runs at once (it already holds blocks).
  void add_running(Sequence* sequence);
  SchedulerOutput schedule(double now);
  // After the step: finished sequences leave and free their blocks.
  void finish(Sequence* sequence);
  // Removes a waiting or running sequence and frees its blocks.
  void abort(Sequence* sequence);
  // After a speculative step: frees the blocks that only rejected proposals' slots needed.
  void release_lookahead(Sequence* sequence);

  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }

 private:
  void preempt(Sequence* sequence);
  // growth_reserve: GuaranteedNoEvict's blocks kept for the running sequences' remaining growth
  // (grown by what this admission will still need); unused under MaxUtilization.
  bool try_admit(Sequence* sequence, int64_t& budget, SchedulerOutput& out, double now, int64_t& growth_reserve);
  int64_t reserved_tokens(const Sequence& sequence, int64_t num_tokens) const;
  // Blocks the sequence would hold at the end of its life: prompt + max_tokens (capped at
  // max_model_len), and the outputs of the parallel samples it will fork.
  int64_t lifetime_blocks(const Sequence& sequence) const;
  // Blocks the n tokens from position `first` on will be written into that other sequences share.
  int64_t shared_blocks_in_write_range(const Sequence& sequence, int64_t first, int64_t n) const;
  // Copy-on-write: gives the sequence private copies of the shared blocks in that range.
  void make_write_range_private(Sequence& sequence, int64_t first, int64_t n, SchedulerOutput& out);
  // Speculative decoding: lookahead slots for the running decodes, from the budget and free
  // blocks left after every running sequence has its token (speculation never preempts, and a
  // step that preempted does not speculate).
  void reserve_lookahead_slots(int64_t& budget, SchedulerOutput& out);

  const EngineConfig& config_;
  BlockManager& block_manager_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // admission order
};

}  // namespace iol::engine
