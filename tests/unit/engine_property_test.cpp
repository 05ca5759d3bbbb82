// Property test of the engine's KV accounting: thousands of seeded random schedules (arrivals,
// lengths, shared prefixes, cancellations, small pools, every lever) on the mock backend. At
// every step the invariants hold; at the end every block is free and every request that was not
// aborted produced exactly the tokens of running it alone.
#include <gtest/gtest.h>

#include <map>

#include "../support/mock_backend.hpp"
#include "iol/spec/draft_model_proposer.hpp"
#include "iol/core/error.hpp"
#include "iol/core/rng.hpp"
#include "iol/engine/engine.hpp"

namespace iol::engine {
namespace {

constexpr int64_t kVocab = 97;

sampling::SamplingParams params_of_request(int32_t max_tokens, int32_t n) {
  sampling::SamplingParams params;
  params.max_tokens = max_tokens;
  params.n = n;
  params.temperature = n > 1 ? 1.0f : 0.0f;
  params.seed = 77;
  return params;
}

int64_t pick(Rng& rng, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(hi - lo + 1)); }

// Speculation mode of a batch of schedules: none, n-gram or a draft model (the mock perturbed),
// with k and the batch-size switch drawn per schedule.
enum class Speculation { None, Ngram, Draft };

void run_random_schedules(int kTrials, Speculation speculation) {
  int64_t total_proposed = 0, total_accepted = 0;
  int64_t total_preemptions = 0, total_hits = 0, total_aborts = 0, total_requests = 0, total_parallel_samples = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    Rng rng(1000 + static_cast<uint64_t>(trial));
    EngineConfig config;
    config.block_size = pick(rng, 1, 6);
    config.num_kv_blocks = pick(rng, 4, 40);
    config.max_num_seqs = pick(rng, 1, 8);
    config.max_num_batched_tokens = pick(rng, 4, 64);
    config.enable_chunked_prefill = rng.uniform() < 0.7;
    config.enable_prefix_caching = rng.uniform() < 0.7;
    config.batching = rng.uniform() < 0.8 ? BatchingMode::InFlight : BatchingMode::Static;
    config.kv_layout = rng.uniform() < 0.8 ? KvLayout::Paged : KvLayout::Contiguous;
    config.max_model_len = std::min<int64_t>(48, config.num_kv_blocks * config.block_size);
    std::unique_ptr<spec::Proposer> proposer;
    if (speculation != Speculation::None) {
      config.speculative.method = speculation == Speculation::Ngram ? SpeculativeMethod::Ngram : SpeculativeMethod::DraftModel;
      config.speculative.num_speculative_tokens = pick(rng, 1, 8);
      config.speculative.disable_by_batch_size = rng.uniform() < 0.2 ? pick(rng, 1, 4) : 0;
      config.speculative.prompt_lookup_max = pick(rng, 1, 4);
      if (speculation == Speculation::Draft)
        proposer = std::make_unique<spec::DraftModelProposer>(
            std::make_unique<testing::MockBackend>(pick(rng, 4, 40), pick(rng, 1, 6), kVocab,
                                                   static_cast<float>(rng.uniform())),
            kVocab);
    }
    model::ModelConfig model;
    model.vocab_size = kVocab;
    testing::MockBackend backend(config.num_kv_blocks, config.block_size, kVocab);
    Engine engine(config, backend, model, nullptr, std::move(proposer));

    // Requests share prefixes drawn from a few stems.
    std::vector<std::vector<int32_t>> stems(3);
    for (auto& stem : stems)
      for (int64_t i = 0, n = pick(rng, 0, 20); i < n; ++i) stem.push_back(static_cast<int32_t>(pick(rng, 0, kVocab - 1)));
    struct Pending {
      int64_t arrival_step;
      std::vector<int32_t> prompt;
      int32_t max_tokens;
      int32_t n;  // parallel samples (sampled with temperature; greedy when 1)
    };
    std::vector<Pending> pending;
    for (int64_t i = 0, n = pick(rng, 1, 16); i < n; ++i) {
      const bool parallel = config.kv_layout == KvLayout::Paged && rng.uniform() < 0.3;
      Pending p{pick(rng, 0, 30), stems[static_cast<size_t>(pick(rng, 0, 2))], static_cast<int32_t>(pick(rng, 1, 16)),
                parallel ? static_cast<int32_t>(pick(rng, 2, 4)) : 1};
      for (int64_t k = 0, extra = pick(rng, 0, 12); k < extra || p.prompt.empty(); ++k)
        p.prompt.push_back(static_cast<int32_t>(pick(rng, 0, kVocab - 1)));
      pending.push_back(std::move(p));
    }

    using Key = std::pair<RequestId, int32_t>;  // (request, sample)
    std::map<Key, std::vector<int32_t>> outputs;
    std::map<RequestId, const Pending*> request_of;
    std::map<Key, bool> finished;
    std::map<RequestId, bool> aborted;
    std::vector<RequestId> live;
    auto params_of = [](const Pending& p) { return params_of_request(p.max_tokens, p.n); };
    for (int64_t step = 0; step < 5000; ++step) {
      for (const auto& p : pending) {
        if (p.arrival_step != step) continue;
        try {
          RequestId id = engine.add_request(p.prompt, params_of(p), [&](const RequestOutput& out) {
            const Key key{out.request_id, out.sample_index};
            if (out.new_token_id >= 0) outputs[key].push_back(out.new_token_id);
            if (out.finished) finished[key] = true;
          });
          request_of[id] = &p;
          live.push_back(id);
          ++total_requests;
        } catch (const Error&) {
          // Too long for this configuration: rejected up front, as it must be.
        }
      }
      if (!live.empty() && rng.uniform() < 0.03) {
        RequestId victim = live[static_cast<size_t>(pick(rng, 0, static_cast<int64_t>(live.size()) - 1))];
        if (!finished[{victim, 0}]) {
          engine.abort_request(victim);
          aborted[victim] = true;
        }
      }
      engine.step();
      std::string violation = engine.check_invariants();
      ASSERT_EQ(violation, "") << "step " << step;
      bool arrivals_left = false;
      for (const auto& p : pending) arrivals_left |= p.arrival_step > step;
      if (!engine.has_unfinished() && !arrivals_left) break;
    }
    ASSERT_FALSE(engine.has_unfinished()) << "requests still unfinished after 5000 steps";
    EngineStats stats = engine.stats();
    EXPECT_EQ(stats.blocks.num_free_blocks, config.num_kv_blocks) << "blocks leaked";
    for (const auto& [id, p] : request_of) {
      // An abort before the prompt completed leaves no forked samples.
      const int32_t samples = aborted[id] && !finished.count({id, 1}) ? 1 : p->n;
      for (int32_t sample = 0; sample < samples; ++sample) {
        const Key key{id, sample};
        ASSERT_TRUE(finished[key]) << "request " << id << " sample " << sample << " never finished";
        std::vector<int32_t> expected = p->n == 1 ? testing::mock_greedy(p->prompt, p->max_tokens, kVocab)
                                                  : testing::mock_sampled(p->prompt, params_of(*p), sample, kVocab);
        if (aborted[id]) expected.resize(std::min(expected.size(), outputs[key].size()));  // a prefix, cut by the abort
        // A draft model's sampled proposals go through rejection sampling: the same distribution,
        // not the same tokens (speculative_test.cpp tests the distribution); only their count.
        if (speculation == Speculation::Draft && p->n > 1)
          EXPECT_EQ(outputs[key].size(), expected.size()) << "request " << id << " sample " << sample;
        else
          EXPECT_EQ(outputs[key], expected) << "request " << id << " sample " << sample;
      }
      total_parallel_samples += p->n > 1 ? p->n : 0;
    }
    total_proposed += stats.speculative.num_proposed_tokens;
    total_accepted += stats.speculative.num_accepted_tokens;
    total_preemptions += stats.num_preemptions;
    total_hits += stats.blocks.prefix_hit_tokens;
    total_aborts += stats.num_aborted;
  }
  // The random schedules must actually exercise preemption, prefix hits and cancellation.
  EXPECT_GT(total_preemptions, kTrials / 20);
  EXPECT_GT(total_hits, kTrials / 20);
  EXPECT_GT(total_aborts, kTrials / 40);
  EXPECT_GT(total_parallel_samples, kTrials / 2);
  // The mock model reads its whole context, so n-gram proposals are rarely right (rejections are
  // what these schedules exercise); the perturbed draft agrees far more often.
  if (speculation == Speculation::Ngram) EXPECT_GT(total_accepted, 10);
  if (speculation == Speculation::Draft) EXPECT_GT(total_accepted, kTrials);
  if (speculation != Speculation::None) EXPECT_GT(total_proposed, 10 * kTrials);
  std::printf("[ property ] %d schedules, %lld requests, %lld parallel samples, %lld preemptions, %lld prefix-hit tokens, "
              "%lld aborts; %lld proposed, %lld accepted\n", kTrials, static_cast<long long>(total_requests),
              static_cast<long long>(total_parallel_samples), static_cast<long long>(total_preemptions),
              static_cast<long long>(total_hits), static_cast<long long>(total_aborts),
              static_cast<long long>(total_proposed), static_cast<long long>(total_accepted));
}

TEST(EngineProperty, RandomSchedulesKeepBlockAccountingAndOutputs) { run_random_schedules(2000, Speculation::None); }

// The same schedules with speculation: rejected slots rolled back, nothing leaked, and greedy and
// seeded n-gram outputs exactly those of decoding alone without speculation.
TEST(EngineProperty, RandomSchedulesWithNgramSpeculation) { run_random_schedules(1500, Speculation::Ngram); }
TEST(EngineProperty, RandomSchedulesWithDraftModelSpeculation) { run_random_schedules(1500, Speculation::Draft); }

}  // namespace
}  // namespace iol::engine
