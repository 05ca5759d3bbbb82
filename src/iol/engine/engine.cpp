#include "iol/engine/engine.hpp"

#include <algorithm>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"

namespace iol::engine {

Engine::Engine(const EngineConfig& config, backend::Backend& backend, const model::ModelConfig& model_config,
               const tokenizer::Vocabulary* vocabulary)
    : config_(config),
      backend_(backend),
      model_config_(model_config),
      vocabulary_(vocabulary),
      block_manager_(config.num_kv_blocks, config.block_size,
                     config.enable_prefix_caching && config.kv_layout == KvLayout::Paged),
      scheduler_(config_, block_manager_),
      batch_builder_(config.block_size, config.max_num_batched_tokens, config.max_num_seqs) {
  config_.validate();
  if (backend.vocab_size() != model_config.vocab_size)
    fail("engine: backend vocabulary {} differs from the model's {}", backend.vocab_size(), model_config.vocab_size);
  const auto& kv = backend.kv_cache_shape();
  if (kv.num_blocks != config_.num_kv_blocks || kv.block_size != config_.block_size)
    fail("engine: backend KV cache has {} blocks of {} tokens, engine expects {} of {}", kv.num_blocks, kv.block_size,
         config_.num_kv_blocks, config_.block_size);
}

RequestId Engine::add_request(std::vector<int32_t> prompt_ids, const sampling::SamplingParams& params,
                              OutputCallback on_output) {
  const int64_t vocab = backend_.vocab_size();
  params.validate(vocab);
  if (params.n > config_.max_num_seqs)
    fail("request rejected: n = {} parallel samples exceed max_num_seqs {} (each sample is a running sequence)",
         params.n, config_.max_num_seqs);
  if (prompt_ids.empty()) fail("request rejected: the prompt is empty");
  for (auto id : prompt_ids)
    if (id < 0 || id >= vocab) fail("request rejected: prompt token id {} is outside the vocabulary [0, {})", id, vocab);
  const int64_t total = static_cast<int64_t>(prompt_ids.size()) + params.max_tokens;
  if (total > config_.max_model_len)
    fail("request rejected: prompt ({} tokens) + max_tokens ({}) = {} exceeds the maximum model length {}",
         prompt_ids.size(), params.max_tokens, total, config_.max_model_len);
  if (ceil_div(total, config_.block_size) > config_.num_kv_blocks)
    fail("request rejected: {} tokens need more KV blocks than the pool has ({} × {} tokens)", total,
         config_.num_kv_blocks, config_.block_size);
  if (!config_.enable_chunked_prefill && static_cast<int64_t>(prompt_ids.size()) + params.max_tokens > config_.max_num_batched_tokens)
    fail("request rejected: without chunked prefill, prompt + output ({} tokens) must fit max_num_batched_tokens {} "
         "(a preempted request is recomputed in one step)", total, config_.max_num_batched_tokens);
  if (!params.stop.empty() && !vocabulary_) fail("request rejected: stop strings need a tokenizer to decode text");

  if (params.n > 1 && config_.kv_layout == KvLayout::Contiguous)
    fail("request rejected: parallel sampling (n = {}) shares KV blocks, which the contiguous layout does not", params.n);
  const RequestId id = next_id_++;
  std::vector<int32_t> eos;
  for (auto e : model_config_.eos_token_ids) eos.push_back(static_cast<int32_t>(e));
  auto sequence = std::make_unique<Sequence>(id, std::move(prompt_ids), params, std::move(eos), vocabulary_, now(),
                                             block_manager_.prefix_caching() ? config_.block_size : 0);
  std::lock_guard lock(incoming_mutex_);
  incoming_.push_back({std::move(sequence), std::move(on_output)});
  ++num_unfinished_;
  return id;
}

void Engine::abort_request(RequestId id) {
  std::lock_guard lock(incoming_mutex_);
  incoming_aborts_.push_back(id);
}

bool Engine::has_unfinished() const { return num_unfinished_.load() > 0; }

void Engine::drain_incoming() {
  std::vector<Entry> arrived;
  std::vector<RequestId> aborts;
  {
    std::lock_guard lock(incoming_mutex_);
    arrived.swap(incoming_);
    aborts.swap(incoming_aborts_);
  }
  for (auto& entry : arrived) {
    Sequence* sequence = entry.sequence.get();
    live_.emplace(key_of(sequence->id(), 0), std::move(entry));
    scheduler_.add(sequence);
  }
  for (RequestId id : aborts) {
    bool aborted = false;
    for (int32_t sample = 0; sample < sampling::kMaxParallelSamples; ++sample) {
      auto it = live_.find(key_of(id, sample));
      if (it == live_.end()) continue;
      Sequence& sequence = *it->second.sequence;
      scheduler_.abort(&sequence);
      sequence.abort(now());
      if (it->second.on_output) it->second.on_output({id, sample, -1, {}, true, sequence});
      --num_unfinished_;
      live_.erase(it);
      aborted = true;
    }
    stats_.num_aborted += aborted ? 1 : 0;
  }
}

void Engine::step() {
  drain_incoming();
  SchedulerOutput scheduled = scheduler_.schedule(now());
  stats_.num_preemptions += scheduled.num_preempted;
  // KV usage is read once the step's blocks are allocated, before finished sequences free theirs.
  const int64_t used = block_manager_.num_blocks() - block_manager_.num_free_blocks();
  stats_.peak_used_blocks = std::max(stats_.peak_used_blocks, used);
  stats_.sum_used_blocks += used;
  if (!scheduled.scheduled.empty()) run_batch(scheduled);
  ++stats_.num_steps;
}

void Engine::run_batch(const SchedulerOutput& out) {
  // Schedule is done; now execute: who draws from which logits row. A request with n > 1 forks
  // its samples when its prompt completes: they share its blocks and each draws its first token
  // from the same logits row, with its own sample index.
  step_samplers_.resize(out.scheduled.size());
  for (size_t i = 0; i < out.scheduled.size(); ++i) {
    step_samplers_[i].clear();
    const ScheduledSequence& s = out.scheduled[i];
    if (!s.needs_logits) continue;
    if (s.sequence->will_fork()) {
      step_samplers_[i] = fork_samples(*s.sequence);
      // The samples hold the prompt's K/V once this step has run (the parent's update follows).
      for (size_t k = 1; k < step_samplers_[i].size(); ++k)
        step_samplers_[i][k]->num_computed_tokens = s.sequence->num_computed_tokens + s.num_new_tokens;
    } else {
      step_samplers_[i].push_back(s.sequence);
    }
  }
  batch_builder_.build(out.scheduled, std::span(step_samplers_.data(), out.scheduled.size()));
  if (!out.block_copies.empty()) backend_.copy_blocks(out.block_copies);
  backend_.execute(batch_builder_.forward_batch(), batch_builder_.sampling_batch(), sampled_);

  // Update from the output.
  for (const auto& s : out.scheduled) {
    Sequence& seq = *s.sequence;
    seq.num_computed_tokens += s.num_new_tokens;
    block_manager_.commit_full_blocks(seq.token_ids(), seq.block_hashes(), seq.num_computed_tokens, seq.block_table,
                                      seq.num_committed_blocks);
  }
  stats_.peak_num_running = std::max(stats_.peak_num_running, static_cast<int64_t>(scheduler_.num_running()));
  const double t = now();
  const auto rows = batch_builder_.row_sequences();
  for (size_t row = 0; row < rows.size(); ++row) {
    Sequence* seq = rows[row];
    if (seq->finished()) continue;  // an earlier row of this step failed it
    // The sampler writes an id outside the vocabulary (kInvalidToken) when the row's logits held
    // NaN or Inf: that request fails with the reason, the others in the batch continue.
    if (sampled_.tokens[row] < 0 || sampled_.tokens[row] >= model_config_.vocab_size) {
      auto it = live_.find(key_of(seq->id(), seq->sample_index()));
      seq->fail_request(fmt::format("request {}: the model produced non-finite logits (NaN or Inf) at position {}; "
                                    "check the weights for NaN/Inf values", seq->id(), seq->num_tokens()), t);
      if (it->second.on_output) it->second.on_output({seq->id(), seq->sample_index(), -1, {}, true, *seq});
      scheduler_.finish(seq);
      ++stats_.num_failed;
      --num_unfinished_;
      live_.erase(it);
      continue;
    }
    sampling::SampledToken token;
    token.token = sampled_.tokens[row];
    token.logprob = sampled_.logprobs[row];
    for (int32_t j = 0; j < seq->params().logprobs; ++j)
      token.top_logprobs.emplace_back(sampled_.top_ids[row * sampling::kMaxLogprobs + static_cast<size_t>(j)],
                                      sampled_.top_logprobs[row * sampling::kMaxLogprobs + static_cast<size_t>(j)]);
    std::string delta = seq->append_token(std::move(token), t);
    auto it = live_.find(key_of(seq->id(), seq->sample_index()));
    if (it->second.on_output)
      it->second.on_output({seq->id(), seq->sample_index(), seq->token_ids().back(), delta, seq->finished(), *seq});
    if (seq->finished()) {
      scheduler_.finish(seq);
      ++stats_.num_finished;
      --num_unfinished_;
      live_.erase(it);
    }
  }
}

void Engine::reset_peak_stats() {
  stats_.peak_num_running = 0;
  stats_.peak_used_blocks = 0;
}

std::vector<Sequence*> Engine::fork_samples(Sequence& parent) {
  std::vector<Sequence*> samples = {&parent};
  OutputCallback callback = live_.at(key_of(parent.id(), 0)).on_output;
  for (int32_t i = 1; i < parent.params().n; ++i) {
    auto child = parent.fork(i);
    child->block_table = block_manager_.fork(parent.block_table);
    samples.push_back(child.get());
    scheduler_.add_running(child.get());
    live_.emplace(key_of(parent.id(), i), Entry{std::move(child), callback});
    ++num_unfinished_;
  }
  return samples;
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  s.blocks = block_manager_.stats();
  s.device = backend_.device_timeline();
  return s;
}

std::string Engine::check_invariants() const {
  if (std::string error = block_manager_.check_invariants(); !error.empty()) return error;
  // Every block's reference count equals the number of live block tables holding it.
  std::unordered_map<int32_t, int32_t> holders;
  for (const auto& [id, entry] : live_) {
    const Sequence& seq = *entry.sequence;
    for (int32_t block : seq.block_table) ++holders[block];
    const int64_t capacity = static_cast<int64_t>(seq.block_table.size()) * config_.block_size;
    if (seq.num_computed_tokens > capacity)
      return fmt::format("request {}: {} computed tokens but blocks for {}", id, seq.num_computed_tokens, capacity);
    if (seq.status == SequenceStatus::Waiting && !seq.block_table.empty())
      return fmt::format("request {} is waiting but holds blocks", id);
  }
  for (int32_t block = 0; block < block_manager_.num_blocks(); ++block) {
    auto it = holders.find(block);
    int32_t expected = it == holders.end() ? 0 : it->second;
    if (block_manager_.ref_count(block) != expected)
      return fmt::format("block {}: ref_count {} but held by {} sequences", block, block_manager_.ref_count(block), expected);
  }
  return {};
}

}  // namespace iol::engine
