// Speculative decoding (docs/speculative.md): the n-gram proposer, the rejection-sampling rule,
// and the engine with both proposers on the mock backend — greedy and seeded n-gram outputs equal
// to decoding without speculation token for token (in-flight batching, preemption on a small
// pool, prefix caching, parallel samples, stop tokens, max_tokens), and the distribution of the
// first 4 sampled tokens with a draft model indistinguishable from plain sampling (chi-square).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "../support/mock_backend.hpp"
#include "iol/engine/engine.hpp"
#include "iol/spec/draft_model_proposer.hpp"
#include "iol/spec/ngram_proposer.hpp"
#include "iol/sampling/batch_sampler.hpp"
#include "iol/spec/verifier.hpp"

namespace iol::spec {
namespace {

// P(X > x) for X ~ chi-square(df), by the Wilson–Hilferty cube-root normal approximation (good to
// ~1e-3 absolute for df >= 10, the range used here).
double chi_square_p_value(double x, double df) {
  const double z = (std::cbrt(x / df) - (1.0 - 2.0 / (9.0 * df))) / std::sqrt(2.0 / (9.0 * df));
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

// Pearson's statistic of observed counts against expected probabilities; cells expected below 5
// are pooled into one. Returns {statistic, degrees of freedom}.
std::pair<double, double> chi_square(const std::vector<int64_t>& observed, const std::vector<double>& probs, int64_t n) {
  double statistic = 0.0, pooled_expected = 0.0, pooled_observed = 0.0;
  int64_t cells = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double expected = probs[i] * static_cast<double>(n);
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_observed += static_cast<double>(observed[i]);
      continue;
    }
    statistic += std::pow(static_cast<double>(observed[i]) - expected, 2) / expected;
    ++cells;
  }
  if (pooled_expected > 0.0) {
    statistic += std::pow(pooled_observed - pooled_expected, 2) / std::max(pooled_expected, 1e-9);
    ++cells;
  }
  return {statistic, static_cast<double>(cells - 1)};
}

TEST(NgramProposer, ProposesWhatFollowedTheMostRecentLongestMatch) {
  std::vector<int32_t> out;
  // ... 1 2 3 [7 8 9] ... 1 2 3 → 7 8 9 (n = 3 matches first).
  NgramProposer::lookup(std::vector<int32_t>{1, 2, 3, 7, 8, 9, 5, 2, 3, 6, 1, 2, 3}, 1, 3, 3, out);
  EXPECT_EQ(out, (std::vector<int32_t>{7, 8, 9}));
  out.clear();
  // Only "3" recurs (n = 1): the most recent earlier 3 is followed by 6.
  NgramProposer::lookup(std::vector<int32_t>{3, 4, 3, 6, 5, 3}, 1, 3, 2, out);
  EXPECT_EQ(out, (std::vector<int32_t>{6, 5}));
  out.clear();
  // Near the end: fewer tokens than asked; nothing recurs: none; min_n filters short matches.
  NgramProposer::lookup(std::vector<int32_t>{1, 1, 1}, 1, 2, 4, out);
  EXPECT_EQ(out, (std::vector<int32_t>{1}));
  out.clear();
  NgramProposer::lookup(std::vector<int32_t>{1, 2, 3, 4}, 1, 3, 4, out);
  EXPECT_TRUE(out.empty());
  NgramProposer::lookup(std::vector<int32_t>{3, 4, 3}, 2, 3, 4, out);
  EXPECT_TRUE(out.empty());
  EXPECT_THROW(NgramProposer(0, 2), Error);
  EXPECT_THROW(NgramProposer(3, 2), Error);
}

// The rule of Leviathan et al. 2023 on fixed p and q: the emitted token is distributed as p, and
// a proposal is accepted with probability sum_x min(p(x), q(x)) = 1 - TV(p, q).
// The run walk asks for logits only where the rule needs them (a draft-model proposal under
// sampling), and the benchmark-only forced acceptance replaces every verdict by its coin.
TEST(Verifier, WalkFetchesLogitsOnlyForSampledDraftRowsAndForcedAcceptanceForcesVerdicts) {
  constexpr int64_t vocab = 4;
  const std::vector<float> logits = {0.f, 3.f, 1.f, 0.f, 2.f, 0.f, 0.f, 1.f, 0.f, 0.f, 4.f, 0.f};
  std::vector<sampling::SamplingRow> rows(3);
  for (int32_t j = 0; j < 3; ++j) rows[static_cast<size_t>(j)].logits_row = j, rows[static_cast<size_t>(j)].position = static_cast<uint32_t>(j);
  rows[0].proposed_token = 1;  // greedy: argmax of row 0 is 1, accepted
  rows[1].proposed_token = 3;  // argmax of row 1 is 0: rejected, row 2 emits nothing
  sampling::SamplingBatch batch{rows, {}};
  sampling::SampledBatch out;
  sampling::sample_batch_on_host(logits, vocab, batch, out);
  int fetched = 0;
  const LogitsRowFn fetch = [&](int32_t row) {
    ++fetched;
    return std::span<const float>(logits).subspan(static_cast<size_t>(row * vocab), vocab);
  };
  verify_sampled_runs(batch, vocab, fetch, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{1, 0, sampling::kNotEmitted}));
  EXPECT_EQ(fetched, 0) << "greedy runs need no logits";

