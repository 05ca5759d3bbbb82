// Transformers' bf16 reference fixtures (tests/reference/make_hf_bf16_reference.py, written on the
// GPU machine): loading them, and the prefill-logits comparison any backend must pass.
#pragma once
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

#include "iol/backend/backend.hpp"
#include "iol/backend/forward_batch.hpp"
#include "iol/core/json_file.hpp"
#include "iol/model/model_source.hpp"

namespace iol::testing {

// The tolerance of a bf16 engine, as a fraction of the largest |reference logit| of the row.
//
// bf16 keeps 8 significant bits, so every rounding moves a value by up to u = 2^-8 ≈ 0.4% of
// itself. A bf16 engine rounds at some tens of points (q/k/v, attention probabilities, SiLU·up,
// each residual add, the logits...). Against the exact (fp32) result of the same weights its final
// hidden state is off by a random walk of those roundings, ≈ √30·u ≈ 2% of its norm, which moves
// each logit by ≈ 2% of the logits' standard deviation σ; the largest |Δ| over 512 logits is then
// ≈ 3·0.02·σ, and max |logit| ≈ 3σ, so ≈ 0.02 × max|logit| (the CUDA backend measures ≤ 0.02
// against the fp32 CPU backend). 0.05 leaves a margin of 2×. transformers' own bf16 run is such an
// engine too, rounding at other points (and, in eager attention, the raw QKᵀ scores before the
// softmax). The GQA fixture (sharp attention from its large random q/k weights) amplifies
// roundings: transformers' own bf16 run lies up to 0.118 × max|logit| from the exact result there
// (fixture field bf16_vs_fp32_worst_ratio). An engine is therefore held, per position, to 0.05 plus
// transformers' own bf16 error at that position: no less accurate than transformers in bf16. The
// bugs this test is for (a bias or norm weight dropped or misapplied, a wrong RoPE band or GQA head
// mapping, the wrong head for tied embeddings) move logits by O(σ) ≈ 0.3 × max|logit|: the
// fixtures' random biases (std 0.5) and norm weights (1 + 0.2·randn) are sized so that they do.
constexpr double kLogitTolerance = 0.05;

constexpr int64_t kHfBf16BlockSize = 16;

inline const std::string kFixtureDir = std::string(IOL_FIXTURES_DIR) + "/hf_bf16";
inline const char* const kMakeFixtures =
    "run `python3 tests/reference/make_hf_bf16_reference.py --out tests/fixtures/hf_bf16` on the GPU machine "
    "(torch + transformers) and commit its output";

struct PromptCase {
  std::vector<int32_t> prompt_ids, greedy_ids;
  std::vector<double> greedy_top2_gaps, greedy_max_abs_logits;
  std::vector<float> logits;       // prompt_ids.size() × vocab, transformers' bf16 logits as fp32
  std::vector<float> logits_fp32;  // the same checkpoint run by transformers in fp32 (TF32 off)
};

struct Fixture {
  nlohmann::json record;
  std::string checkpoint_dir;
  int64_t vocab_size = 0;
  std::vector<PromptCase> cases;
};

// Fails the test (gtest assertion) and returns false when the fixture is missing or inconsistent.
inline bool load_fixture(const std::string& name, Fixture& fixture) {
  const std::string base = kFixtureDir + "/" + name;
  const bool present = std::filesystem::is_directory(base) && std::filesystem::exists(base + ".json");
  EXPECT_TRUE(present) << base << "{/,.json} not found: " << kMakeFixtures;
  if (!present) return false;
  fixture.record = read_json_file(base + ".json");
  fixture.checkpoint_dir = kFixtureDir + "/" + fixture.record.at("checkpoint_dir").get<std::string>();
  fixture.vocab_size = fixture.record.at("vocab_size").get<int64_t>();
  const auto shape = fixture.record.at("logits_shape").get<std::vector<int64_t>>();
  int64_t rows = 0;
  for (const auto& p : fixture.record.at("prompts")) {
    PromptCase c;
    c.prompt_ids = p.at("prompt_ids").get<std::vector<int32_t>>();
    c.greedy_ids = p.at("greedy_ids").get<std::vector<int32_t>>();
    c.greedy_top2_gaps = p.at("greedy_top2_gaps").get<std::vector<double>>();
    c.greedy_max_abs_logits = p.at("greedy_max_abs_logits").get<std::vector<double>>();
    EXPECT_EQ(p.at("logits_row_offset").get<int64_t>(), rows) << name << ".json: prompts out of order";
    rows += static_cast<int64_t>(c.prompt_ids.size());
    fixture.cases.push_back(std::move(c));
  }
  EXPECT_EQ(shape, (std::vector<int64_t>{rows, fixture.vocab_size})) << name << ".json: logits_shape";
  // Both logits files: [rows][vocab] little-endian fp32, prompts concatenated in order.
  for (const char* key : {"logits_file", "fp32_logits_file"}) {
    EXPECT_TRUE(fixture.record.contains(key)) << name << ".json has no " << key << ": " << kMakeFixtures;
    if (!fixture.record.contains(key)) return false;
    const std::string path = kFixtureDir + "/" + fixture.record.at(key).get<std::string>();
    std::ifstream blob(path, std::ios::binary);
    EXPECT_TRUE(blob.good()) << path << ": cannot open: " << kMakeFixtures;
    if (!blob.good()) return false;
    for (PromptCase& c : fixture.cases) {
      std::vector<float>& logits = std::string(key) == "logits_file" ? c.logits : c.logits_fp32;
      logits.resize(c.prompt_ids.size() * static_cast<size_t>(fixture.vocab_size));
      blob.read(reinterpret_cast<char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    }
    EXPECT_TRUE(blob.good()) << path << " is shorter than " << name << ".json says: " << kMakeFixtures;
    if (!blob.good()) return false;
  }
  return !fixture.cases.empty();
}

inline model::LoadedModel load_checkpoint(const Fixture& fixture) {
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

struct RowStats {
  double max_abs_ref = 0, max_abs_diff = 0, top2_gap_ref = 0;
  int64_t argmax_ref = 0, argmax_got = 0;
};

inline RowStats compare_row(const float* got, const float* ref, int64_t vocab) {
  RowStats s;
  double best = -INFINITY, second = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) {
    s.max_abs_ref = std::max(s.max_abs_ref, std::abs(static_cast<double>(ref[v])));
    const double diff = std::abs(static_cast<double>(got[v]) - ref[v]);
    s.max_abs_diff = std::isfinite(diff) ? std::max(s.max_abs_diff, diff) : INFINITY;  // NaN/Inf never pass
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

// Each prompt as one prefill (positions 0..n-1, blocks 0,1,2,...): the logits of every position.
// The backend needs ceil(prompt length / kHfBf16BlockSize) KV blocks of that size.
inline std::vector<float> prefill_logits(backend::Backend& backend, const PromptCase& c, int64_t vocab) {
  const int32_t n = static_cast<int32_t>(c.prompt_ids.size());
  const int32_t num_blocks = static_cast<int32_t>((n + kHfBf16BlockSize - 1) / kHfBf16BlockSize);
  EXPECT_LE(num_blocks, backend.kv_cache_spec().shape.num_blocks) << "the backend's KV pool is too small";
  std::vector<int32_t> positions(static_cast<size_t>(n)), block_table(static_cast<size_t>(num_blocks));
  std::vector<int64_t> slot_mapping(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 0);
  std::iota(block_table.begin(), block_table.end(), 0);
  for (int32_t i = 0; i < n; ++i) slot_mapping[static_cast<size_t>(i)] = i;  // blocks 0,1,2,... in order
  const std::vector<int32_t> query_start_loc = {0, n}, context_lens = {n};
  backend::ForwardBatch batch{.token_ids = c.prompt_ids,
                              .positions = positions,
                              .slot_mapping = slot_mapping,
                              .query_start_loc = query_start_loc,
                              .context_lens = context_lens,
                              .block_tables = block_table,
                              .max_blocks_per_seq = num_blocks,
                              .logits_indices = positions};  // every position
  std::vector<float> logits(static_cast<size_t>(n) * static_cast<size_t>(vocab));
  backend.compute_logits(batch, logits);
  return logits;
}

// Which reference a backend's logits are held to, and how closely.
struct LogitsCheck {
  bool against_fp32 = false;  // transformers in fp32 (the exact result of the weights); else in bf16
  double fraction = kLogitTolerance;  // tolerance = fraction × max |reference logit| of the row ...
  // ... + that row's max |bf16 − fp32| of transformers, i.e. the bf16 reference's own error: an
  // engine within `fraction` of the exact result is within fraction + that error of the bf16 one.
  bool plus_reference_bf16_error = false;
  std::string name() const {
    return std::string(against_fp32 ? "transformers fp32" : "transformers bf16") + ", tolerance " +
           std::to_string(fraction) + " x max|logit|" + (plus_reference_bf16_error ? " + its bf16 error" : "");
  }
};

// Every position within the check's tolerance, and the same argmax wherever the reference's winner
// leads by more than that tolerance (closer rows are near ties rounding may legitimately flip).
inline void expect_logits_match(const std::vector<float>& logits, const PromptCase& c, int64_t vocab,
                                const LogitsCheck& check, const std::string& label) {
  const int64_t n = static_cast<int64_t>(c.prompt_ids.size());
  SCOPED_TRACE(label + ", prompt of " + std::to_string(n) + " tokens, against " + check.name());
  const std::vector<float>& reference = check.against_fp32 ? c.logits_fp32 : c.logits;
  double worst_ratio = 0, worst_reference_error = 0;
  int64_t argmax_checked = 0, over_tolerance = 0, argmax_mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    const RowStats s = compare_row(logits.data() + i * vocab, reference.data() + i * vocab, vocab);
    double tolerance = check.fraction * s.max_abs_ref;
    if (check.plus_reference_bf16_error) {
      const RowStats own = compare_row(c.logits.data() + i * vocab, c.logits_fp32.data() + i * vocab, vocab);
      tolerance += own.max_abs_diff;
      worst_reference_error = std::max(worst_reference_error, own.max_abs_diff / own.max_abs_ref);
    }
    worst_ratio = std::max(worst_ratio, s.max_abs_diff / s.max_abs_ref);
    if (!(s.max_abs_diff <= tolerance) && over_tolerance++ < 5)  // NaN fails
      ADD_FAILURE() << "position " << i << ": max |logit - reference| = " << s.max_abs_diff << " > " << tolerance
                    << " (max |reference logit| " << s.max_abs_ref << ")";
    if (s.top2_gap_ref > tolerance) {
      ++argmax_checked;
      if (s.argmax_got != s.argmax_ref && argmax_mismatches++ < 5)
        ADD_FAILURE() << "position " << i << ": argmax " << s.argmax_got << ", reference " << s.argmax_ref
                      << " (its top-2 gap " << s.top2_gap_ref << " > tolerance " << tolerance << ")";
    }
  }
  EXPECT_EQ(over_tolerance, 0) << over_tolerance << " of " << n << " positions exceed the tolerance";
  EXPECT_EQ(argmax_mismatches, 0) << argmax_mismatches << " of " << argmax_checked << " clear argmaxes differ";
  std::printf("[ hf parity ] %s, %lld positions vs %s: worst max|dlogit|/max|logit| %.2e%s, argmax checked at %lld\n",
              label.c_str(), static_cast<long long>(n), check.name().c_str(), worst_ratio,
              check.plus_reference_bf16_error
                  ? (" (reference's own bf16 error up to " + std::to_string(worst_reference_error) + ")").c_str()
                  : "",
              static_cast<long long>(argmax_checked));
}

}  // namespace iol::testing
