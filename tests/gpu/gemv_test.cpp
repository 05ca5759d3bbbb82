// The decode GEMV (backend/cuda/kernels/gemv.cuh) against a plain C++ reference, every epilogue,
// with and without the RMSNorm prologue, m = 1..4, on the Llama-3.1-8B layer shapes (k 4096 and
// 14336, up to 28672 weight rows) and on odd ones (k not a multiple of the 2048-element unrolled
// stride, n not a multiple of the warps). Outputs are poisoned with 0xFF (NaN) first, and a poisoned
// guard past the output must stay untouched. Comparisons are `|got - ref| <= tol`, so NaN fails.
//
// Tolerance of a dot product y = Σ w·x (fp32 accumulation in an order of the kernel's choosing):
// 1e-5 × Σ|w·x| (k ≤ 16384 fp32 additions, each off by ≤ 2^-24 of the running sum, is ≤ 1e-3 × Σ
// in the worst case and ~√k × 2^-24 ≈ 1e-5 × Σ in practice), plus, with the norm prologue, 2^-8 ×
// max|w·x| for one normalised input whose bf16 rounding may flip with the sum of squares' order.
// Each bf16 rounding after that adds one bf16 ulp of its result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/gemv.cuh"
#include "iol/core/dtype.hpp"
#include "iol/core/error.hpp"
#include "iol/core/rng.hpp"

