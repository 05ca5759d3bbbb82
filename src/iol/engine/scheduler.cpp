#include "iol/engine/scheduler.hpp"

#include <algorithm>

#include "iol/core/error.hpp"

namespace iol::engine {

Scheduler::Scheduler(const EngineConfig& config, BlockManager& block_manager)
    : config_(config), block_manager_(block_manager) {}

void Scheduler::add(Sequence* sequence) { waiting_.push_back(sequence); }

void Scheduler::add_running(Sequence* sequence) {
  sequence->status = SequenceStatus::Running;
  running_.push_back(sequence);
}

int64_t Scheduler::shared_blocks_in_write_range(const Sequence& sequence, int64_t first, int64_t n) const {
  const int64_t block_size = block_manager_.block_size();
  const int64_t last = std::min<int64_t>((first + n - 1) / block_size, static_cast<int64_t>(sequence.block_table.size()) - 1);
  int64_t shared = 0;
  for (int64_t b = first / block_size; b <= last; ++b)
    shared += block_manager_.ref_count(sequence.block_table[static_cast<size_t>(b)]) > 1;
  return shared;
}

void Scheduler::make_write_range_private(Sequence& sequence, int64_t first, int64_t n, SchedulerOutput& out) {
  const int64_t block_size = block_manager_.block_size();
  for (int64_t b = first / block_size; b <= (first + n - 1) / block_size && b < static_cast<int64_t>(sequence.block_table.size()); ++b)
    if (auto copy = block_manager_.make_writable(sequence.block_table, b)) out.block_copies.push_back(*copy);
}

void Scheduler::reserve_lookahead_slots(int64_t& budget, SchedulerOutput& out) {
  const SpeculativeConfig& spec = config_.speculative;
  // A step that had to preempt is short of blocks: the victim's blocks are not for guesses.
  if (!spec.enabled() || out.num_preempted > 0) return;
  if (spec.disable_by_batch_size > 0 && static_cast<int64_t>(running_.size()) > spec.disable_by_batch_size) return;
  for (ScheduledSequence& s : out.scheduled) {
    Sequence& sequence = *s.sequence;
    // Only a decode (one new token whose logits are drawn from) speculates; a sequence about to
    // fork its parallel samples draws their first tokens from one row and does not.
    if (s.num_new_tokens != 1 || !s.needs_logits || sequence.will_fork() || budget <= 0) continue;
    // A step emits at most slots + 1 tokens, and never more than max_tokens allows.
    const int64_t first = sequence.num_computed_tokens + 1;
    int64_t slots = std::min({spec.num_speculative_tokens, budget,
                              static_cast<int64_t>(sequence.params().max_tokens) - sequence.num_output_tokens() - 1});
    const auto needed = [&](int64_t n) {
      return block_manager_.blocks_needed(static_cast<int64_t>(sequence.block_table.size()),
                                          reserved_tokens(sequence, first + n)) +
             shared_blocks_in_write_range(sequence, first, n);
    };
    while (slots > 0 && !block_manager_.can_allocate(needed(slots))) --slots;
    if (slots <= 0) continue;
    make_write_range_private(sequence, first, slots, out);
    block_manager_.allocate(sequence.block_table, reserved_tokens(sequence, first + slots));
    s.num_lookahead_slots = slots;
    budget -= slots;
  }
}

void Scheduler::release_lookahead(Sequence* sequence) {
  // The sequence now needs slots for its known tokens only (the last one is computed next step).
  block_manager_.truncate(sequence->block_table, reserved_tokens(*sequence, sequence->num_tokens()));
}

int64_t Scheduler::reserved_tokens(const Sequence&, int64_t num_tokens) const {
  // Contiguous layout: the whole max_model_len is reserved up front, whatever is used.
  return config_.kv_layout == KvLayout::Contiguous ? config_.max_model_len : num_tokens;
}

void Scheduler::preempt(Sequence* sequence) {
  running_.erase(std::find(running_.begin(), running_.end(), sequence));
  block_manager_.free(sequence->block_table);
  sequence->num_computed_tokens = 0;
  sequence->num_committed_blocks = 0;
  sequence->status = SequenceStatus::Waiting;
  ++sequence->num_preemptions;
  waiting_.push_front(sequence);
}

int64_t Scheduler::lifetime_blocks(const Sequence& sequence) const {
  const int64_t block_size = block_manager_.block_size();
  const int64_t max_tokens = sequence.params().max_tokens;
  const int64_t last = std::min<int64_t>(config_.max_model_len, sequence.num_prompt_tokens() + max_tokens);
  int64_t blocks = block_manager_.blocks_needed(0, reserved_tokens(sequence, last));
  // Each fork copies the last partial prompt block and then grows its own outputs.
  if (sequence.will_fork()) blocks += (sequence.params().n - 1) * ((max_tokens + block_size - 1) / block_size + 1);
  return blocks;
}

bool Scheduler::try_admit(Sequence* sequence, int64_t& budget, SchedulerOutput& out, double now,
                          int64_t& growth_reserve) {
  std::vector<int32_t> cached = block_manager_.find_cached_prefix(sequence->token_ids(), sequence->block_hashes());
  const int64_t cached_tokens = static_cast<int64_t>(cached.size()) * block_manager_.block_size();
  const int64_t remaining = sequence->num_tokens() - cached_tokens;
  const int64_t n = std::min(remaining, budget);
  if (n < remaining && !config_.enable_chunked_prefill) return false;
  // Cached blocks nobody references come out of the free pool too.
  int64_t needed = block_manager_.blocks_needed(static_cast<int64_t>(cached.size()),
                                                reserved_tokens(*sequence, cached_tokens + n));
  int64_t unreferenced_cached = 0;
  for (int32_t block : cached) unreferenced_cached += block_manager_.ref_count(block) == 0 ? 1 : 0;
  needed += unreferenced_cached;
  if (!block_manager_.can_allocate(needed)) return false;
  const bool no_evict = config_.scheduler_policy == SchedulerPolicy::GuaranteedNoEvict;
  // Its whole life beside the others' growth; a lone sequence runs whatever it may need (there
  // is nothing to wait for, and the pool may be smaller than its worst case).
  const int64_t whole_life = no_evict ? lifetime_blocks(*sequence) : 0;
  const int64_t lifetime = whole_life - static_cast<int64_t>(cached.size()) + unreferenced_cached;
  if (no_evict && !running_.empty() && !block_manager_.can_allocate(growth_reserve + std::max(needed, lifetime)))
    return false;

  const int64_t taken = block_manager_.take_cached_prefix(sequence->token_ids(), sequence->block_hashes(), sequence->block_table);
  // Blocks taken from the cache are registered already.
  sequence->num_committed_blocks = taken / block_manager_.block_size();
  block_manager_.allocate(sequence->block_table, reserved_tokens(*sequence, taken + n));
  sequence->num_computed_tokens = taken;
  if (sequence->num_preemptions == 0) sequence->num_cached_prompt_tokens = taken;
  sequence->status = SequenceStatus::Running;
  if (sequence->timestamps.first_scheduled < 0) sequence->timestamps.first_scheduled = now;
  running_.push_back(sequence);
  out.scheduled.push_back({sequence, n, taken + n == sequence->num_tokens()});
  budget -= n;
  if (no_evict) growth_reserve += std::max<int64_t>(0, whole_life - static_cast<int64_t>(sequence->block_table.size()));
  return true;
}

SchedulerOutput Scheduler::schedule(double now) {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;
  const bool batch_open = config_.batching == BatchingMode::InFlight || running_.empty();

  // 1. Running sequences, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* sequence = running_[i];
    const int64_t remaining = sequence->num_tokens() - sequence->num_computed_tokens;
    const int64_t n = std::min(remaining, budget);
    if (n < remaining && !config_.enable_chunked_prefill) {
      ++i;
      continue;
    }
    const int64_t target = reserved_tokens(*sequence, sequence->num_computed_tokens + n);
    bool preempted_self = false;
    while (!block_manager_.can_allocate(
        block_manager_.blocks_needed(static_cast<int64_t>(sequence->block_table.size()), target) +
        shared_blocks_in_write_range(*sequence, sequence->num_computed_tokens, n))) {
      Sequence* victim = running_.back();
      preempt(victim);
      ++out.num_preempted;
      if (victim == sequence) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;
    // Copy-on-write: blocks this step writes into must be this sequence's alone.
    make_write_range_private(*sequence, sequence->num_computed_tokens, n, out);
    block_manager_.allocate(sequence->block_table, target);
    out.scheduled.push_back({sequence, n, sequence->num_computed_tokens + n == sequence->num_tokens()});
    budget -= n;
    ++i;
  }

  reserve_lookahead_slots(budget, out);

  // 2. Waiting sequences, in order; none while this step had to preempt.
  if (batch_open && out.num_preempted == 0) {
    // Every sequence holds a seat of max_num_seqs (buffers and CUDA graphs are sized by it); a
    // request that will fork n parallel samples holds n from admission on.
    auto seats = [](const Sequence* s) -> int64_t { return s->will_fork() ? s->params().n : 1; };
    int64_t seats_taken = 0;
    int64_t growth_reserve = 0;  // GuaranteedNoEvict: blocks the running sequences may still take
    for (const Sequence* s : running_) {
      seats_taken += seats(s);
      if (config_.scheduler_policy == SchedulerPolicy::GuaranteedNoEvict)
        growth_reserve += std::max<int64_t>(0, lifetime_blocks(*s) - static_cast<int64_t>(s->block_table.size()));
    }
    while (!waiting_.empty() && budget > 0 && seats_taken + seats(waiting_.front()) <= config_.max_num_seqs) {
      seats_taken += seats(waiting_.front());
      if (!try_admit(waiting_.front(), budget, out, now, growth_reserve)) break;
      waiting_.pop_front();
    }
  }
  for (const auto& s : out.scheduled) out.num_batched_tokens += s.num_new_tokens + s.num_lookahead_slots;
  return out;
}

void Scheduler::finish(Sequence* sequence) {
  auto it = std::find(running_.begin(), running_.end(), sequence);
  if (it != running_.end()) running_.erase(it);
  block_manager_.free(sequence->block_table);
}

void Scheduler::abort(Sequence* sequence) {
  auto waiting = std::find(waiting_.begin(), waiting_.end(), sequence);
  if (waiting != waiting_.end()) waiting_.erase(waiting);
  finish(sequence);
}

}  // namespace iol::engine
