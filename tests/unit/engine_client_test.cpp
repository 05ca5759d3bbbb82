// EngineClient: requests from other threads, outputs as value events, aborts freeing blocks, and
// a backend failure that ends every in-flight stream with the error instead of leaving it waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../support/mock_backend.hpp"
#include "iol/core/error.hpp"
#include "iol/engine/engine_client.hpp"

namespace iol::engine {
namespace {

constexpr int64_t kVocab = 64;

// The mock model, failing from the `fail_at`-th execute on (as a CUDA error would).
class FailingBackend final : public backend::Backend {
 public:
  FailingBackend(int64_t blocks, int64_t block_size, int fail_at, int poison_at = 1 << 30)
      : mock_(blocks, block_size, kVocab), fail_at_(fail_at), poison_at_(poison_at) {}
  std::string name() const override { return "failing"; }
  const backend::KvCacheSpec& kv_cache_spec() const override { return mock_.kv_cache_spec(); }
  int64_t vocab_size() const override { return kVocab; }
  void execute(const backend::ForwardBatch& batch, const sampling::SamplingBatch& sampling, sampling::SampledBatch& out) override {
    if (++calls_ >= fail_at_) fail("cuda: an illegal memory access was encountered (simulated)");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a step takes time, so an abort lands mid-request
    mock_.execute(batch, sampling, out);
    // The sampler's answer to NaN/Inf logits in row 0 (sampling::kInvalidToken): that request fails.
    if (calls_ == poison_at_ && !out.tokens.empty()) out.tokens[0] = -1;
  }
  void compute_logits(const backend::ForwardBatch& batch, std::span<float> logits) override { mock_.compute_logits(batch, logits); }
  void copy_blocks(std::span<const std::pair<int32_t, int32_t>> copies) override { mock_.copy_blocks(copies); }

 private:
  testing::MockBackend mock_;
  int fail_at_;
  int poison_at_;
  int calls_ = 0;
};

EngineConfig small_config() {
  EngineConfig config;
  config.num_kv_blocks = 64;
  config.block_size = 4;
  config.max_model_len = 64;
  return config;
}

TEST(EngineClient, StreamsValueEventsAndAbortsFreeBlocks) {
  EngineConfig config = small_config();
  model::ModelConfig model;
  model.vocab_size = kVocab;
  FailingBackend backend(config.num_kv_blocks, config.block_size, 1 << 30);
  Engine engine(config, backend, model, nullptr);
  EngineClient client(engine);
  std::thread engine_thread([&] { client.run(); });
  sampling::SamplingParams params;
  params.temperature = 0;
  params.max_tokens = 5;
  params.ignore_eos = true;
  auto done = std::make_shared<OutputStream>(1);
  client.add_request({1, 2, 3}, params, done);
  std::vector<int32_t> tokens;
  bool finished = false;
  while (!finished)  // (not done(): the engine may have finished before the first take)
    for (const auto& e : done->wait_and_take()) {
      finished |= e.finished;
      if (e.token_id >= 0) tokens.push_back(e.token_id);
      if (e.finished) {
        EXPECT_EQ(e.finish_reason, FinishReason::Length);
        EXPECT_EQ(e.num_output_tokens, 5);
        EXPECT_EQ(e.num_prompt_tokens, 3);
      }
    }
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_EQ(tokens[0], testing::mock_next_token(std::vector<int32_t>{1, 2, 3}, kVocab));

  params.max_tokens = 60;
  auto aborted = std::make_shared<OutputStream>(1);
  const RequestId id = client.add_request({4, 5, 6}, params, aborted);
  FinishReason reason = FinishReason::None;
  for (const auto& e : aborted->wait_and_take())  // running: its first token is out
    if (e.finished) reason = e.finish_reason;
  client.abort(id);
  while (reason == FinishReason::None)
    for (const auto& e : aborted->wait_and_take())
      if (e.finished) reason = e.finish_reason;
  EXPECT_EQ(reason, FinishReason::Abort);
  // Invalid requests fail in the caller's thread, with the engine's message.
  params.max_tokens = 100;
  EXPECT_THROW(client.add_request({1}, params, std::make_shared<OutputStream>(1)), Error);
  client.stop();
  engine_thread.join();
  EXPECT_EQ(client.snapshot().stats.blocks.num_used_blocks, 0);
  EXPECT_EQ(client.check_invariants(), "");
}

TEST(EngineClient, BackendFailureEndsEveryInFlightStreamWithTheError) {
  EngineConfig config = small_config();
  model::ModelConfig model;
  model.vocab_size = kVocab;
  FailingBackend backend(config.num_kv_blocks, config.block_size, 3);
  Engine engine(config, backend, model, nullptr);
  EngineClient client(engine);
  sampling::SamplingParams params;
  params.max_tokens = 40;
  params.ignore_eos = true;
  std::vector<std::shared_ptr<OutputStream>> streams;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(std::make_shared<OutputStream>(1));
    client.add_request({1, 2, static_cast<int32_t>(i)}, params, streams.back());
  }
  std::thread engine_thread([&] { client.run(); });  // returns after failing them
  engine_thread.join();
  EXPECT_TRUE(client.dead());
  EXPECT_NE(client.dead_reason().find("illegal memory access"), std::string::npos);
  for (auto& s : streams) {
    EXPECT_TRUE(s->done());
    bool saw_error = false;
    for (const auto& e : s->take()) saw_error |= e.error.find("engine failed: cuda: an illegal memory access") == 0;
    EXPECT_TRUE(saw_error);
  }
  try {
    client.add_request({1, 2}, params, std::make_shared<OutputStream>(1));
    ADD_FAILURE() << "a dead engine accepted a request";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("engine failed"), std::string::npos);
  }
}

// A request the engine fails (non-finite logits) ends its stream with the reason as an error;
// the engine lives on and the other request completes.
TEST(EngineClient, RequestFailureEndsThatStreamWithItsReason) {
  EngineConfig config = small_config();
  model::ModelConfig model;
  model.vocab_size = kVocab;
  FailingBackend backend(config.num_kv_blocks, config.block_size, 1 << 30, 3);
  Engine engine(config, backend, model, nullptr);
  EngineClient client(engine);
  sampling::SamplingParams params;
  params.max_tokens = 10;
  params.ignore_eos = true;
  std::vector<std::shared_ptr<OutputStream>> streams;
  for (int i = 0; i < 2; ++i) {
    streams.push_back(std::make_shared<OutputStream>(1));
    client.add_request({1, 2, static_cast<int32_t>(i)}, params, streams.back());
  }
  std::thread engine_thread([&] { client.run(); });
  int failed = 0, completed = 0;
  for (auto& s : streams) {
    bool finished = false;
    while (!finished)
      for (const auto& e : s->wait_and_take()) {
        if (!e.finished) continue;
        finished = true;
        if (e.finish_reason == FinishReason::Error) {
          ++failed;
          EXPECT_NE(e.error.find("non-finite logits"), std::string::npos) << e.error;
        } else {
          ++completed;
          EXPECT_EQ(e.finish_reason, FinishReason::Length);
          EXPECT_TRUE(e.error.empty());
        }
      }
    EXPECT_TRUE(s->done());
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(completed, 1);
  EXPECT_FALSE(client.dead());
  client.stop();
  engine_thread.join();
  EXPECT_EQ(client.snapshot().stats.blocks.num_used_blocks, 0);
  EXPECT_EQ(client.check_invariants(), "");
}

}  // namespace
}  // namespace iol::engine
