// The engine on the CPU backend with the tiny model: batching, preemption, prefix caching and
// the KV-layout lever must never change greedy outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include <nlohmann/json.hpp>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/core/error.hpp"
#include "iol/engine/llm.hpp"
#include "iol/model/presets.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::engine {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  model::ModelConfig model = model::preset_or_throw("tiny");
  std::shared_ptr<const model::ModelWeights> weights = model::ModelWeights::dummy(model, 0, DType::BF16);

  struct Run {
    std::vector<Completion> completions;
    EngineStats stats;
  };
  Run run(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts, int32_t max_tokens) {
    backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
    Engine engine(config, backend, model, nullptr);
    Run r;
    r.completions = generate(engine, prompts, {greedy(max_tokens)});
    r.stats = engine.stats();
    EXPECT_EQ(engine.check_invariants(), "");
    EXPECT_EQ(r.stats.blocks.num_free_blocks, config.num_kv_blocks);
    return r;
  }
  std::vector<int32_t> run_sampled(const std::vector<int32_t>& prompt, const sampling::SamplingParams& params) {
    EngineConfig config = base_config();
    backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
    Engine engine(config, backend, model, nullptr);
    return generate(engine, {prompt}, {params})[0].output_ids;
  }
  // Greedy, forced to exactly max_tokens: outputs comparable across runs.
  static sampling::SamplingParams greedy(int32_t max_tokens) {
    sampling::SamplingParams params;
    params.temperature = 0.0f;
    params.max_tokens = max_tokens;
    params.ignore_eos = true;
    return params;
  }
  static EngineConfig base_config() {
    EngineConfig c;
    c.num_kv_blocks = 64;
    c.block_size = 4;
    c.max_model_len = 128;
    c.max_num_batched_tokens = 32;
    return c;
  }
  static std::vector<std::vector<int32_t>> mixed_prompts() {
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 6; ++i) {
      std::vector<int32_t> p = {256};
      for (int k = 0; k < 3 + 9 * i; ++k) p.push_back((k * 31 + i * 7) % 250);
      prompts.push_back(p);
    }
    return prompts;
  }
  std::vector<std::vector<int32_t>> alone(const std::vector<std::vector<int32_t>>& prompts, int32_t max_tokens) {
    std::vector<std::vector<int32_t>> outputs;
    for (const auto& p : prompts) outputs.push_back(run(base_config(), {p}, max_tokens).completions[0].output_ids);
    return outputs;
  }
  // Steps the engine by hand and records, per prompt, the step (1-based) that delivered its first
  // output token: what chunked prefill changes.
  struct SteppedRun {
    std::vector<std::vector<int32_t>> outputs;
    std::vector<int64_t> first_token_step;
    EngineStats stats;
  };
  SteppedRun run_stepped(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts, int32_t max_tokens) {
    backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
    Engine engine(config, backend, model, nullptr);
    SteppedRun r;
    r.outputs.resize(prompts.size());
    r.first_token_step.assign(prompts.size(), -1);
    int64_t step = 0;
    for (size_t i = 0; i < prompts.size(); ++i)
      engine.add_request(prompts[i], greedy(max_tokens), [&r, &step, i](const RequestOutput& out) {
        if (out.new_token_id < 0) return;
        if (r.outputs[i].empty()) r.first_token_step[i] = step;
        r.outputs[i].push_back(out.new_token_id);
      });
    while (engine.has_unfinished() && step < 10000) {
      ++step;
      engine.step();
    }
    r.stats = engine.stats();
    EXPECT_EQ(engine.check_invariants(), "");
    EXPECT_EQ(r.stats.blocks.num_free_blocks, config.num_kv_blocks);
    return r;
  }
  static std::vector<std::vector<int32_t>> outputs_of(const Run& r) {
    std::vector<std::vector<int32_t>> outputs;
    for (const auto& c : r.completions) outputs.push_back(c.output_ids);
    return outputs;
  }
};

