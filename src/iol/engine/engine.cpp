#include "iol/engine/engine.hpp"

#include <algorithm>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"
#include "iol/sampling/batch_sampler.hpp"
#include "iol/spec/ngram_proposer.hpp"

namespace iol::engine {

Engine::Engine(const EngineConfig& config, backend::Backend& backend, const model::ModelConfig& model_config,
               const tokenizer::Vocabulary* vocabulary, std::unique_ptr<spec::Proposer> proposer)
    : config_(config),
      backend_(backend),
      model_config_(model_config),
      vocabulary_(vocabulary),
      block_manager_(config.num_kv_blocks, config.block_size,
                     config.enable_prefix_caching && config.kv_layout == KvLayout::Paged),
      scheduler_(config_, block_manager_),
      batch_builder_(config.block_size, config.max_num_batched_tokens, config.max_num_seqs),
      proposer_(std::move(proposer)) {
  config_.validate();
  const SpeculativeConfig& spec = config_.speculative;
  if (spec.enabled()) {
    if (!backend.supports_speculative_decoding())
      fail("engine: speculative decoding (--speculative-method {}) is not supported by the {} backend yet; "
           "use --backend cpu or run without speculation", speculative_method_name(spec.method), backend.name());
    if (!proposer_ && spec.method == SpeculativeMethod::Ngram)
      proposer_ = std::make_unique<spec::NgramProposer>(spec.prompt_lookup_min, spec.prompt_lookup_max);
    if (!proposer_) fail("engine: --speculative-method draft needs a draft model (--speculative-model)");
  }
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
      if (proposer_) proposer_->release(static_cast<uint64_t>(key_of(id, sample)));
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

void Engine::propose(const SchedulerOutput& out) {
  proposal_spans_.assign(out.scheduled.size(), {});
  draft_probs_rows_.assign(out.scheduled.size(), -1);
  proposal_requests_.clear();
  for (const ScheduledSequence& s : out.scheduled) {
    if (s.num_lookahead_slots == 0) continue;
    const Sequence& seq = *s.sequence;
    proposal_requests_.push_back({static_cast<uint64_t>(key_of(seq.id(), seq.sample_index())), seq.token_ids(),
                                  seq.num_prompt_tokens(), static_cast<int32_t>(s.num_lookahead_slots), &seq.params(),
                                  seq.seed(), static_cast<uint32_t>(seq.sample_index()), seq.stop_token_ids()});
  }
  proposals_.clear();
  if (proposal_requests_.empty()) return;
  const double start = now();
  proposer_->propose(proposal_requests_, proposals_);
  stats_.speculative.draft_seconds += now() - start;
  const bool sampled_q = !proposals_.probs.empty();
  for (size_t i = 0, request = 0; i < out.scheduled.size(); ++i) {
    if (out.scheduled[i].num_lookahead_slots == 0) continue;
    proposal_spans_[i] = proposals_.of(request);
    if (sampled_q) draft_probs_rows_[i] = proposals_.offsets[request];
    ++request;
    stats_.speculative.num_proposed_tokens += static_cast<int64_t>(proposal_spans_[i].size());
    stats_.speculative.num_speculative_steps += proposal_spans_[i].empty() ? 0 : 1;
  }
}

void Engine::retire(Sequence& sequence) {
  scheduler_.finish(&sequence);
  if (proposer_) proposer_->release(static_cast<uint64_t>(key_of(sequence.id(), sequence.sample_index())));
  --num_unfinished_;
  retired_.push_back(key_of(sequence.id(), sequence.sample_index()));
}

void Engine::run_batch(const SchedulerOutput& out) {
  const double step_start = now();
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
  // Speculative decoding: proposals for the sequences given lookahead slots, verified in the
  // same forward as their new token.
  propose(out);
  batch_builder_.build(out.scheduled, std::span(step_samplers_.data(), out.scheduled.size()), proposal_spans_,
                       draft_probs_rows_, proposals_.probs);
  if (!out.block_copies.empty()) backend_.copy_blocks(out.block_copies);
  sampling::SamplingBatch sampling_batch = batch_builder_.sampling_batch();
  sampling_batch.forced_acceptance = config_.speculative.forced_acceptance;
  backend_.execute(batch_builder_.forward_batch(), sampling_batch, sampled_);

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
  const auto sampling_rows = batch_builder_.sampling_batch().rows;
  for (size_t row = 0; row < rows.size(); ++row) {
    Sequence* seq = rows[row];
    // An earlier row of this step ended it (a failure, or a stop inside a speculative run), or
    // the verifier rejected an earlier proposal of its run.
    if (seq->finished() || sampled_.tokens[row] == sampling::kNotEmitted) continue;
    // The sampler writes an id outside the vocabulary (kInvalidToken) when the row's logits held
    // NaN or Inf: that request fails with the reason, the others in the batch continue.
    if (sampled_.tokens[row] < 0 || sampled_.tokens[row] >= model_config_.vocab_size) {
      auto it = live_.find(key_of(seq->id(), seq->sample_index()));
      seq->fail_request(fmt::format("request {}: the model produced non-finite logits (NaN or Inf) at position {}; "
                                    "check the weights for NaN/Inf values", seq->id(), seq->num_tokens()), t);
      if (it->second.on_output) it->second.on_output({seq->id(), seq->sample_index(), -1, {}, true, *seq});
      ++stats_.num_failed;
      retire(*seq);
      continue;
    }
    if (sampling_rows[row].is_proposal() && sampled_.tokens[row] == sampling_rows[row].proposed_token)
      ++stats_.speculative.num_accepted_tokens;
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
      ++stats_.num_finished;
      retire(*seq);
    }
  }
  // A verified run computed the K/V of the new token and of every proposal; those accepted are
  // now the sequence's tokens, so all but the last emitted token are computed. The slots of the
  // rejected ones are given back (their stale K/V is overwritten when those positions recur).
  for (size_t i = 0; i < out.scheduled.size(); ++i) {
    Sequence& seq = *out.scheduled[i].sequence;
    if (out.scheduled[i].num_lookahead_slots == 0 || seq.finished()) continue;
    seq.num_computed_tokens = seq.num_tokens() - 1;
    block_manager_.commit_full_blocks(seq.token_ids(), seq.block_hashes(), seq.num_computed_tokens, seq.block_table,
                                      seq.num_committed_blocks);
    scheduler_.release_lookahead(&seq);
  }
  for (int64_t key : retired_) live_.erase(key);
  retired_.clear();
  stats_.speculative.step_seconds += now() - step_start;
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
