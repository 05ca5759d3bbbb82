// fill_dummy_bf16 draws, bit for bit, the dummy weights the host draws (model/model_weights.hpp,
// DummyRecipe): against the recipe written out here with iol::Rng, and against the host's own
// model::fill_dummy_tensor. Tensors span several kDummyChunk chunks and end in a partial one;
// outputs are poisoned (0xFF) first, and the poison past the tensor's end must survive.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/dummy_weights.cuh"
#include "iol/core/dtype.hpp"
#include "iol/core/rng.hpp"

// The model headers use std::span (C++20); CUDA sources build as C++17 while CMake cannot pass
// nvcc 13 a C++20 flag, so the comparison with model::fill_dummy_tensor compiles only under C++20.
#if __cplusplus >= 202002L
#include <span>

#include "iol/model/model_weights.hpp"
#include "iol/model/weight_layout.hpp"
#define IOL_DUMMY_TEST_HAS_MODEL 1
#endif

namespace iol::backend::cuda::kernels {
namespace {

constexpr size_t kChunk = size_t{1} << 20;  // model::kDummyChunk
constexpr uint16_t kPoison = 0xFFFF;
constexpr size_t kTailGuard = 64;  // poisoned elements after the tensor that must stay poisoned

// The recipe as model_weights.hpp states it, step by step in double, then float, then bf16.
std::vector<uint16_t> host_dummy_bf16(size_t numel, uint64_t tensor_seed, double scale, double offset) {
  std::vector<uint16_t> values(numel);
  for (size_t chunk = 0; chunk * kChunk < numel; ++chunk) {
    Rng rng(tensor_seed + chunk * 0x9e3779b97f4a7c15ull);
    for (size_t i = chunk * kChunk; i < std::min(numel, (chunk + 1) * kChunk); ++i)
      values[i] = f32_to_bf16(static_cast<float>(offset + scale * (2.0 * rng.uniform() - 1.0)));
  }
  return values;
}

// Draws numel values at element offset `misalign` of a poisoned buffer (1: the unaligned path) and
// returns the buffer: [misalign poison][numel values][kTailGuard poison].
std::vector<uint16_t> device_dummy_bf16(size_t numel, size_t misalign, uint64_t tensor_seed, double scale,
                                        double offset) {
  const size_t total = misalign + numel + kTailGuard;
  DeviceBuffer out(total * sizeof(uint16_t));
  out.fill_bytes(0xFF);
  cudaStream_t stream = nullptr;
  IOL_CUDA_CHECK(cudaStreamCreate(&stream));
  fill_dummy_bf16(out.as<__nv_bfloat16>() + misalign, numel, tensor_seed, scale, offset, stream);
  IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
  IOL_CUDA_CHECK(cudaGetLastError());
  IOL_CUDA_CHECK(cudaStreamDestroy(stream));
  std::vector<uint16_t> host(total);
  out.download(host.data(), total * sizeof(uint16_t));
  return host;
}

// Bit-exact comparison of the drawn region; the guard regions must still hold the poison.
void expect_same_bits(const std::vector<uint16_t>& device, size_t misalign, const std::vector<uint16_t>& host,
                      const std::string& what) {
  ASSERT_EQ(device.size(), misalign + host.size() + kTailGuard);
  size_t mismatches = 0, first = 0;
  for (size_t i = 0; i < host.size(); ++i)
    if (device[misalign + i] != host[i] && mismatches++ == 0) first = i;
  EXPECT_EQ(mismatches, 0u) << what << ": tolerance bit-exact; first mismatch at element " << first << ": device 0x"
                            << std::hex << device[misalign + first] << ", host 0x" << host[first];
  for (size_t i = 0; i < misalign; ++i) EXPECT_EQ(device[i], kPoison) << what << ": wrote before the tensor";
  for (size_t i = misalign + host.size(); i < device.size(); ++i)
    ASSERT_EQ(device[i], kPoison) << what << ": wrote past the tensor's end (element " << i - misalign << ")";
}

struct RecipeCase {
  size_t numel;
  uint64_t tensor_seed;
  double scale, offset;
};

TEST(FillDummyBf16, MatchesTheRecipeDrawnOnTheHost) {
  const RecipeCase cases[] = {
      {3000 * 700, 0x1234567890abcdefull, std::sqrt(3.0) / std::sqrt(700.0), 0.0},  // 3 chunks, the last partial
      {kChunk, 42, 0.02 * std::sqrt(3.0), 0.0},                                      // exactly one chunk
      {4096, 7, 0.1, 1.0},                                                           // a norm: 1 +- 0.1
      {13, 99, 0.5, -0.25},                                                          // less than one 16-byte group
  };
  for (const auto& c : cases) {
    const auto host = host_dummy_bf16(c.numel, c.tensor_seed, c.scale, c.offset);
    for (size_t misalign : {size_t{0}, size_t{1}}) {
      const std::string what = "fill_dummy_bf16 numel " + std::to_string(c.numel) + ", seed " +
                               std::to_string(c.tensor_seed) + (misalign ? ", unaligned output" : "");
      expect_same_bits(device_dummy_bf16(c.numel, misalign, c.tensor_seed, c.scale, c.offset), misalign, host, what);
    }
  }
}

TEST(FillDummyBf16, EmptyTensorWritesNothing) {
  const auto device = device_dummy_bf16(0, 0, 1, 1.0, 0.0);
  expect_same_bits(device, 0, {}, "fill_dummy_bf16 numel 0");
}

#ifdef IOL_DUMMY_TEST_HAS_MODEL
TEST(FillDummyBf16, MatchesModelFillDummyTensor) {
  const uint64_t seed = 1234;
  const model::WeightSpec specs[] = {
      {"model.layers.0.mlp.down_proj.weight", {3000, 700}, model::WeightKind::Linear},  // 2.1M: 3 chunks
      {"model.embed_tokens.weight", {1000, 1100}, model::WeightKind::Embedding},       // 1.1M: 2 chunks
      {"model.layers.0.input_layernorm.weight", {4096}, model::WeightKind::Norm},
      {"model.layers.0.self_attn.q_proj.bias", {1000}, model::WeightKind::Bias},
  };
  for (const auto& spec : specs) {
    size_t numel = 1;
    for (auto d : spec.shape) numel *= static_cast<size_t>(d);
    std::vector<uint16_t> host(numel);
    model::fill_dummy_tensor(spec, seed, DType::BF16,
                             std::span<std::byte>(reinterpret_cast<std::byte*>(host.data()), numel * 2));
    const model::DummyRecipe recipe = model::dummy_recipe(spec, seed);
    expect_same_bits(device_dummy_bf16(numel, 0, recipe.tensor_seed, recipe.scale, recipe.offset), 0, host,
                     "fill_dummy_bf16 vs model::fill_dummy_tensor for " + spec.name);
  }
}
#else
TEST(FillDummyBf16, MatchesModelFillDummyTensor) {
  GTEST_SKIP() << "built as C++" << __cplusplus / 100 % 100
               << ": model/model_weights.hpp needs C++20 (std::span); the kernel is still checked against "
                  "the recipe drawn with iol::Rng above. Build this file as C++20 to compare with the host code.";
}
#endif

}  // namespace
}  // namespace iol::backend::cuda::kernels
