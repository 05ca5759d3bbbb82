// Speculative decoding end to end on the trained reference pair (tests/fixtures/reference_models):
// the CPU backend's target verified against the n-gram proposer and against the draft model, for
// k = 1..8, under in-flight batching with preemption on a small KV pool — greedy outputs equal
// those without speculation token for token (issue 13, acceptance 1), stop strings included.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/engine/engine.hpp"
#include "iol/model/model_source.hpp"
#include "iol/spec/draft_model_proposer.hpp"
#include "iol/tokenizer/tokenizer.hpp"
#include "../support/reference_pair.hpp"

namespace iol {
namespace {

const std::string& kDir = testing::kReferenceModelsDir;
constexpr int32_t kBos = testing::kReferenceBos;
const auto load = testing::load_reference_model;

struct Outcome {
  std::vector<std::vector<int32_t>> outputs;
  std::vector<std::string> texts;
  engine::EngineStats stats;
};

class SpeculativeReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    target_ = new model::LoadedModel(load("target"));
    draft_ = new model::LoadedModel(load("draft"));
    tokenizer_ = tokenizer::Tokenizer::from_directory(kDir + "/target").release();
    *prompts_ = testing::reference_speculative_prompts();
  }
  static void TearDownTestSuite() {
    delete target_;
    delete draft_;
    delete tokenizer_;
  }

  // 24 blocks of 16 tokens for 6 requests of up to ~230 tokens: the pool forces preemption.
  static Outcome run(engine::SpeculativeMethod method, int64_t k, int32_t max_tokens, std::vector<std::string> stop = {},
                     int64_t num_blocks = 24) {
    engine::EngineConfig config;
    config.block_size = 16;
    config.num_kv_blocks = num_blocks;
    config.max_num_seqs = 6;
    config.max_num_batched_tokens = 256;
    config.max_model_len = 512;
    config.speculative.method = method;
    config.speculative.num_speculative_tokens = k;
    backend::cpu::CpuBackend backend(target_->config, target_->weights, num_blocks, 16, 1);
    std::unique_ptr<spec::Proposer> proposer;
    if (method == engine::SpeculativeMethod::DraftModel)
      proposer = std::make_unique<spec::DraftModelProposer>(
          std::make_unique<backend::cpu::CpuBackend>(draft_->config, draft_->weights, 256, 16, 1), target_->config.vocab_size);
    engine::Engine engine(config, backend, target_->config, &tokenizer_->vocabulary(), std::move(proposer));
    std::vector<engine::RequestId> ids;
    std::vector<const engine::Sequence*> done(prompts_->size(), nullptr);
    Outcome outcome;
    outcome.outputs.resize(prompts_->size());
    outcome.texts.resize(prompts_->size());
    for (size_t i = 0; i < prompts_->size(); ++i) {
      sampling::SamplingParams params;
      params.temperature = 0.0f;
      params.max_tokens = max_tokens;
      params.ignore_eos = true;
      params.stop = stop;
      ids.push_back(engine.add_request((*prompts_)[i], params, [&outcome, i](const engine::RequestOutput& out) {
        if (out.new_token_id >= 0) outcome.outputs[i].push_back(out.new_token_id);
        if (out.finished) outcome.texts[i] = out.sequence.text();
      }));
    }
    while (engine.has_unfinished()) {
      engine.step();
      EXPECT_EQ(engine.check_invariants(), "");
    }
    outcome.stats = engine.stats();
    return outcome;
  }

  static inline model::LoadedModel* target_ = nullptr;
  static inline model::LoadedModel* draft_ = nullptr;
  static inline tokenizer::Tokenizer* tokenizer_ = nullptr;
  static inline std::vector<std::vector<int32_t>>* prompts_ = new std::vector<std::vector<int32_t>>();


  static void expect_greedy_lossless(engine::SpeculativeMethod method) {
    const Outcome plain = run(engine::SpeculativeMethod::None, 0, kMaxTokens);
    ASSERT_GT(plain.stats.num_preemptions, 0) << "the pool must force preemption";
    for (int64_t k = 1; k <= 8; ++k) {
      const Outcome spec = run(method, k, kMaxTokens);
      const auto& s = spec.stats.speculative;
      std::printf("[ reference ] %-5s k=%lld: acceptance %.3f, mean accepted %.2f per step, %lld steps (plain %lld), "
                  "%lld preemptions, draft share %.2f\n", engine::speculative_method_name(method),
                  static_cast<long long>(k), s.acceptance_rate(), s.mean_accepted_length(),
                  static_cast<long long>(spec.stats.num_steps), static_cast<long long>(plain.stats.num_steps),
                  static_cast<long long>(spec.stats.num_preemptions), s.draft_time_share());
      EXPECT_EQ(spec.outputs, plain.outputs) << engine::speculative_method_name(method) << " k = " << k;
      EXPECT_GT(s.num_accepted_tokens, 0);
      EXPECT_LT(spec.stats.num_steps, plain.stats.num_steps);
    }
  }
  static constexpr int32_t kMaxTokens = 32;
};

TEST_F(SpeculativeReference, GreedyOutputsWithNgramEqualPlainDecodingForEveryK) {
  expect_greedy_lossless(engine::SpeculativeMethod::Ngram);
}

TEST_F(SpeculativeReference, GreedyOutputsWithTheDraftModelEqualPlainDecodingForEveryK) {
  expect_greedy_lossless(engine::SpeculativeMethod::DraftModel);
}

TEST_F(SpeculativeReference, AStopStringInsideAnAcceptedRunEndsTheTextThere) {
  const Outcome plain = run(engine::SpeculativeMethod::None, 0, 64, {}, 256);
  // A stop string taken from the middle of the first completion (bytes 10..12 of its text).
  const std::string stop = plain.texts[0].substr(10, 3);
  const Outcome plain_stop = run(engine::SpeculativeMethod::None, 0, 64, {stop}, 256);
  ASSERT_LT(plain_stop.texts[0].size(), plain.texts[0].size());
  for (auto method : {engine::SpeculativeMethod::Ngram, engine::SpeculativeMethod::DraftModel}) {
    const Outcome spec = run(method, 6, 64, {stop}, 256);
    EXPECT_EQ(spec.texts, plain_stop.texts) << engine::speculative_method_name(method);
    EXPECT_EQ(spec.outputs, plain_stop.outputs) << engine::speculative_method_name(method);
  }
}

}  // namespace
}  // namespace iol