TEST_F(EngineTest, InFlightBatchWithMixedLengthsEqualsEachRequestAlone) {
  auto prompts = mixed_prompts();  // 4, 13, 22, 31, 40 and 49 tokens: 159 in all
  auto expected = alone(prompts, 12);
  SteppedRun batched = run_stepped(base_config(), prompts, 12);
  EXPECT_EQ(batched.outputs, expected);
  EXPECT_GT(batched.stats.peak_num_running, 1);
  // 32 tokens a step: the 40- and 49-token prompts fit only in chunks, and the last prompt's first
  // token comes after all 159 prompt tokens went through, 32 at most per step (≥ 5 steps).
  EXPECT_GE(batched.first_token_step[5], 5);
  EXPECT_LT(batched.stats.num_steps, 6 * 12);
}

TEST_F(EngineTest, ChunkedPrefillSplitsALongPromptIntoBudgetSizedChunks) {
  const std::vector<std::vector<int32_t>> prompt = {mixed_prompts()[5]};  // 49 tokens
  ASSERT_EQ(prompt[0].size(), 49u);
  EngineConfig whole = base_config();
  whole.enable_chunked_prefill = false;
  whole.max_num_batched_tokens = 64;
  SteppedRun unchunked = run_stepped(whole, prompt, 8);
  EXPECT_EQ(unchunked.first_token_step[0], 1);  // the whole prompt in one step
  EXPECT_EQ(unchunked.stats.num_steps, 8);
  // With chunking, the prompt takes ceil(49 / budget) steps before its first token; same tokens.
  for (int64_t budget : {32, 16, 8}) {
    EngineConfig chunked = base_config();
    chunked.max_num_batched_tokens = budget;
    SteppedRun r = run_stepped(chunked, prompt, 8);
    EXPECT_EQ(r.first_token_step[0], (49 + budget - 1) / budget) << "budget " << budget;
    EXPECT_EQ(r.stats.num_steps, (49 + budget - 1) / budget + 7) << "budget " << budget;
    EXPECT_EQ(r.outputs, unchunked.outputs) << "budget " << budget;
  }
}

TEST_F(EngineTest, PreemptionUnderASmallPoolKeepsOutputs) {
  auto prompts = mixed_prompts();
  auto expected = alone(prompts, 12);
  EngineConfig small = base_config();
  small.num_kv_blocks = 16;  // 64 tokens for six requests of up to 59 tokens each
  small.max_model_len = 64;
  Run r = run(small, prompts, 12);
  EXPECT_GT(r.stats.num_preemptions, 0);
  EXPECT_EQ(outputs_of(r), expected);
}

// GuaranteedNoEvict admits a request only when the KV of its whole life fits beside the running
// ones' remaining growth: the pool that forced preemptions above forces none, and outputs hold.
TEST_F(EngineTest, GuaranteedNoEvictNeverPreemptsAndKeepsOutputs) {
  auto prompts = mixed_prompts();
  auto expected = alone(prompts, 12);
  EngineConfig small = base_config();
  small.num_kv_blocks = 16;
  small.max_model_len = 64;
  small.scheduler_policy = SchedulerPolicy::GuaranteedNoEvict;
  Run r = run(small, prompts, 12);
  EXPECT_EQ(r.stats.num_preemptions, 0);
  EXPECT_EQ(outputs_of(r), expected);
  // With room for every request's whole life, it admits them all at once, as MaxUtilization does.
  EngineConfig roomy = base_config();
  roomy.num_kv_blocks = 6 * 16;
  roomy.max_model_len = 64;
  roomy.scheduler_policy = SchedulerPolicy::GuaranteedNoEvict;
  Run all = run(roomy, prompts, 12);
  EXPECT_EQ(all.stats.num_preemptions, 0);
  EXPECT_EQ(all.stats.peak_num_running, static_cast<int64_t>(prompts.size()));
  EXPECT_EQ(outputs_of(all), expected);
}