  const std::vector<float> q(3 * vocab, 0.25f);
  for (auto& row : rows) row.temperature = 1.0f, row.seed = 5;
  rows[0].draft_probs_row = 0;
  sampling::SamplingBatch sampled{rows, {}, q};
  sampling::sample_batch_on_host(logits, vocab, sampled, out);
  verify_sampled_runs(sampled, vocab, fetch, out);
  EXPECT_GE(fetched, 1) << "a sampled draft proposal reads its row's logits";

  for (double forced : {1.0, 0.0}) {
    sampling::SamplingBatch forcing{rows, {}, q};
    forcing.forced_acceptance = forced;
    sampling::sample_batch_on_host(logits, vocab, forcing, out);
    const int32_t plain_first = out.tokens[0];
    verify_sampled_runs(forcing, vocab, fetch, out);
    if (forced == 1.0) {
      EXPECT_EQ(out.tokens[0], 1);
      EXPECT_EQ(out.tokens[1], 3) << "forced: a proposal the target rejects is emitted";
      EXPECT_GE(out.tokens[2], 0) << "the bonus row emits";
    } else {
      EXPECT_EQ(out.tokens[0], plain_first);
      EXPECT_EQ(out.tokens[1], sampling::kNotEmitted);
      EXPECT_EQ(out.tokens[2], sampling::kNotEmitted);
    }
  }
}

TEST(Verifier, RejectionSamplingEmitsTheTargetDistribution) {
  const std::vector<double> p = {0.05, 0.30, 0.15, 0.0, 0.35, 0.15};
  const std::vector<float> q = {0.25f, 0.10f, 0.15f, 0.20f, 0.20f, 0.10f};
  const int64_t n = 200000;
  std::vector<int64_t> counts(p.size(), 0);
  int64_t accepted = 0;
  for (int64_t i = 0; i < n; ++i) {
    const sampling::RandomKey key{static_cast<uint64_t>(i), 0, 3};
    // x ~ q by Gumbel-max on the draft stream, as DraftModelProposer draws it.
    int32_t x = -1;
    double best = -INFINITY;
    for (size_t t = 0; t < q.size(); ++t) {
      const double score = std::log(q[t]) + sampling::gumbel_noise({key.seed, 0, 3, kDraftStream}, static_cast<int32_t>(t));
      if (score > best) best = score, x = static_cast<int32_t>(t);
    }
    const Verdict v = verify_proposal(p, q, x, key);
    ++counts[static_cast<size_t>(v.token)];
    accepted += v.accepted;
    if (v.accepted) EXPECT_EQ(v.token, x);
  }
  EXPECT_EQ(counts[3], 0) << "a token with p = 0 was emitted";
  const auto [statistic, df] = chi_square(counts, p, n);
  const double p_value = chi_square_p_value(statistic, df);
  std::printf("[ verifier ] chi-square %.2f, df %.0f, p-value %.3f; acceptance %.4f (1 - TV = 0.60)\n", statistic, df,
              p_value, static_cast<double>(accepted) / static_cast<double>(n));
  EXPECT_GT(p_value, 0.001);
  // The test has power: emitting every proposal (q instead of p) is rejected outright.
  std::vector<int64_t> accept_all(p.size(), 0);
  for (int64_t i = 0; i < n / 10; ++i) {
    int32_t x = -1;
    double best = -INFINITY;
    for (size_t t = 0; t < q.size(); ++t) {
      const double score =
          std::log(q[t]) + sampling::gumbel_noise({static_cast<uint64_t>(i), 0, 3, kDraftStream}, static_cast<int32_t>(t));
      if (score > best) best = score, x = static_cast<int32_t>(t);
    }
    ++accept_all[static_cast<size_t>(x)];
  }
  const auto [wrong_statistic, wrong_df] = chi_square(accept_all, p, n / 10);
  EXPECT_LT(chi_square_p_value(wrong_statistic, wrong_df), 1e-6);
  double overlap = 0.0;  // sum_x min(p(x), q(x)) = 0.60
  for (size_t t = 0; t < p.size(); ++t) overlap += std::min(p[t], static_cast<double>(q[t]));
  EXPECT_NEAR(static_cast<double>(accepted) / static_cast<double>(n), overlap, 0.005);
}

