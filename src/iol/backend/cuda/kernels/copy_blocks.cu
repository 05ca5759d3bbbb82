// copy_blocks: copy-on-write of KV-cache blocks (a forked sequence's shared last block, vLLM's
// copy_blocks): for every layer, block pairs[2i] is copied to block pairs[2i + 1] in K and in V.
// One CTA per (pair, layer, K|V), 16-byte vectors, several loads issued before their stores.
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"

namespace iol::backend::cuda::kernels {
namespace {

constexpr int kVecBytes = 16;
constexpr int kThreads = 256;
constexpr int kUnroll = 4;    // loads in flight per thread before the first store

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// T is uint4 (caches, stride and block size all multiples of 16 bytes) or unsigned char; counts are
// in T's.
template <typename T>
__global__ void copy_blocks_kernel(T* k_cache, T* v_cache, const int32_t* __restrict__ pairs, int64_t layer_stride,
                                   int64_t block_width) {
  T* cache = blockIdx.z == 0 ? k_cache : v_cache;
  const int64_t layer_offset = int64_t{blockIdx.y} * layer_stride;
  const T* src = cache + layer_offset + pairs[2 * blockIdx.x] * block_width;
  T* dst = cache + layer_offset + pairs[2 * blockIdx.x + 1] * block_width;
  for (int64_t base = 0; base < block_width; base += int64_t{kThreads} * kUnroll) {
    T values[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * kThreads + threadIdx.x;
      if (i < block_width) values[u] = src[i];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * kThreads + threadIdx.x;
      if (i < block_width) dst[i] = values[u];
    }
  }
}

}  // namespace

void copy_blocks_bytes(void* k_cache, void* v_cache, const int32_t* pairs, int num_pairs, int num_layers,
                       int64_t layer_stride, int64_t block_bytes, cudaStream_t stream) {
  if (num_pairs <= 0 || num_layers <= 0 || block_bytes <= 0) return;
  const dim3 grid(num_pairs, num_layers, 2);
  if (block_bytes % kVecBytes == 0 && layer_stride % kVecBytes == 0 && is_aligned_16(k_cache) &&
      is_aligned_16(v_cache)) {
    copy_blocks_kernel<<<grid, kThreads, 0, stream>>>(static_cast<uint4*>(k_cache), static_cast<uint4*>(v_cache), pairs,
                                                      layer_stride / kVecBytes, block_bytes / kVecBytes);
  } else {
    copy_blocks_kernel<<<grid, kThreads, 0, stream>>>(static_cast<unsigned char*>(k_cache),
                                                      static_cast<unsigned char*>(v_cache), pairs, layer_stride,
                                                      block_bytes);
  }
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
