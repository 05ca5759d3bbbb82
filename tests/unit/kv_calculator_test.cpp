// The KV-memory calculator against hand-computed and published figures: Llama-3.1-8B keeps
// 32 layers × 8 KV heads × 128 × 2 (K, V) × 2 bytes = 128 KiB per token in bf16, Llama-3.1-70B
// 80 × 8 × 128 × 2 × 2 = 320 KiB; at 128,000 tokens that is 15.62 GiB and 39.06 GiB, the figures
// of Hugging Face's Llama 3.1 release post ("KV cache size requirements", fp16).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"
#include "iol/model/presets.hpp"
#include "iol/report/kv_calculator.hpp"

namespace iol::report {
namespace {

KvBudgetInputs pool(int64_t bytes) {
  KvBudgetInputs b;
  b.kv_cache_memory = bytes;
  return b;
}

TEST(KvCalculator, Llama31BytesPerTokenMatchPublishedFigures) {
  const auto l8 = model::preset_or_throw("llama-3.1-8b");
  const auto l70 = model::preset_or_throw("llama-3.1-70b");
  EXPECT_EQ(kv_bytes_per_token(l8, DType::BF16), 131072);   // 128 KiB
  EXPECT_EQ(kv_bytes_per_token(l70, DType::BF16), 327680);  // 320 KiB
  EXPECT_EQ(kv_bytes_per_token(l8, DType::F8_E4M3), 65536);
  EXPECT_EQ(kv_bytes_per_token(l8, DType::F32), 262144);
  const auto p8 = plan_kv_memory(l8, "8b", DType::BF16, 16, pool(int64_t{64} << 30), {128000}, 256, 131072);
  const auto p70 = plan_kv_memory(l70, "70b", DType::BF16, 16, pool(int64_t{64} << 30), {128000}, 256, 131072);
  // 128,000 tokens = 8000 blocks exactly: 15.625 GiB and 39.0625 GiB.
  EXPECT_EQ(p8.rows[0].blocks_per_sequence, 8000);
  EXPECT_EQ(p8.rows[0].bytes_per_sequence, int64_t{131072} * 128000);
  EXPECT_DOUBLE_EQ(static_cast<double>(p8.rows[0].bytes_per_sequence) / (1 << 30), 15.625);
  EXPECT_DOUBLE_EQ(static_cast<double>(p70.rows[0].bytes_per_sequence) / (1 << 30), 39.0625);
  EXPECT_EQ(p8.bytes_per_block, 2097152);  // 2 MiB: what the CUDA backend's H200 record holds per block
}

TEST(KvCalculator, Llama8BOnAnH100HandComputed) {
  // 0.9 × 80 GiB = 77,309,411,328 B; bf16 weights 2 × 8,030,261,248 = 16,060,522,496 B;
  // KV 61,248,888,832 B / 2 MiB = 29,205 blocks.
  KvBudgetInputs b;
  b.gpu_memory = int64_t{80} << 30;
  b.gpu_memory_utilization = 0.9;
  const auto plan = plan_kv_memory(model::preset_or_throw("llama-3.1-8b"), "8b", DType::BF16, 16, b, {4096, 2048, 4000}, 256, 131072);
  EXPECT_EQ(plan.weights_bytes, 16060522496);
  EXPECT_EQ(plan.kv_budget_bytes, 61248888832);
  EXPECT_EQ(plan.num_blocks, 29205);
  ASSERT_EQ(plan.rows.size(), 3u);  // sorted
  EXPECT_EQ(plan.rows[0].context_len, 2048);
  EXPECT_EQ(plan.rows[0].max_sequences_paged, 228);  // 29205 / 128
  EXPECT_EQ(plan.rows[0].admitted_paged, 228);
  EXPECT_EQ(plan.rows[1].context_len, 4000);
  EXPECT_EQ(plan.rows[1].blocks_per_sequence, 250);
  EXPECT_EQ(plan.rows[1].max_sequences_paged, 116);  // 29205 / 250
  EXPECT_EQ(plan.rows[1].wasted_tokens_paged, 0);
  EXPECT_EQ(plan.rows[2].max_sequences_paged, 114);  // 29205 / 256
  // Contiguous max-length reservation of 131,072 tokens = 8192 blocks each: 3 sequences.
  EXPECT_EQ(plan.max_sequences_contiguous, 3);
  const auto j = plan.to_json();
  EXPECT_EQ(j["contexts"][2]["max_sequences_paged"], 114);
  EXPECT_NEAR(j["contexts"][2]["paged_over_contiguous"].get<double>(), 114.0 / 3, 1e-12);
}

TEST(KvCalculator, MaxNumSeqsCapsAdmissionAndFp8HalvesTheBytes) {
  const auto l70 = model::preset_or_throw("llama-3.1-70b");
  // fp8 KV: 80 × 8 × 128 × 2 × 1 = 163,840 B per token, 2,621,440 B per 16-token block;
  // 40 GiB / 2.5 MiB = 16,384 blocks; 32k tokens = 2048 blocks → 8 sequences.
  const auto plan = plan_kv_memory(l70, "70b", DType::F8_E4M3, 16, pool(int64_t{40} << 30), {32768, 100}, 4, 32768);
  EXPECT_EQ(plan.bytes_per_token, 163840);
  EXPECT_EQ(plan.bytes_per_block, 2621440);
  EXPECT_EQ(plan.num_blocks, 16384);
  EXPECT_EQ(plan.rows[1].max_sequences_paged, 8);
  EXPECT_EQ(plan.rows[1].admitted_paged, 4);       // max_num_seqs 4
  EXPECT_EQ(plan.rows[0].blocks_per_sequence, 7);  // 100 tokens → 7 blocks, 12 slots unused
  EXPECT_EQ(plan.rows[0].wasted_tokens_paged, 12);
  EXPECT_EQ(plan.rows[0].max_sequences_paged, 2340);  // 16384 / 7
  EXPECT_EQ(plan.max_sequences_contiguous, 8);
  EXPECT_EQ(plan.admitted_contiguous, 4);
}

TEST(KvCalculator, BadInputsAreErrorsNamingTheFlag) {
  const auto tiny = model::preset_or_throw("tiny");
  EXPECT_THROW(plan_kv_memory(tiny, "t", DType::F32, 0, pool(1 << 20), {64}, 8, 64), UsageError);
  EXPECT_THROW(plan_kv_memory(tiny, "t", DType::F32, 16, pool(1 << 20), {0}, 8, 64), UsageError);
  EXPECT_THROW(plan_kv_memory(tiny, "t", DType::F32, 16, KvBudgetInputs{}, {64}, 8, 64), UsageError);
  try {
    plan_kv_memory(tiny, "t", DType::F32, 16, pool(100), {64}, 8, 64);
    FAIL() << "a 100-byte pool holds no block";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no block"), std::string::npos) << e.what();
  }
  KvBudgetInputs small;
  small.gpu_memory = int64_t{8} << 30;
  EXPECT_THROW(plan_kv_memory(model::preset_or_throw("llama-3.1-8b"), "8b", DType::BF16, 16, small, {64}, 8, 64), Error);
}

TEST(KvCalculator, ByteSizesParseWithUnits) {
  EXPECT_EQ(parse_byte_size("80GiB", "x"), int64_t{80} << 30);
  EXPECT_EQ(parse_byte_size("141 GB", "x"), int64_t{141000000000});
  EXPECT_EQ(parse_byte_size("256MiB", "x"), int64_t{256} << 20);
  EXPECT_EQ(parse_byte_size("4096", "x"), 4096);
  EXPECT_EQ(parse_byte_size("1.5e9", "x"), 1500000000);
  EXPECT_THROW(parse_byte_size("12 parsecs", "--gpu-memory"), UsageError);
  EXPECT_THROW(parse_byte_size("lots", "--gpu-memory"), UsageError);
  EXPECT_THROW(parse_byte_size("-5GiB", "--gpu-memory"), UsageError);
}

}  // namespace
}  // namespace iol::report