constexpr int64_t kVocab = 61;

struct Request {
  std::vector<int32_t> prompt;
  sampling::SamplingParams params;
};

struct RunResult {
  std::vector<std::vector<int32_t>> outputs;  // request-major, then sample
  engine::EngineStats stats;
};

enum class Method { None, Ngram, Draft };

// Runs the requests through one engine on the mock backend; a draft is the mock model perturbed.
// The target (and draft) mock models see the last `window` tokens (0: all): with a short window
// greedy text repeats itself and n-gram proposals are accepted.
RunResult run_engine(engine::EngineConfig config, const std::vector<Request>& requests, Method method, int64_t k,
                     float draft_perturbation = 1.0f, int64_t vocab = kVocab, int64_t window = 0) {
  if (method != Method::None) {
    config.speculative.method = method == Method::Ngram ? engine::SpeculativeMethod::Ngram : engine::SpeculativeMethod::DraftModel;
    config.speculative.num_speculative_tokens = k;
  }
  testing::MockBackend backend(config.num_kv_blocks, config.block_size, vocab, 0.0f, window);
  std::unique_ptr<Proposer> proposer;
  if (method == Method::Draft)
    proposer = std::make_unique<DraftModelProposer>(
        std::make_unique<testing::MockBackend>(config.num_kv_blocks, config.block_size, vocab, draft_perturbation, window),
        vocab);
  model::ModelConfig model;
  model.vocab_size = vocab;
  model.eos_token_ids = {0};
  engine::Engine engine(config, backend, model, nullptr, std::move(proposer));
  std::map<std::pair<engine::RequestId, int32_t>, std::vector<int32_t>> outputs;
  std::vector<engine::RequestId> ids;
  for (const Request& r : requests)
    ids.push_back(engine.add_request(r.prompt, r.params, [&](const engine::RequestOutput& out) {
      if (out.new_token_id >= 0) outputs[{out.request_id, out.sample_index}].push_back(out.new_token_id);
    }));
  int64_t steps = 0;
  while (engine.has_unfinished()) {
    engine.step();
    if (++steps % 7 == 0) EXPECT_EQ(engine.check_invariants(), "");
  }
  RunResult run;
  for (size_t i = 0; i < requests.size(); ++i)
    for (int32_t s = 0; s < requests[i].params.n; ++s) run.outputs.push_back(outputs[{ids[i], s}]);
  run.stats = engine.stats();
  EXPECT_EQ(run.stats.blocks.num_free_blocks, config.num_kv_blocks) << "blocks leaked";
  return run;
}