TEST_F(EngineTest, PrefixCachingHitsAndDoesNotChangeOutputs) {
  std::vector<int32_t> system = {256};
  for (int k = 0; k < 23; ++k) system.push_back(100 + k);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    auto p = system;
    p.push_back(10 + i);
    p.push_back(20 + i);
    prompts.push_back(p);
  }
  EngineConfig one_at_a_time = base_config();
  one_at_a_time.max_num_seqs = 1;  // later requests arrive after the prefix is cached
  Run cached = run(one_at_a_time, prompts, 8);
  one_at_a_time.enable_prefix_caching = false;
  Run uncached = run(one_at_a_time, prompts, 8);
  EXPECT_EQ(outputs_of(cached), outputs_of(uncached));
  EXPECT_GT(cached.stats.blocks.prefix_hit_rate(), 0.5);
  EXPECT_EQ(cached.completions[3].num_cached_prompt_tokens, 24);
  EXPECT_EQ(uncached.stats.blocks.prefix_hit_rate(), 0.0);
}

TEST_F(EngineTest, StaticBatchingAndContiguousLayoutGiveTheSameTokens) {
  auto prompts = mixed_prompts();
  Run inflight = run(base_config(), prompts, 10);
  EngineConfig c = base_config();
  c.batching = BatchingMode::Static;
  EXPECT_EQ(outputs_of(run(c, prompts, 10)), outputs_of(inflight));
  c = base_config();
  c.kv_layout = KvLayout::Contiguous;
  EXPECT_EQ(outputs_of(run(c, prompts, 10)), outputs_of(inflight));
  c.enable_chunked_prefill = false;
  c.max_num_batched_tokens = 128;
  EXPECT_EQ(outputs_of(run(c, prompts, 10)), outputs_of(inflight));
}

TEST_F(EngineTest, ContiguousLayoutAdmitsFewerSequencesForTheSameBudget) {
  std::vector<std::vector<int32_t>> prompts(8, std::vector<int32_t>{256, 1, 2, 3, 4, 5});
  for (size_t i = 0; i < prompts.size(); ++i) prompts[i].push_back(static_cast<int32_t>(i));
  EngineConfig paged = base_config();
  paged.num_kv_blocks = 40;  // 160 tokens
  paged.max_model_len = 64;  // contiguous reserves 64 tokens per sequence: 2 fit
  EngineConfig contiguous = paged;
  contiguous.kv_layout = KvLayout::Contiguous;
  Run p = run(paged, prompts, 8), c = run(contiguous, prompts, 8);
  EXPECT_EQ(outputs_of(p), outputs_of(c));
  EXPECT_EQ(p.stats.peak_num_running, 8);
  EXPECT_EQ(c.stats.peak_num_running, 2);
}

TEST_F(EngineTest, ParallelSamplesShareThePromptAndSampleZeroEqualsTheSingleRequest) {
  // 10-token prompt, block size 4: samples share two full blocks and the partial third one,
  // which each sample's first decode step copies (copy-on-write).
  std::vector<int32_t> prompt = {256, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, model, nullptr);
  sampling::SamplingParams params;
  params.temperature = 1.0f;
  params.seed = 40;
  params.max_tokens = 12;
  params.ignore_eos = true;
  params.n = 4;
  auto samples = generate(engine, {prompt}, {params});
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(engine.check_invariants(), "");
  EXPECT_EQ(engine.stats().blocks.num_free_blocks, config.num_kv_blocks);
  // 22 tokens, the last never fed back: K/V for positions 0..20, blocks 0..5 of each sample.
  // Blocks 0-1 stay shared; block 2 (positions 8-11) exists 4 times (the original + 3 copies);
  // blocks 3-5 are private: 2 + 4 + 4 × 3.
  EXPECT_EQ(engine.stats().peak_used_blocks, 18);
  // Draws are keyed by (seed, sample index, position): sample 0 is the request alone with the
  // same seed; the others are independent streams (each checked against the mock model in
  // engine_property_test).
  for (int32_t i = 0; i < 4; ++i) EXPECT_EQ(samples[static_cast<size_t>(i)].sample_index, i);
  sampling::SamplingParams single = params;
  single.n = 1;
  EXPECT_EQ(samples[0].output_ids, run_sampled(prompt, single));
  for (int32_t i = 1; i < 4; ++i) EXPECT_NE(samples[static_cast<size_t>(i)].output_ids, samples[0].output_ids) << "sample " << i;
}