namespace iol::backend::cuda::kernels {
namespace {

constexpr size_t kGuard = 64;  // poisoned elements past the output, which must stay poisoned

float f32(uint16_t bits) { return bf16_to_f32(bits); }
float round_bf16(double v) { return bf16_to_f32(f32_to_bf16(static_cast<float>(v))); }

double bf16_ulp(double x) {
  x = std::fabs(x);
  if (x < FLT_MIN) return std::ldexp(1.0, -133);
  int exponent = 0;
  std::frexp(x, &exponent);
  return std::ldexp(1.0, exponent - 8);
}

std::vector<uint16_t> random_bf16(Rng& rng, size_t n, double lo, double hi) {
  std::vector<uint16_t> values(n);
  for (auto& v : values) v = f32_to_bf16(static_cast<float>(lo + (hi - lo) * rng.uniform()));
  return values;
}

template <typename T>
DeviceBuffer to_device(const std::vector<T>& host, size_t extra_bytes = 0) {
  DeviceBuffer buffer(host.size() * sizeof(T) + extra_bytes);
  buffer.fill_bytes(0xFF);
  buffer.upload(host.data(), host.size() * sizeof(T));
  return buffer;
}

// The reference's view of one output: its value (after the epilogue's roundings) and tolerance.
struct Expected {
  double value, tolerance;
};

struct Case {
  int m, n, k;
  GemvEpilogue epilogue;
  bool norm, bias;
  int k_splits = 0;  // 0: the kernel's choice by shape
};

std::string describe(const Case& c) {
  const char* names[] = {"StoreBf16", "StoreF32", "AddResidual", "SwiGlu"};
  return std::string(names[static_cast<int>(c.epilogue)]) + (c.norm ? "+norm" : "") + (c.bias ? "+bias" : "") +
         " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
         " k_splits=" + std::to_string(c.k_splits);
}

void check(const Case& c, uint64_t seed) {
  SCOPED_TRACE(describe(c));
  Rng rng(seed);
  const int weight_rows = c.epilogue == GemvEpilogue::SwiGlu ? 2 * c.n : c.n;
  const std::vector<uint16_t> x = random_bf16(rng, size_t(c.m) * c.k, -2.0, 2.0);
  const std::vector<uint16_t> w = random_bf16(rng, size_t(weight_rows) * c.k, -0.05, 0.05);
  const std::vector<uint16_t> norm_weight = random_bf16(rng, size_t(c.k), 0.5, 1.5);
  const std::vector<uint16_t> bias = random_bf16(rng, size_t(weight_rows), -1.0, 1.0);
  const std::vector<uint16_t> residual = random_bf16(rng, size_t(c.m) * c.n, -4.0, 4.0);
  const float eps = 1e-5f;

  // Reference input rows: transformers' RMSNorm in bf16 (see rms_norm.cu) when the case has it.
  std::vector<float> xin(x.size());
  for (int m = 0; m < c.m; ++m) {
    double squares = 0;
    for (int i = 0; i < c.k; ++i) squares += double(f32(x[size_t(m) * c.k + i])) * f32(x[size_t(m) * c.k + i]);
    const float inv_rms = 1.0f / std::sqrt(static_cast<float>(squares / c.k) + eps);
    for (int i = 0; i < c.k; ++i) {
      const float v = f32(x[size_t(m) * c.k + i]);
      xin[size_t(m) * c.k + i] = c.norm ? round_bf16(double(f32(norm_weight[i])) * round_bf16(double(v) * inv_rms)) : v;
    }
  }
  // y (before rounding) of weight row r for input row m, with its accumulation tolerance.
  auto dot = [&](int m, int r) {
    double sum = 0, magnitude = 0, largest = 0;
    for (int i = 0; i < c.k; ++i) {
      const double term = double(f32(w[size_t(r) * c.k + i])) * xin[size_t(m) * c.k + i];
      sum += term;
      magnitude += std::fabs(term);
      largest = std::max(largest, std::fabs(term));
    }
    if (c.bias) sum += f32(bias[r]);
    return Expected{sum, 1e-5 * magnitude + (c.norm ? std::ldexp(largest, -8) : 0.0)};
  };

  const size_t outputs = size_t(c.m) * c.n;
  const bool fp32_out = c.epilogue == GemvEpilogue::StoreF32;
  const size_t out_bytes = outputs * (fp32_out ? 4 : 2), guard_bytes = kGuard * (fp32_out ? 4 : 2);
  DeviceBuffer d_x = to_device(x), d_w = to_device(w), d_norm = to_device(norm_weight), d_bias = to_device(bias);
  DeviceBuffer d_out(out_bytes + guard_bytes);
  d_out.fill_bytes(0xFF);
  if (c.epilogue == GemvEpilogue::AddResidual) d_out.upload(residual.data(), out_bytes);

  GemvParams p;
  p.x = d_x.as<__nv_bfloat16>();
  p.m = c.m;
  p.n = c.n;
  p.k = c.k;
  p.w = d_w.as<__nv_bfloat16>();
  p.bias = c.bias ? d_bias.as<__nv_bfloat16>() : nullptr;
  p.norm_weight = c.norm ? d_norm.as<__nv_bfloat16>() : nullptr;
  p.norm_eps = eps;
  p.epilogue = c.epilogue;
  p.out = d_out.data();
  p.k_splits = c.k_splits;
  ASSERT_TRUE(gemv_supports(p));
  gemv(p, nullptr);
  IOL_CUDA_CHECK(cudaDeviceSynchronize());
  IOL_CUDA_CHECK(cudaGetLastError());

  std::vector<uint16_t> out16;
  std::vector<float> out32;
  if (fp32_out) {
    out32.resize(outputs + kGuard);
    d_out.download(out32.data(), out_bytes + guard_bytes);
  } else {
    out16.resize(outputs + kGuard);
    d_out.download(out16.data(), out_bytes + guard_bytes);
  }

  size_t bad = 0;
  std::string first;
  for (int m = 0; m < c.m; ++m)
    for (int j = 0; j < c.n; ++j) {
      const size_t o = size_t(m) * c.n + j;
      const Expected y = dot(m, j);
      Expected e{};
      switch (c.epilogue) {
        case GemvEpilogue::StoreBf16: e = {y.value, y.tolerance + bf16_ulp(y.value)}; break;
        case GemvEpilogue::StoreF32: e = {y.value, y.tolerance + 1e-6 * std::fabs(y.value)}; break;
        case GemvEpilogue::AddResidual: {
          const double sum = double(f32(residual[o])) + round_bf16(y.value);
          e = {sum, y.tolerance + bf16_ulp(y.value) + bf16_ulp(sum)};
          break;
        }
        case GemvEpilogue::SwiGlu: {
          const Expected up = dot(m, c.n + j);
          const double g = round_bf16(y.value), u = round_bf16(up.value);
          const double silu = g / (1.0 + std::exp(-g));
          const double value = silu * u;
          // d(silu(g)·u)/dg = u·silu'(g), |silu'| < 1.1; d/du = silu(g).
          e = {value, (y.tolerance + bf16_ulp(g)) * 1.1 * std::fabs(u) + (up.tolerance + bf16_ulp(u)) * std::fabs(silu) +
                          bf16_ulp(value)};
          break;
        }
      }
      const double got = fp32_out ? double(out32[o]) : double(f32(out16[o]));
      if (!(std::fabs(got - e.value) <= e.tolerance) && bad++ < 5)
        first += "\n  out[" + std::to_string(m) + "][" + std::to_string(j) + "] = " + std::to_string(got) +
                 ", expected " + std::to_string(e.value) + " ± " + std::to_string(e.tolerance);
    }
  EXPECT_EQ(bad, 0u) << first;
  for (size_t g = 0; g < kGuard; ++g) {
    const bool poisoned = fp32_out ? std::isnan(out32[outputs + g]) : out16[outputs + g] == 0xFFFF;
    ASSERT_TRUE(poisoned) << "gemv wrote past its output at guard element " << g;
  }
}

TEST(Gemv, MatchesTheReferenceOnLlama8bDecodeShapes) {
  uint64_t seed = 1;
  for (int m : {1, 4}) {
    check({m, 6144, 4096, GemvEpilogue::StoreBf16, true, false}, seed++);     // qkv
    check({m, 4096, 4096, GemvEpilogue::AddResidual, false, false}, seed++);  // o_proj
    check({m, 14336, 4096, GemvEpilogue::SwiGlu, true, false}, seed++);       // gate_up
    check({m, 4096, 14336, GemvEpilogue::AddResidual, false, false}, seed++); // down
  }
  check({1, 32000, 4096, GemvEpilogue::StoreF32, true, false}, seed++);  // lm_head-like
}

TEST(Gemv, EveryEpilogueRowCountAndOptionOnOddShapes) {
  uint64_t seed = 100;
  for (int m = 1; m <= kMaxGemvRows; ++m)
    for (GemvEpilogue epilogue :
         {GemvEpilogue::StoreBf16, GemvEpilogue::StoreF32, GemvEpilogue::AddResidual, GemvEpilogue::SwiGlu})
      for (bool norm : {false, true})
        for (bool bias : {false, true}) {
          check({m, 77, 264, epilogue, norm, bias}, seed++);   // k: one partial unrolled stride
          check({m, 1003, 2056, epilogue, norm, bias}, seed++);  // k: a full stride and a ragged tail
        }
}

// Every k-split the kernel can choose, forced, on shapes whose slices end mid-stride: the slice
// sums meet in shared memory, and the tile loop's last tile is partial (n not a multiple of 8).
TEST(Gemv, EverySplitOfKOnOddShapes) {
  uint64_t seed = 500;
  for (int k_splits : {1, 2, 4, 8})
    for (int m : {1, 3})
      for (GemvEpilogue epilogue :
           {GemvEpilogue::StoreBf16, GemvEpilogue::StoreF32, GemvEpilogue::AddResidual, GemvEpilogue::SwiGlu})
        for (bool norm : {false, true}) {
          check({m, 77, 264, epilogue, norm, true, k_splits}, seed++);
          check({m, 1003, 4104, epilogue, norm, true, k_splits}, seed++);
        }
}

TEST(Gemv, RejectsWhatItDoesNotSupport) {
  GemvParams p;
  alignas(16) static __nv_bfloat16 dummy[16];
  p.x = dummy;
  p.w = dummy;
  p.out = dummy;
  p.m = 1;
  p.n = 8;
  p.k = 16;
  EXPECT_TRUE(gemv_supports(p));
  for (auto mutate : std::vector<void (*)(GemvParams&)>{
           [](GemvParams& q) { q.m = 0; }, [](GemvParams& q) { q.m = kMaxGemvRows + 1; },
           [](GemvParams& q) { q.k = 12; }, [](GemvParams& q) { q.k = kMaxGemvK + 8; },
           [](GemvParams& q) { q.x = q.x + 1; }, [](GemvParams& q) { q.n = 0; },
           [](GemvParams& q) { q.k_splits = 3; }, [](GemvParams& q) { q.k_splits = 16; }}) {
    GemvParams q = p;
    mutate(q);
    EXPECT_FALSE(gemv_supports(q));
    EXPECT_THROW(gemv(q, nullptr), Error);
  }
}

}  // namespace
}  // namespace iol::backend::cuda::kernels
