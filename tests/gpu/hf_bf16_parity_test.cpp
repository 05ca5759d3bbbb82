// Parity of the CUDA backend with Hugging Face transformers running the same bf16 checkpoints in
// bf16 on the GPU (eager attention): prefill logits at every prompt position within a bf16
// tolerance, and greedy generation through the engine equal to transformers' generate() wherever
// the reference's choice was not a near tie.
// Fixtures: tests/reference/make_hf_bf16_reference.py --out tests/fixtures/hf_bf16 (GPU machine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/backend/cuda/cuda_backend.hpp"
#include "iol/backend/forward_batch.hpp"
#include "iol/core/json_file.hpp"
#include "iol/engine/engine.hpp"
#include "iol/model/model_source.hpp"

namespace iol {
namespace {

// The tolerance, as a fraction of the largest |reference logit| of the row (per position).
//
// bf16 keeps 8 significant bits, so every rounding moves a value by up to u = 2^-8 ≈ 0.4% of
// itself. transformers rounds the output of every op to bf16 (q/k/v, RoPE with cos/sin cast to
// bf16, attention probabilities, SiLU·up, each residual add, the logits themselves); iol rounds at
// other points (fused QKV and gate/up GEMMs with fp32 accumulation and epilogues, RoPE in fp32).
// The two final hidden states therefore differ by some tens of independent roundings of relative
// size ≤ u: as a random walk ≈ √30·u ≈ 2% of the hidden state's norm, which moves each logit by
// ≈ 2% of the logits' standard deviation σ; the largest |Δ| over 512 logits is then ≈ 3·0.02·σ,
// and max |logit| ≈ 3σ, so ≈ 0.02 × max|logit|. Adding the reference logits' own bf16 rounding
// (≤ u × max|logit|), 0.05 leaves a margin of 2× over that estimate. The bugs this test is for (a
// bias or norm weight dropped or misapplied, a wrong RoPE band or GQA head mapping, the wrong head
// for tied embeddings) move logits by O(σ) ≈ 0.3 × max|logit|: the fixtures' random biases
// (std 0.5) and norm weights (1 + 0.2·randn) are sized so that they do.
constexpr double kLogitTolerance = 0.05;

// Greedy tokens compared per model, summed over its four prompts, below which the test fails even
// though every divergence was at a near tie: 64 = on average one 16-token KV block of decode per
// prompt, so the decode path (one token per step, KV block boundaries crossed mid-generation, CUDA
// graph replay) is really checked against transformers, not only the prefill.
constexpr int64_t kMinComparedTokensPerModel = 64;

constexpr int64_t kBlockSize = 16;
constexpr int64_t kNumKvBlocks = 256;
constexpr int64_t kMaxNumSeqs = 8;
constexpr int64_t kMaxNumBatchedTokens = 1024;
constexpr int64_t kMaxModelLen = 1024;

const std::string kFixtureDir = std::string(IOL_FIXTURES_DIR) + "/hf_bf16";
const char* const kMakeFixtures =
    "run `python3 tests/reference/make_hf_bf16_reference.py --out tests/fixtures/hf_bf16` on the GPU machine "
    "(torch + transformers) and commit its output";

struct PromptCase {
  std::vector<int32_t> prompt_ids, greedy_ids;
  std::vector<double> greedy_top2_gaps, greedy_max_abs_logits;
  std::vector<float> logits;  // prompt_ids.size() × vocab, transformers' bf16 logits as fp32
};

struct Fixture {
  nlohmann::json record;
  std::string checkpoint_dir;
  int64_t vocab_size = 0;
  std::vector<PromptCase> cases;
};

// Fails the test (gtest assertion) and returns false when the fixture is missing or inconsistent.
bool load_fixture(const std::string& name, Fixture& fixture) {
  const std::string base = kFixtureDir + "/" + name;
  const bool present = std::filesystem::is_directory(base) && std::filesystem::exists(base + ".json");
  EXPECT_TRUE(present) << base << "{/,.json} not found: " << kMakeFixtures;
  if (!present) return false;
  fixture.record = read_json_file(base + ".json");
  fixture.checkpoint_dir = kFixtureDir + "/" + fixture.record.at("checkpoint_dir").get<std::string>();
  fixture.vocab_size = fixture.record.at("vocab_size").get<int64_t>();
  const auto shape = fixture.record.at("logits_shape").get<std::vector<int64_t>>();
  const std::string logits_path = kFixtureDir + "/" + fixture.record.at("logits_file").get<std::string>();
  std::ifstream blob(logits_path, std::ios::binary);
  EXPECT_TRUE(blob.good()) << logits_path << ": cannot open: " << kMakeFixtures;
  if (!blob.good()) return false;
  int64_t rows = 0;
  for (const auto& p : fixture.record.at("prompts")) {
    PromptCase c;
    c.prompt_ids = p.at("prompt_ids").get<std::vector<int32_t>>();
    c.greedy_ids = p.at("greedy_ids").get<std::vector<int32_t>>();
    c.greedy_top2_gaps = p.at("greedy_top2_gaps").get<std::vector<double>>();
    c.greedy_max_abs_logits = p.at("greedy_max_abs_logits").get<std::vector<double>>();
    EXPECT_EQ(p.at("logits_row_offset").get<int64_t>(), rows) << name << ".json: prompts out of order";
    c.logits.resize(c.prompt_ids.size() * static_cast<size_t>(fixture.vocab_size));
    blob.read(reinterpret_cast<char*>(c.logits.data()), static_cast<std::streamsize>(c.logits.size() * sizeof(float)));
    rows += static_cast<int64_t>(c.prompt_ids.size());
    fixture.cases.push_back(std::move(c));
  }
  EXPECT_TRUE(blob.good()) << logits_path << " is shorter than " << name << ".json says: " << kMakeFixtures;
  EXPECT_EQ(shape, (std::vector<int64_t>{rows, fixture.vocab_size})) << name << ".json: logits_shape";
  return blob.good() && !fixture.cases.empty();
}

model::LoadedModel load_checkpoint(const Fixture& fixture) {
  model::ModelSource source;
  source.model_dir = fixture.checkpoint_dir;
  source.load_format = model::LoadFormat::Safetensors;
  model::LoadedModel loaded = model::load_model(source);
  const auto& r = fixture.record;
  EXPECT_EQ(loaded.config.architecture, r.at("model_class").get<std::string>());
  EXPECT_EQ(loaded.config.vocab_size, fixture.vocab_size);
  EXPECT_EQ(loaded.config.num_key_value_heads, r.at("num_key_value_heads").get<int64_t>());
  EXPECT_EQ(loaded.config.head_dim, r.at("head_dim").get<int64_t>());
  return loaded;
}

backend::cuda::CudaBackendOptions backend_options() {
  backend::cuda::CudaBackendOptions options;
  options.block_size = kBlockSize;
  options.num_kv_blocks = kNumKvBlocks;
  options.max_num_seqs = kMaxNumSeqs;
  options.max_num_batched_tokens = kMaxNumBatchedTokens;
  options.max_model_len = kMaxModelLen;
  options.max_logits_rows = kMaxNumBatchedTokens;  // prefill parity reads logits at every position
  return options;
}

struct RowStats {
  double max_abs_ref = 0, max_abs_diff = 0, top2_gap_ref = 0;
  int64_t argmax_ref = 0, argmax_got = 0;
};

RowStats compare_row(const float* got, const float* ref, int64_t vocab) {
  RowStats s;
  double best = -INFINITY, second = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) {
    s.max_abs_ref = std::max(s.max_abs_ref, std::abs(static_cast<double>(ref[v])));
    s.max_abs_diff = std::max(s.max_abs_diff, std::abs(static_cast<double>(got[v]) - ref[v]));
    if (ref[v] > best) {
      second = best;
      best = ref[v];
      s.argmax_ref = v;
    } else if (ref[v] > second) {
      second = ref[v];
    }
    if (got[v] > got[s.argmax_got]) s.argmax_got = v;
  }
  s.top2_gap_ref = best - second;
  return s;
}

class HfBf16Parity : public ::testing::TestWithParam<std::string> {};

// Each prompt as one prefill (positions 0..n-1, blocks 0,1,2,...): the logits of every position.
TEST_P(HfBf16Parity, PrefillLogitsMatchTransformersWithinBf16Tolerance) {
  Fixture fixture;
  ASSERT_TRUE(load_fixture(GetParam(), fixture));
  model::LoadedModel loaded = load_checkpoint(fixture);
  backend::cuda::CudaBackend backend(loaded.config, *loaded.weights, backend_options());
  const int64_t vocab = fixture.vocab_size;
  ASSERT_EQ(backend.vocab_size(), vocab);

  for (const PromptCase& c : fixture.cases) {
    const int32_t n = static_cast<int32_t>(c.prompt_ids.size());
    SCOPED_TRACE(GetParam() + ", prompt of " + std::to_string(n) + " tokens");
    const int32_t num_blocks = static_cast<int32_t>((n + kBlockSize - 1) / kBlockSize);
    ASSERT_LE(num_blocks, kNumKvBlocks);
    std::vector<int32_t> positions(static_cast<size_t>(n)), block_table(static_cast<size_t>(num_blocks));
    std::vector<int64_t> slot_mapping(static_cast<size_t>(n));
    std::iota(positions.begin(), positions.end(), 0);
    std::iota(block_table.begin(), block_table.end(), 0);
    for (int32_t i = 0; i < n; ++i)
      slot_mapping[static_cast<size_t>(i)] = block_table[static_cast<size_t>(i / kBlockSize)] * kBlockSize + i % kBlockSize;
    const std::vector<int32_t> query_start_loc = {0, n}, context_lens = {n};
    const std::vector<int32_t>& logits_indices = positions;  // every position
    backend::ForwardBatch batch{.token_ids = c.prompt_ids,
                                .positions = positions,
                                .slot_mapping = slot_mapping,
                                .query_start_loc = query_start_loc,
                                .context_lens = context_lens,
                                .block_tables = block_table,
                                .max_blocks_per_seq = num_blocks,
                                .logits_indices = logits_indices};
    std::vector<float> logits(static_cast<size_t>(n) * static_cast<size_t>(vocab));
    backend.compute_logits(batch, logits);

    double worst_ratio = 0;
    int64_t argmax_checked = 0, over_tolerance = 0, argmax_mismatches = 0;
    for (int32_t i = 0; i < n; ++i) {
      const RowStats s = compare_row(logits.data() + int64_t{i} * vocab, c.logits.data() + int64_t{i} * vocab, vocab);
      const double tolerance = kLogitTolerance * s.max_abs_ref;
      worst_ratio = std::max(worst_ratio, s.max_abs_diff / s.max_abs_ref);
      if (s.max_abs_diff > tolerance && over_tolerance++ < 5)
        ADD_FAILURE() << "position " << i << ": max |logit - reference| = " << s.max_abs_diff << " > " << tolerance
                      << " (" << kLogitTolerance << " x max |reference logit| " << s.max_abs_ref << ")";
      // Only where the reference's winner led by more than the tolerance: closer rows are near
      // ties that bf16 rounding may legitimately flip.
      if (s.top2_gap_ref > tolerance) {
        ++argmax_checked;
        if (s.argmax_got != s.argmax_ref && argmax_mismatches++ < 5)
          ADD_FAILURE() << "position " << i << ": argmax " << s.argmax_got << ", transformers " << s.argmax_ref
                        << " (its top-2 gap " << s.top2_gap_ref << " > tolerance " << tolerance << ")";
      }
    }
    EXPECT_EQ(over_tolerance, 0) << over_tolerance << " of " << n << " positions exceed the tolerance";
    EXPECT_EQ(argmax_mismatches, 0) << argmax_mismatches << " of " << argmax_checked << " clear argmaxes differ";
    std::printf("[ bf16 parity ] %s, %d positions: worst max|dlogit|/max|logit| %.4f (tolerance %.2f), "
                "argmax checked at %lld\n",
                GetParam().c_str(), n, worst_ratio, kLogitTolerance, static_cast<long long>(argmax_checked));
  }
}

// All prompts at once through the engine (in-flight batching, paged KV, decode steps as CUDA
// graphs), greedy with ignore_eos: the tokens of transformers' generate().
TEST_P(HfBf16Parity, GreedyGenerationMatchesTransformersUpToNearTies) {
  Fixture fixture;
  ASSERT_TRUE(load_fixture(GetParam(), fixture));
  model::LoadedModel loaded = load_checkpoint(fixture);
  backend::cuda::CudaBackend backend(loaded.config, *loaded.weights, backend_options());

  engine::EngineConfig engine_config;
  engine_config.num_kv_blocks = backend.kv_cache_spec().shape.num_blocks;
  engine_config.block_size = kBlockSize;
  engine_config.max_num_seqs = kMaxNumSeqs;
  engine_config.max_num_batched_tokens = kMaxNumBatchedTokens;
  engine_config.max_model_len = kMaxModelLen;
  engine::Engine engine(engine_config, backend, loaded.config, nullptr);

  const size_t num_prompts = fixture.cases.size();
  std::vector<std::vector<int32_t>> outputs(num_prompts);
  std::vector<char> finished(num_prompts, 0);
  for (size_t i = 0; i < num_prompts; ++i) {
    sampling::SamplingParams params;
    params.temperature = 0.0f;
    params.max_tokens = static_cast<int32_t>(fixture.cases[i].greedy_ids.size());
    params.ignore_eos = true;
    engine.add_request(fixture.cases[i].prompt_ids, params, [&outputs, &finished, i](const engine::RequestOutput& out) {
      if (!out.finished) return;
      auto ids = out.sequence.output_ids();
      outputs[i].assign(ids.begin(), ids.end());
      finished[i] = 1;
    });
  }
  for (int64_t step = 0; engine.has_unfinished(); ++step) {
    ASSERT_LT(step, 10 * kMaxModelLen) << "the engine does not finish";
    engine.step();
  }
  EXPECT_EQ(engine.check_invariants(), "");

  // A divergence is excused only at a near tie: where transformers' top-2 gap at that step was
  // below the tolerance, bf16 rounding on either side may pick the other token, and from there the
  // continuations legitimately differ, so comparing stops. A divergence where the reference's
  // winner led by more than the tolerance is a failure. Equal tokens at a near tie keep the
  // contexts identical, so comparing goes on past them.
  int64_t compared_total = 0;
  for (size_t i = 0; i < num_prompts; ++i) {
    const PromptCase& c = fixture.cases[i];
    SCOPED_TRACE(GetParam() + ", prompt of " + std::to_string(c.prompt_ids.size()) + " tokens");
    ASSERT_TRUE(finished[i]) << "request did not finish";
    ASSERT_EQ(outputs[i].size(), c.greedy_ids.size()) << "ignore_eos + max_tokens must give exactly max_tokens tokens";
    size_t compared = 0;
    std::string stop_reason = "all equal";
    for (; compared < c.greedy_ids.size(); ++compared) {
      if (outputs[i][compared] == c.greedy_ids[compared]) continue;
      const double tolerance = kLogitTolerance * c.greedy_max_abs_logits[compared];
      const double gap = c.greedy_top2_gaps[compared];
      EXPECT_LT(gap, tolerance) << "token " << compared << ": engine " << outputs[i][compared] << ", transformers "
                                << c.greedy_ids[compared] << " whose top-2 gap " << gap
                                << " exceeds the bf16 tolerance " << tolerance;
      stop_reason = "diverged at a near tie (gap " + std::to_string(gap) + ") at token " + std::to_string(compared);
      break;
    }
    compared_total += static_cast<int64_t>(compared);
    std::printf("[ bf16 parity ] %s, prompt of %zu: %zu of %zu greedy tokens compared, %s\n", GetParam().c_str(),
                c.prompt_ids.size(), compared, c.greedy_ids.size(), stop_reason.c_str());
  }
  EXPECT_GE(compared_total, kMinComparedTokensPerModel)
      << "too few greedy tokens compared before near-tie divergences for the test to check the decode path";
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, HfBf16Parity, ::testing::Values("llama31-gqa", "qwen2-bias-tied"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace iol
