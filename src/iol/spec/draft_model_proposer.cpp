#include "iol/spec/draft_model_proposer.hpp"

#include <algorithm>
#include <cmath>

#include "iol/core/error.hpp"
#include "iol/core/philox.hpp"
#include "iol/sampling/sampler.hpp"

namespace iol::spec {

DraftModelProposer::DraftModelProposer(std::shared_ptr<backend::Backend> draft, int64_t target_vocab_size,
                                       int64_t max_tokens_per_forward)
    : draft_(std::move(draft)),
      vocab_(target_vocab_size),
      block_size_(draft_->kv_cache_shape().block_size),
      max_tokens_per_forward_(max_tokens_per_forward) {
  if (draft_->vocab_size() != target_vocab_size)
    fail("--speculative-model: the draft's vocabulary has {} tokens, the target's {}; a draft must share the "
         "target's tokenizer", draft_->vocab_size(), target_vocab_size);
  for (auto b = static_cast<int32_t>(draft_->kv_cache_shape().num_blocks) - 1; b >= 0; --b) free_blocks_.push_back(b);
}

void DraftModelProposer::free_state(State& state) {
  free_blocks_.insert(free_blocks_.end(), state.block_table.rbegin(), state.block_table.rend());
  state.block_table.clear();
  state.cached_tokens.clear();
}

void DraftModelProposer::release(uint64_t key) {
  auto it = states_.find(key);
  if (it == states_.end()) return;
  free_state(it->second);
  states_.erase(it);
}

bool DraftModelProposer::reserve(State& state, int64_t num_tokens) {
  const auto needed = [&] {
    return std::max<int64_t>(0, (num_tokens + block_size_ - 1) / block_size_ - static_cast<int64_t>(state.block_table.size()));
  };
  // Sequences not proposed for in this call (preempted, or past the batch-size switch) give
  // their draft cache back first; they rebuild it when they speculate again.
  for (auto it = states_.begin(); it != states_.end() && needed() > static_cast<int64_t>(free_blocks_.size()); ++it)
    if (&it->second != &state && it->second.last_step != step_) free_state(it->second);
  if (needed() > static_cast<int64_t>(free_blocks_.size())) return false;
  for (int64_t n = needed(); n > 0; --n) {
    state.block_table.push_back(free_blocks_.back());
    free_blocks_.pop_back();
  }
  return true;
}

void DraftModelProposer::propose(std::span<const ProposalRequest> requests, ProposalBatch& out) {
  out.clear();
  ++step_;
  struct Active {
    const ProposalRequest* request;
    State* state;
    int32_t wanted;
    std::vector<int32_t> proposals;
    std::vector<float> q;  // wanted × vocab
  };
  std::vector<Active> active;
  active.reserve(requests.size());
  // Every state of this call is marked first, so reserving blocks for one never evicts another.
  for (const ProposalRequest& request : requests) states_[request.key].last_step = step_;
  for (const ProposalRequest& request : requests) {
    Active a{&request, &states_[request.key], 0, {}, {}};
    State& state = *a.state;
    const auto length = static_cast<int64_t>(request.token_ids.size());
    // The draft K/V is valid for the common prefix of what it was computed for and the tokens
    // now; the last token is fed again for its logits.
    const auto common = std::mismatch(state.cached_tokens.begin(), state.cached_tokens.end(), request.token_ids.begin(),
                                      request.token_ids.end()).first - state.cached_tokens.begin();
    state.cached_tokens.resize(static_cast<size_t>(std::min<int64_t>(common, length - 1)));
    if (request.max_proposals > 0 && reserve(state, length + request.max_proposals - 1)) a.wanted = request.max_proposals;
    active.push_back(std::move(a));
  }

  std::vector<int32_t> token_ids, positions, query_start_loc, context_lens, block_tables, logits_indices;
  std::vector<int64_t> slot_mapping;
  std::vector<float> logits, row;
  std::vector<int32_t> output;
  size_t max_blocks = 0;
  const auto start_batch = [&] {
    token_ids.clear();
    positions.clear();
    slot_mapping.clear();
    query_start_loc.assign(1, 0);
    context_lens.clear();
    block_tables.clear();
    logits_indices.clear();
  };
  // One sequence of the forward: its cached tokens from `from` on are fed, the last one's logits kept.
  const auto append = [&](const State& state, int64_t from) {
    for (auto p = from; p < static_cast<int64_t>(state.cached_tokens.size()); ++p) {
      token_ids.push_back(state.cached_tokens[static_cast<size_t>(p)]);
      positions.push_back(static_cast<int32_t>(p));
      slot_mapping.push_back(static_cast<int64_t>(state.block_table[static_cast<size_t>(p / block_size_)]) * block_size_ +
                             p % block_size_);
    }
    query_start_loc.push_back(static_cast<int32_t>(token_ids.size()));
    context_lens.push_back(static_cast<int32_t>(state.cached_tokens.size()));
    block_tables.insert(block_tables.end(), state.block_table.begin(), state.block_table.end());
    block_tables.resize(block_tables.size() + max_blocks - state.block_table.size(), -1);
    logits_indices.push_back(static_cast<int32_t>(token_ids.size()) - 1);
  };
  const auto forward_batch = [&] {
    return backend::ForwardBatch{token_ids, positions, slot_mapping, query_start_loc, context_lens,
                                 block_tables, static_cast<int32_t>(max_blocks), logits_indices};
  };
  const auto forward = [&](size_t rows) {
    logits.resize(rows * static_cast<size_t>(vocab_));
    draft_->compute_logits(forward_batch(), logits);
  };
  // Greedy requests propose the draft's argmax: q is one-hot, so none is handed to the verifier
  // when every request is greedy. Without penalties or min_tokens masks the argmax is drawn by the
  // draft backend itself (execute: on cuda the device sampler, a CUDA graph for one-token rounds,
  // and no logits cross to the host); otherwise the rows' logits come back for the pipeline below.
  const bool all_greedy = std::all_of(active.begin(), active.end(), [](const Active& a) { return a.request->params->greedy(); });
  const bool greedy_on_backend = all_greedy && std::all_of(active.begin(), active.end(), [](const Active& a) {
    const sampling::SamplingParams& p = *a.request->params;
    const auto outputs = static_cast<int64_t>(a.request->token_ids.size()) - a.request->num_prompt_tokens;
    return p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f &&
           (outputs >= p.min_tokens || a.request->stop_token_ids.empty());
  });
  std::vector<sampling::SamplingRow> greedy_rows;
  sampling::SampledBatch drawn;

  // Catch-up under a token budget per forward (a backend that reserves activations for a fixed
  // step size): the tokens the draft has not seen, but each sequence's last one or two, go through
  // forwards of at most max_tokens_per_forward_ tokens, a long prompt in pieces; round 0 feeds the rest.
  if (max_tokens_per_forward_ > 0) {
    for (;;) {
      start_batch();
      max_blocks = 0;
      for (const Active& a : active) max_blocks = std::max(max_blocks, a.state->block_table.size());
      int64_t budget = max_tokens_per_forward_;
      // Round 0 may feed two tokens per sequence (the last proposal of a fully accepted run and
      // the bonus token) when its step fits them; one otherwise.
      const int64_t round0_tokens = 2 * static_cast<int64_t>(active.size()) <= max_tokens_per_forward_ ? 2 : 1;
      for (Active& a : active) {
        State& state = *a.state;
        const auto seen = static_cast<int64_t>(state.cached_tokens.size());
        const int64_t pending = static_cast<int64_t>(a.request->token_ids.size()) - round0_tokens - seen;
        if (a.wanted == 0 || pending <= 0 || budget == 0) continue;
        const int64_t take = std::min(pending, budget);
        budget -= take;
        state.cached_tokens.insert(state.cached_tokens.end(), a.request->token_ids.begin() + seen,
                                   a.request->token_ids.begin() + seen + take);
        append(state, seen);
      }
      if (token_ids.empty()) break;
      forward(logits_indices.size());
    }
  }

  for (int32_t round = 0;; ++round) {
    start_batch();
    max_blocks = 0;
    std::vector<Active*> stepping;
    for (Active& a : active)
      if (round < a.wanted) {
        stepping.push_back(&a);
        max_blocks = std::max(max_blocks, a.state->block_table.size());
      }
    if (stepping.empty()) break;
    for (Active* a : stepping) {
      State& state = *a->state;
      // Round 0 feeds the tokens the draft has not seen; later rounds the previous proposal.
      const auto feed_from = static_cast<int64_t>(state.cached_tokens.size());
      if (round == 0) {
        state.cached_tokens.insert(state.cached_tokens.end(), a->request->token_ids.begin() + feed_from,
                                   a->request->token_ids.end());
        append(state, feed_from);
      } else {
        state.cached_tokens.push_back(a->proposals.back());
        append(state, static_cast<int64_t>(state.cached_tokens.size()) - 1);
      }
    }
    if (greedy_on_backend) {
      greedy_rows.assign(stepping.size(), sampling::SamplingRow{});
      for (size_t r = 0; r < stepping.size(); ++r) greedy_rows[r].logits_row = static_cast<int32_t>(r);
      draft_->execute(forward_batch(), sampling::SamplingBatch{greedy_rows, {}}, drawn);
      for (size_t r = 0; r < stepping.size(); ++r) {
        Active& a = *stepping[r];
        if (drawn.tokens[r] < 0) a.wanted = round;  // non-finite draft logits: no more proposals
        else a.proposals.push_back(drawn.tokens[r]);
      }
      continue;
    }
    forward(stepping.size());

    for (size_t r = 0; r < stepping.size(); ++r) {
      Active& a = *stepping[r];
      const ProposalRequest& request = *a.request;
      const sampling::SamplingParams& params = *request.params;
      const auto prompt = request.token_ids.first(static_cast<size_t>(request.num_prompt_tokens));
      output.assign(request.token_ids.begin() + request.num_prompt_tokens, request.token_ids.end());
      output.insert(output.end(), a.proposals.begin(), a.proposals.end());
      row.assign(logits.begin() + static_cast<std::ptrdiff_t>(r * static_cast<size_t>(vocab_)),
                 logits.begin() + static_cast<std::ptrdiff_t>((r + 1) * static_cast<size_t>(vocab_)));
      // q: the draft's logits through the request's own sampling pipeline (sampling/sampler.hpp).
      sampling::apply_penalties(row, params, prompt, output);
      if (static_cast<int64_t>(output.size()) < params.min_tokens) sampling::mask_tokens(row, request.stop_token_ids);
      int32_t token = -1;
      if (all_greedy) {
        a.proposals.push_back(sampling::argmax(row));
        continue;
      }
      const size_t q_begin = a.q.size();
      a.q.resize(q_begin + static_cast<size_t>(vocab_), 0.0f);
      if (params.greedy() || !std::all_of(row.begin(), row.end(), [](float x) { return !std::isnan(x); })) {
        token = sampling::argmax(row);
        a.q[q_begin + static_cast<size_t>(token)] = 1.0f;
      } else {
        const std::vector<double> q = sampling::sampling_distribution(row, params);
        const sampling::RandomKey key{request.seed, request.sample_index, static_cast<uint32_t>(output.size()),
                                      kDraftStream};
        float best = -INFINITY;
        for (size_t i = 0; i < q.size(); ++i) {
          a.q[q_begin + i] = static_cast<float>(q[i]);
          if (q[i] == 0.0) continue;
          const float score = row[i] / params.temperature + sampling::gumbel_noise(key, static_cast<int32_t>(i));
          if (token < 0 || score > best) {
            best = score;
            token = static_cast<int32_t>(i);
          }
        }
      }
      a.proposals.push_back(token);
    }
  }
  for (Active& a : active) {
    out.tokens.insert(out.tokens.end(), a.proposals.begin(), a.proposals.end());
    out.offsets.push_back(static_cast<int32_t>(out.tokens.size()));
    out.probs.insert(out.probs.end(), a.q.begin(), a.q.end());
  }
}

}  // namespace iol::spec