// Prompts that repeat themselves (so n-gram lookup finds matches) and random ones.
std::vector<Request> mixed_requests(bool sampled, int count, uint64_t seed) {
  Rng rng(seed);
  std::vector<Request> requests;
  for (int i = 0; i < count; ++i) {
    Request r;
    const int64_t stem_length = 3 + static_cast<int64_t>(rng.next_u64() % 6);
    std::vector<int32_t> stem;
    for (int64_t j = 0; j < stem_length; ++j) stem.push_back(1 + static_cast<int32_t>(rng.next_u64() % (kVocab - 1)));
    for (int rep = 0; rep < (i % 3 == 0 ? 1 : 3); ++rep) r.prompt.insert(r.prompt.end(), stem.begin(), stem.end());
    r.params.max_tokens = 8 + static_cast<int32_t>(rng.next_u64() % 40);
    r.params.temperature = sampled ? 0.8f : 0.0f;
    r.params.seed = 100 + static_cast<uint64_t>(i);
    if (sampled) {
      r.params.top_p = i % 2 ? 0.9f : 1.0f;
      r.params.top_k = i % 3 == 1 ? 20 : 0;
      r.params.min_p = i % 5 == 2 ? 0.05f : 0.0f;
      r.params.repetition_penalty = i % 4 == 3 ? 1.3f : 1.0f;
      r.params.frequency_penalty = i % 4 == 1 ? 0.5f : 0.0f;
      r.params.n = i % 5 == 4 ? 3 : 1;
    }
    r.params.ignore_eos = i % 2 == 0;
    r.params.min_tokens = i % 6 == 5 ? 5 : 0;
    if (i % 7 == 3) r.params.stop_token_ids = {r.prompt[1], r.prompt[2]};
    requests.push_back(std::move(r));
  }
  return requests;
}

engine::EngineConfig small_pool_config() {
  engine::EngineConfig config;
  config.block_size = 4;
  config.num_kv_blocks = 40;  // 160 slots for 12 requests of up to ~75 tokens: preemption
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 48;
  config.max_model_len = 160;
  return config;
}

TEST(SpeculativeEngine, GreedyOutputsEqualPlainDecodingForEveryK) {
  const auto requests = mixed_requests(/*sampled=*/false, 12, 7);
  constexpr int64_t kWindow = 2;
  const RunResult plain = run_engine(small_pool_config(), requests, Method::None, 0, 0.0f, kVocab, kWindow);
  ASSERT_GT(plain.stats.num_preemptions, 0) << "the pool must be small enough to preempt";
  for (int64_t k = 1; k <= 8; ++k) {
    for (Method method : {Method::Ngram, Method::Draft}) {
      SCOPED_TRACE(fmt::format("{} k = {}", method == Method::Ngram ? "ngram" : "draft", k));
      const RunResult spec = run_engine(small_pool_config(), requests, method, k, /*draft_perturbation=*/0.6f, kVocab, kWindow);
      EXPECT_EQ(spec.outputs, plain.outputs);
      const auto& s = spec.stats.speculative;
      EXPECT_GT(s.num_proposed_tokens, 0);
      EXPECT_GT(s.num_accepted_tokens, 0);
      // With low acceptance, lookahead slots take budget and blocks from waiting prompts on this
      // tight pool, so a large k may not save steps (what --speculative-disable-by-batch-size is for).
      if (method == Method::Draft && k <= 4)
        EXPECT_LT(spec.stats.num_steps, plain.stats.num_steps) << "accepted proposals must save steps";
      if (k == 4)
        std::printf("[ spec ] %s k=4: %lld steps (plain %lld), acceptance %.3f, mean accepted %.2f, %lld preemptions\n",
                    method == Method::Ngram ? "ngram" : "draft", static_cast<long long>(spec.stats.num_steps),
                    static_cast<long long>(plain.stats.num_steps), s.acceptance_rate(), s.mean_accepted_length(),
                    static_cast<long long>(spec.stats.num_preemptions));
    }
  }
}

TEST(SpeculativeEngine, LargerPoolWithPrefixCachingAndNoChunkedPrefillMatchesToo) {
  auto requests = mixed_requests(false, 10, 11);
  for (size_t i = 1; i < requests.size(); ++i)  // shared prefixes for the prefix cache
    requests[i].prompt.insert(requests[i].prompt.begin(), requests[0].prompt.begin(), requests[0].prompt.end());
  engine::EngineConfig config;
  config.block_size = 4;
  config.num_kv_blocks = 512;
  config.max_model_len = 200;
  config.max_num_batched_tokens = 400;
  config.enable_chunked_prefill = false;
  config.max_num_seqs = 2;  // later requests arrive after the first has committed its blocks
  const RunResult plain = run_engine(config, requests, Method::None, 0);
  const RunResult spec = run_engine(config, requests, Method::Ngram, 5);
  EXPECT_EQ(spec.outputs, plain.outputs);
  EXPECT_GT(spec.stats.blocks.prefix_hit_tokens, 0);
  config.kv_layout = engine::KvLayout::Contiguous;
  config.enable_prefix_caching = false;
  EXPECT_EQ(run_engine(config, requests, Method::Draft, 3).outputs, plain.outputs);
}

