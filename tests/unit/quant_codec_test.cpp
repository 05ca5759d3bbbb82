// The host side of the 8-bit numerical contract (iol::quant, docs/quantization.md): E4M3 and INT8
// encoders on known values, ties and saturation; row scales; and the CPU backend's simulation of
// each scheme (close to bf16 on a model, not equal to it, and none = the unquantized forward).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../support/backend_batches.hpp"
#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/model/presets.hpp"
#include "iol/quant/codec.hpp"

namespace iol::quant {
namespace {

TEST(E4M3, EveryFiniteCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(decode_e4m3(static_cast<uint8_t>(code))));
      continue;
    }
    const float v = decode_e4m3(static_cast<uint8_t>(code));
    EXPECT_EQ(encode_e4m3(v), code) << "code " << code << " value " << v;
  }
}

TEST(E4M3, KnownValuesTiesAndSaturation) {
  EXPECT_EQ(decode_e4m3(0x38), 1.0f);
  EXPECT_EQ(decode_e4m3(0x7e), 448.0f);
  EXPECT_EQ(decode_e4m3(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(decode_e4m3(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(encode_e4m3(1.0625f), 0x38);   // halfway 1 and 1.125: to the even code
  EXPECT_EQ(encode_e4m3(1.1875f), 0x3a);   // halfway 1.125 and 1.25: to the even code
  EXPECT_EQ(encode_e4m3(1.07f), 0x39);
  EXPECT_EQ(encode_e4m3(-2.0f), 0xc0);
  EXPECT_EQ(encode_e4m3(460.0f), 0x7e);    // saturates, never NaN
  EXPECT_EQ(encode_e4m3(-1e30f), 0xfe);
  EXPECT_EQ(encode_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(encode_e4m3(std::ldexp(1.0f, -11)), 0x00);  // below half the smallest subnormal
  EXPECT_EQ(encode_e4m3(std::ldexp(1.0f, -10)), 0x00);  // exactly half: the even code, 0
  EXPECT_EQ(encode_e4m3(std::ldexp(3.0f, -11)), 0x01);
  EXPECT_EQ(encode_e4m3(NAN) & 0x7f, 0x7f);
}

TEST(Int8, RoundsHalfToEvenAndClamps) {
  EXPECT_EQ(encode_int8(2.5f), 2);
  EXPECT_EQ(encode_int8(3.5f), 4);
  EXPECT_EQ(encode_int8(-2.5f), -2);
  EXPECT_EQ(encode_int8(-0.4f), 0);
  EXPECT_EQ(encode_int8(126.6f), 127);
  EXPECT_EQ(encode_int8(1000.0f), 127);
  EXPECT_EQ(encode_int8(-1000.0f), -127);  // symmetric: -128 is never used
}

TEST(RowQuantization, ScalesFollowTheContract) {
  std::vector<uint8_t> q(4);
  const std::vector<float> row = {0.5f, -2.0f, 1.0f, 0.25f};
  EXPECT_EQ(quantize_row(row, ElementFormat::Int8, false, q), 2.0f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(q[1]), -127);
  EXPECT_EQ(static_cast<int8_t>(q[2]), encode_int8(1.0f * (127.0f / 2.0f)));
  EXPECT_EQ(quantize_row(row, ElementFormat::Fp8E4M3, false, q), 2.0f / 448.0f);
  EXPECT_EQ(q[1], 0xfe);
  const std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(quantize_row(zeros, ElementFormat::Fp8E4M3, false, q), 1.0f);             // weights: 1
  EXPECT_EQ(quantize_row(zeros, ElementFormat::Fp8E4M3, true, q), 1e-6f / 448.0f);   // activations: the floor
  for (uint8_t c : q) EXPECT_EQ(c, 0);
}

TEST(QuantSchemes, NamesParseBack) {
  for (QuantScheme s : {QuantScheme::None, QuantScheme::Fp8, QuantScheme::Int8WeightOnly})
    EXPECT_EQ(parse_scheme(scheme_name(s)), s);
  EXPECT_FALSE(parse_scheme("fp4").has_value());
  EXPECT_FALSE(parse_scheme("FP8").has_value());
}

// The CPU simulation on a small model: each scheme stays within a few percent of the unquantized
// logits (8-bit per-channel weights on random weights), differs from them (the lever is on), and
// the none scheme is the unquantized forward bit for bit.
TEST(CpuSimulation, QuantizedLogitsAreCloseToBf16ButNotEqual) {
  const model::ModelConfig config = model::preset_or_throw("tiny");
  const auto weights = model::ModelWeights::dummy(config, 7, DType::BF16);
  const auto prompts = testing::random_prompts({12, 7}, 3, config.vocab_size);
  backend::cpu::CpuBackend plain(config, weights, 16, 16, 1);
  const std::vector<float> reference = testing::prefill_logits(plain, prompts);
  backend::cpu::CpuBackend none(config, weights, 16, 16, 1, QuantScheme::None);
  EXPECT_EQ(testing::prefill_logits(none, prompts), reference);
  double max_ref = 0;
  for (float v : reference) max_ref = std::max(max_ref, static_cast<double>(std::fabs(v)));
  for (QuantScheme scheme : {QuantScheme::Fp8, QuantScheme::Int8WeightOnly}) {
    backend::cpu::CpuBackend simulated(config, weights, 16, 16, 1, scheme);
    const std::vector<float> got = testing::prefill_logits(simulated, prompts);
    double max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - reference[i])));
    EXPECT_GT(max_diff, 0.0) << scheme_name(scheme);
    // INT8 keeps 7 bits per weight, E4M3 4 significant bits: a few percent of the logits' range.
    EXPECT_LT(max_diff, (scheme == QuantScheme::Fp8 ? 0.15 : 0.03) * max_ref) << scheme_name(scheme);
  }
}

TEST(QuantSchemes, KvCacheDtypeNamesParseBack) {
  for (KvCacheDtype d : {KvCacheDtype::Auto, KvCacheDtype::Fp8}) EXPECT_EQ(parse_kv_cache_dtype(kv_cache_dtype_name(d)), d);
  EXPECT_FALSE(parse_kv_cache_dtype("fp16").has_value());
}

// The simulated FP8 KV cache over prefill and decode steps: the logits move (the lever is on) but
// stay close, and auto is the plain forward bit for bit.
TEST(CpuSimulation, Fp8KvCacheMovesTheLogitsButStaysClose) {
  const model::ModelConfig config = model::preset_or_throw("tiny");
  const auto weights = model::ModelWeights::dummy(config, 7, DType::BF16);
  const auto prompts = testing::random_prompts({12, 7}, 3, config.vocab_size);
  backend::cpu::CpuBackend plain(config, weights, 16, 16, 1);
  const std::vector<float> reference = testing::prefill_then_decode_logits(plain, prompts, 4, 9);
  backend::cpu::CpuBackend auto_kv(config, weights, 16, 16, 1, QuantScheme::None, KvCacheDtype::Auto);
  EXPECT_EQ(testing::prefill_then_decode_logits(auto_kv, prompts, 4, 9), reference);
  backend::cpu::CpuBackend fp8_kv(config, weights, 16, 16, 1, QuantScheme::None, KvCacheDtype::Fp8);
  const std::vector<float> got = testing::prefill_then_decode_logits(fp8_kv, prompts, 4, 9);
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_ref = std::max(max_ref, static_cast<double>(std::fabs(reference[i])));
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - reference[i])));
  }
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.15 * max_ref);
}

}  // namespace
}  // namespace iol::quant