TEST_F(EngineTest, AbortFreesBlocksAndOtherRequestsContinue) {
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, model, nullptr);
  sampling::SamplingParams params = greedy(20);
  std::vector<int32_t> survivor_out;
  bool aborted_seen = false;
  RequestId doomed = engine.add_request({256, 1, 2, 3}, params, [&](const RequestOutput& out) {
    if (out.finished) aborted_seen = out.sequence.finish_reason() == FinishReason::Abort;
  });
  engine.add_request({256, 4, 5}, params, [&](const RequestOutput& out) {
    if (out.new_token_id >= 0) survivor_out.push_back(out.new_token_id);
  });
  for (int i = 0; i < 3; ++i) engine.step();
  engine.abort_request(doomed);
  while (engine.has_unfinished()) {
    engine.step();
    ASSERT_EQ(engine.check_invariants(), "");
  }
  EXPECT_TRUE(aborted_seen);
  EXPECT_EQ(engine.stats().num_aborted, 1);
  EXPECT_EQ(engine.stats().blocks.num_free_blocks, config.num_kv_blocks);
  EXPECT_EQ(survivor_out, alone({{256, 4, 5}}, 20)[0]);
}

TEST_F(EngineTest, BadRequestsAreRejectedWithClearErrors) {
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, model, nullptr);
  sampling::SamplingParams params;
  auto error = [&](std::vector<int32_t> prompt, int32_t max_tokens) {
    params.max_tokens = max_tokens;
    try {
      engine.add_request(std::move(prompt), params);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(error({}, 4), "request rejected: the prompt is empty");
  EXPECT_EQ(error({1, 2}, 127), "request rejected: prompt (2 tokens) + max_tokens (127) = 129 exceeds the maximum model length 128");
  EXPECT_EQ(error({1, 600}, 4), "request rejected: prompt token id 600 is outside the vocabulary [0, 512)");
  EXPECT_FALSE(engine.has_unfinished());
}

// The tiny preset's byte-level vocabulary (one id per byte, BOS 256, EOS 257), as `iol generate --preset tiny` uses.
tokenizer::Vocabulary tiny_vocabulary(const model::ModelConfig& model) {
  auto [tokenizer_json, tokenizer_config] =
      tokenizer::make_byte_level_tokenizer(model.vocab_size, *model.bos_token_id, model.eos_token_ids.front());
  return tokenizer::Vocabulary::from_json(tokenizer_json, "tiny");
}

TEST_F(EngineTest, StopStringEndsTheOutputBeforeIt) {
  const tokenizer::Vocabulary vocabulary = tiny_vocabulary(model);
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, model, &vocabulary);
  const std::vector<int32_t> prompt = {256, 9};
  // The greedy continuation without stop strings, and the length of its text after each token.
  std::vector<size_t> text_after;
  Completion unstopped = generate(engine, {prompt}, {greedy(24)}, [&](const RequestOutput& out) {
    if (out.new_token_id >= 0) text_after.push_back(out.sequence.text().size());
  })[0];
  ASSERT_EQ(unstopped.output_ids.size(), 24u);
  // A stop string from that text: the first two printable ASCII characters in a row (a match that
  // spans two tokens in the byte-level vocabulary), at least one token in.
  size_t at = std::string::npos;
  for (size_t i = 1; i + 1 < unstopped.text.size() && at == std::string::npos; ++i)
    if (std::isgraph(static_cast<unsigned char>(unstopped.text[i])) && std::isgraph(static_cast<unsigned char>(unstopped.text[i + 1])))
      at = i;
  ASSERT_NE(at, std::string::npos) << "no two printable characters in a row in "
                                  << nlohmann::json(unstopped.text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string stop = unstopped.text.substr(at, 2);
  ASSERT_EQ(unstopped.text.find(stop), at);
  // Generation ends with the token that completes the first match.
  const size_t completing = static_cast<size_t>(
      std::find_if(text_after.begin(), text_after.end(), [&](size_t n) { return n >= at + stop.size(); }) - text_after.begin());
  ASSERT_LT(completing + 1, unstopped.output_ids.size());
  ASSERT_GT(completing, 0u);
  ASSERT_GT(text_after[completing - 1], at);  // the match started in an earlier token

  sampling::SamplingParams params = greedy(24);
  params.stop = {stop};
  std::string streamed;
  Completion stopped = generate(engine, {prompt}, {params}, [&](const RequestOutput& out) { streamed += out.new_text; })[0];
  EXPECT_EQ(stopped.finish_reason, FinishReason::Stop);
  EXPECT_EQ(stopped.text, unstopped.text.substr(0, at)) << "stop string " << nlohmann::json(stop).dump();
  EXPECT_EQ(streamed, stopped.text);  // nothing of the stop string was streamed either
  EXPECT_EQ(stopped.output_ids,
            std::vector<int32_t>(unstopped.output_ids.begin(), unstopped.output_ids.begin() + static_cast<std::ptrdiff_t>(completing) + 1));
  EXPECT_EQ(engine.check_invariants(), "");
}

TEST_F(EngineTest, MinTokensMasksEosAndStopTokenIds) {
  const std::vector<int32_t> prompt = {256, 9};
  const std::vector<int32_t> greedy_ids = run(base_config(), {prompt}, 8).completions[0].output_ids;
  // EOS by construction: the model's greedy first token.
  model::ModelConfig eos_first = model;
  eos_first.eos_token_ids = {greedy_ids[0]};
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, eos_first, nullptr);
  sampling::SamplingParams params;
  params.temperature = 0.0f;
  params.max_tokens = 16;
  Completion at_once = generate(engine, {prompt}, {params})[0];
  EXPECT_EQ(at_once.output_ids, std::vector<int32_t>{greedy_ids[0]});
  EXPECT_EQ(at_once.finish_reason, FinishReason::Stop);
  params.min_tokens = 4;
  Completion held = generate(engine, {prompt}, {params})[0];
  ASSERT_GE(held.output_ids.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NE(held.output_ids[i], greedy_ids[0]) << "token " << i << " is EOS";

  // Stop token ids: every id of the greedy continuation stops at once, unless min_tokens holds them.
  sampling::SamplingParams stop_ids = greedy(16);
  stop_ids.stop_token_ids = greedy_ids;
  Completion stopped = generate(engine, {prompt}, {stop_ids})[0];
  EXPECT_EQ(stopped.output_ids, std::vector<int32_t>{greedy_ids[0]});
  EXPECT_EQ(stopped.finish_reason, FinishReason::Stop);
  stop_ids.min_tokens = 5;
  Completion masked = generate(engine, {prompt}, {stop_ids})[0];
  ASSERT_GE(masked.output_ids.size(), 5u);
  for (size_t i = 0; i < 5; ++i)
    EXPECT_EQ(std::count(greedy_ids.begin(), greedy_ids.end(), masked.output_ids[i]), 0) << "token " << i << " is a stop id";
  // After min_tokens a stop id ends it again (or max_tokens does).
  if (masked.finish_reason == FinishReason::Stop) {
    EXPECT_NE(std::count(greedy_ids.begin(), greedy_ids.end(), masked.output_ids.back()), 0);
  } else {
    EXPECT_EQ(masked.output_ids.size(), 16u);
  }
  EXPECT_EQ(engine.check_invariants(), "");
}

TEST_F(EngineTest, AddRequestIsThreadSafeWhileTheEngineSteps) {
  EngineConfig config = base_config();
  backend::cpu::CpuBackend backend(model, weights, config.num_kv_blocks, config.block_size);
  Engine engine(config, backend, model, nullptr);
  sampling::SamplingParams params = greedy(4);
  std::atomic<int> finished{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i)
        engine.add_request({256, t, i}, params, [&](const RequestOutput& out) { finished += out.finished; });
    });
  int steps = 0;
  while (finished.load() < 20 && steps++ < 10000) engine.step();
  for (auto& c : clients) c.join();
  while (engine.has_unfinished()) engine.step();
  EXPECT_EQ(finished.load(), 20);
  EXPECT_EQ(engine.check_invariants(), "");
}

}  // namespace
}  // namespace iol::engine