// n-gram proposals are deterministic: the verifier accepts exactly when the target's own draw
// (same seed, sample and position) equals the proposal, so seeded sampling — penalties, top-k,
// top-p, min-p, min_tokens, stop tokens, parallel samples included — is token for token the same.
TEST(SpeculativeEngine, SeededSamplingWithNgramEqualsPlainSamplingTokenForToken) {
  const auto requests = mixed_requests(/*sampled=*/true, 12, 5);
  const RunResult plain = run_engine(small_pool_config(), requests, Method::None, 0);
  for (int64_t k : {1, 3, 8}) {
    const RunResult spec = run_engine(small_pool_config(), requests, Method::Ngram, k);
    EXPECT_EQ(spec.outputs, plain.outputs) << "k = " << k;
    EXPECT_GT(spec.stats.speculative.num_accepted_tokens, 0);
  }
  // And each equals the sampler applied step by step alone (a request without penalties).
  Request alone{{5, 6, 7, 5, 6, 7, 5, 6}, {}};
  alone.params.temperature = 1.0f;
  alone.params.seed = 9;
  alone.params.max_tokens = 24;
  alone.params.ignore_eos = true;
  EXPECT_EQ(run_engine(small_pool_config(), {alone}, Method::Ngram, 4).outputs[0],
            testing::mock_sampled(alone.prompt, alone.params, 0, kVocab));
}

TEST(SpeculativeEngine, OffAboveTheBatchSizeSwitch) {
  auto requests = mixed_requests(false, 4, 3);
  for (auto& r : requests) r.params.max_tokens = 20, r.params.ignore_eos = true, r.params.stop_token_ids.clear();
  engine::EngineConfig config = small_pool_config();
  config.num_kv_blocks = 200;
  config.speculative.disable_by_batch_size = 1;
  const RunResult off = run_engine(config, requests, Method::Ngram, 4);
  EXPECT_EQ(off.stats.speculative.num_proposed_tokens, 0) << "4 running sequences > 1: no speculation";
  config.speculative.disable_by_batch_size = 4;
  const RunResult on = run_engine(config, requests, Method::Ngram, 4);
  EXPECT_GT(on.stats.speculative.num_proposed_tokens, 0);
  EXPECT_EQ(on.outputs, off.outputs);
}

TEST(SpeculativeEngine, MaxTokensBoundsTheRunAndAStopTokenInsideItEndsTheSequence) {
  // A prompt whose greedy continuation the draft (the same model: every proposal accepted) runs
  // far ahead of: max_tokens and a stop token must still cut the output exactly there.
  Request r{{3, 4, 5, 6}, {}};
  r.params.temperature = 0.0f;
  r.params.max_tokens = 7;
  r.params.ignore_eos = true;
  const std::vector<int32_t> greedy = testing::mock_greedy(r.prompt, 7, kVocab);
  engine::EngineConfig config = small_pool_config();
  const RunResult run = run_engine(config, {r}, Method::Draft, 8, /*draft_perturbation=*/0.0f);
  EXPECT_EQ(run.outputs[0], greedy);
  EXPECT_EQ(run.stats.speculative.acceptance_rate(), 1.0);
  EXPECT_LE(run.stats.num_steps, 3);  // prefill, then one run of 6 proposals + bonus
  r.params.stop_token_ids = {greedy[3]};
  const size_t cut = static_cast<size_t>(std::find(greedy.begin(), greedy.end(), greedy[3]) - greedy.begin()) + 1;
  EXPECT_EQ(run_engine(config, {r}, Method::Draft, 8, 0.0f).outputs[0],
            std::vector<int32_t>(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(cut)));
}

