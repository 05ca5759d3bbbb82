// fill_dummy_bf16: ModelWeights::dummy's values drawn on the device (model/model_weights.hpp,
// DummyRecipe). Each chunk of kDummyChunk elements has its own xoshiro256** stream (core/rng.hpp)
// that must be run in order, so one thread owns one chunk; chunks run in parallel. Bit-exactness
// with the host needs the same arithmetic, step by step: see draw_bf16.
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/dummy_weights.cuh"

namespace iol::backend::cuda::kernels {
namespace {

// Must equal model::kDummyChunk (model_weights.hpp is C++20 and this file compiles as C++17);
// tests/gpu/dummy_weights_test.cu compares tensors of several chunks with the host bit for bit.
constexpr size_t kDummyChunk = size_t{1} << 20;
constexpr uint64_t kChunkSeedStride = 0x9e3779b97f4a7c15ull;
constexpr int kThreads = 64;  // few chunks per tensor (16 for a 4096^2 matrix): spread them over SMs

// iol::Rng (core/rng.hpp) on the device: SplitMix64-seeded xoshiro256** (Blackman & Vigna 2018).
class DeviceRng {
 public:
  __device__ explicit DeviceRng(uint64_t seed) {
#pragma unroll
    for (auto& word : state_) {
      uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      word = z ^ (z >> 31);
    }
  }
  __device__ uint64_t next_u64() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  __device__ static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

// offset + scale * (2u - 1) in double, then to float, then to bf16, each rounded to nearest even
// as the host does. The explicit _rn intrinsics stop nvcc contracting the multiply-add into an fma
// (the host, built without -ffp-contract on FMA hardware, rounds twice). u = (x >> 11) * 2^-53 and
// 2u - 1 are exact.
__device__ __forceinline__ __nv_bfloat16 draw_bf16(DeviceRng& rng, double scale, double offset) {
  const double u = __dmul_rn(__ull2double_rn(rng.next_u64() >> 11), 0x1.0p-53);
  const double value = __dadd_rn(offset, __dmul_rn(scale, __dsub_rn(__dmul_rn(2.0, u), 1.0)));
  return __float2bfloat16_rn(__double2float_rn(value));
}

__global__ void fill_dummy_bf16_kernel(__nv_bfloat16* out, size_t numel, size_t num_chunks, uint64_t tensor_seed,
                                       double scale, double offset) {
  const size_t chunk = size_t{blockIdx.x} * kThreads + threadIdx.x;
  if (chunk >= num_chunks) return;
  DeviceRng rng(tensor_seed + chunk * kChunkSeedStride);
  size_t i = chunk * kDummyChunk;
  const size_t end = numel - i < kDummyChunk ? numel : i + kDummyChunk;
  // Eight draws per 16-byte store when the chunk starts aligned (kDummyChunk is a multiple of 8, so
  // either every chunk does or none).
  if (reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    for (; i + 8 <= end; i += 8) {
      union { uint4 raw; __nv_bfloat16 value[8]; } group;
#pragma unroll
      for (int k = 0; k < 8; ++k) group.value[k] = draw_bf16(rng, scale, offset);
      *reinterpret_cast<uint4*>(out + i) = group.raw;
    }
  }
  for (; i < end; ++i) out[i] = draw_bf16(rng, scale, offset);
}

}  // namespace

void fill_dummy_bf16(__nv_bfloat16* out, size_t numel, uint64_t tensor_seed, double scale, double offset,
                     cudaStream_t stream) {
  if (numel == 0) return;
  const size_t num_chunks = (numel + kDummyChunk - 1) / kDummyChunk;
  const unsigned blocks = static_cast<unsigned>((num_chunks + kThreads - 1) / kThreads);
  fill_dummy_bf16_kernel<<<blocks, kThreads, 0, stream>>>(out, numel, num_chunks, tensor_seed, scale, offset);
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