TEST(SpeculativeEngine, RefusesABackendWithoutVerificationAndADraftMethodWithoutAModel) {
  struct PlainBackend : testing::MockBackend {
    using MockBackend::MockBackend;
    bool supports_speculative_decoding() const override { return false; }
  };
  engine::EngineConfig config = small_pool_config();
  config.speculative = {engine::SpeculativeMethod::Ngram, 4};
  PlainBackend backend(config.num_kv_blocks, config.block_size, kVocab);
  model::ModelConfig model;
  model.vocab_size = kVocab;
  EXPECT_THROW(engine::Engine(config, backend, model, nullptr), Error);
  testing::MockBackend mock(config.num_kv_blocks, config.block_size, kVocab);
  config.speculative.method = engine::SpeculativeMethod::DraftModel;
  EXPECT_THROW(engine::Engine(config, mock, model, nullptr), Error);
  config.speculative.num_speculative_tokens = 0;
  EXPECT_THROW(engine::Engine(config, mock, model, nullptr), Error);
  EXPECT_THROW(DraftModelProposer(std::make_unique<testing::MockBackend>(8, 4, kVocab + 1), kVocab), Error);
}

// The acceptance 2: over 50,000 seeded runs, the first 4 generated tokens with
// speculation are distributed as without it. The expected distribution is exact (the mock
// model's p(t1..t4) by enumeration over a 4-token vocabulary), so one chi-square goodness-of-fit
// test per configuration; plain sampling is tested the same way as a control.
TEST(SpeculativeEngine, FirstFourSampledTokensAreDistributedAsWithoutSpeculation) {
  constexpr int64_t kSmallVocab = 4, kRuns = 50000, kTokens = 4;
  const std::vector<int32_t> prompt = {1, 2, 3, 1, 2, 3, 1, 2};
  struct Case {
    const char* name;
    Method method;
    float temperature, top_p;
  };
  const Case cases[] = {{"plain T=1", Method::None, 1.0f, 1.0f},     {"draft T=1", Method::Draft, 1.0f, 1.0f},
                        {"draft T=0.7 top-p 0.9", Method::Draft, 0.7f, 0.9f}, {"ngram T=1", Method::Ngram, 1.0f, 1.0f},
                        {"ngram T=0.7 top-p 0.9", Method::Ngram, 0.7f, 0.9f}};
  for (const Case& c : cases) {
    sampling::SamplingParams params;
    params.temperature = c.temperature;
    params.top_p = c.top_p;
    params.max_tokens = kTokens;
    params.ignore_eos = true;
    // Exact p(t1..t4): the product of the sampler's distributions along each path.
    std::vector<double> expected(static_cast<size_t>(std::pow(kSmallVocab, kTokens)), 1.0);
    for (size_t path = 0; path < expected.size(); ++path) {
      std::vector<int32_t> context = prompt;
      for (int64_t i = 0, rest = static_cast<int64_t>(path); i < kTokens; ++i, rest /= kSmallVocab) {
        const auto token = static_cast<int32_t>(rest % kSmallVocab);
        expected[path] *= sampling::sampling_distribution(testing::mock_logits(context, kSmallVocab), params)[static_cast<size_t>(token)];
        context.push_back(token);
      }
    }
    std::vector<Request> requests(kRuns, Request{prompt, params});
    for (int64_t i = 0; i < kRuns; ++i) requests[static_cast<size_t>(i)].params.seed = 1000003 * static_cast<uint64_t>(i) + 17;
    engine::EngineConfig config;
    config.block_size = 16;
    config.num_kv_blocks = 1024;
    config.max_model_len = 64;
    const RunResult run = run_engine(config, requests, c.method, 3, /*draft_perturbation=*/1.5f, kSmallVocab);
    std::vector<int64_t> observed(expected.size(), 0);
    for (const auto& out : run.outputs) {
      ASSERT_EQ(out.size(), static_cast<size_t>(kTokens));
      size_t path = 0;
      for (int64_t i = kTokens - 1; i >= 0; --i) path = path * kSmallVocab + static_cast<size_t>(out[static_cast<size_t>(i)]);
      ++observed[path];
    }
    const auto [statistic, df] = chi_square(observed, expected, kRuns);
    const double p_value = chi_square_p_value(statistic, df);
    const auto& s = run.stats.speculative;
    std::printf("[ chi-square ] %-22s %lld runs: statistic %.1f, df %.0f, p-value %.3f; acceptance %.3f, mean accepted %.2f\n",
                c.name, static_cast<long long>(kRuns), statistic, df, p_value, s.acceptance_rate(), s.mean_accepted_length());
    EXPECT_GT(p_value, 0.001) << c.name;
    if (c.method != Method::None) EXPECT_GT(s.num_accepted_tokens, kRuns / 4) << c.name;
  }
}

}  // namespace
}  // namespace iol::spec
