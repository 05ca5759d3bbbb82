// rope_kv_write: rotary position embedding (Su et al. 2021, RoFormer) on the q and k heads of the
// fused qkv rows, in place, fused with the write of this step's k and v into the paged KV cache
// (layout docs/kv-cache.md), so k is read once. Grid (token, part): each CTA computes the token's
// cos/sin table (one angle per pair, shared by all heads) into shared memory, then its threads
// rotate groups of 8 pairs with 16-byte accesses (any even head_dim <= 256; pairs one at a time
// when head_dim/2 is not a multiple of 8 or a pointer is misaligned) and copy v. A few tokens
// spread over several CTAs each: at batch 1 one CTA looping over the 40 heads of Llama-3.1-8B took
// 5.6 us per layer, mostly one global round trip after another.
//
// An FP8 cache (KvCacheFormat::Fp8E4M3) receives E4M3 codes of the bf16-rounded values divided by
// the tensor's scale (kv_cache_format.cuh): 8 codes per 8-byte store in the vectorized path.
#include <algorithm>
#include <type_traits>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"
#include "iol/backend/cuda/kernels/quant_codec.cuh"

namespace iol::backend::cuda::kernels {
namespace {

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

constexpr int kThreads = 128;
constexpr int kMaxHalfDim = 128;  // head_dim <= 256

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// kPairs consecutive bf16 starting at p, as floats: one 16-byte access when kPairs is 8.
template <int kPairs>
struct Bf16Group {
  float v[kPairs];
  __device__ __forceinline__ void load(const bf16* p) {
    if constexpr (kPairs == 8) {
      union { uint4 raw; __nv_bfloat162 pair[4]; } u;
      u.raw = *reinterpret_cast<const uint4*>(p);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(u.pair[i]);
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
      }
    } else {
#pragma unroll
      for (int i = 0; i < kPairs; ++i) v[i] = __bfloat162float(p[i]);
    }
  }
  // The values rounded to bf16, times inv_scale, as E4M3 codes at p (kPairs bytes).
  __device__ __forceinline__ void store_codes(uint8_t* p, float inv_scale) const {
    uint8_t codes[kPairs];
#pragma unroll
    for (int i = 0; i < kPairs; ++i) codes[i] = encode_e4m3(__fmul_rn(round_bf16(v[i]), inv_scale));
    if constexpr (kPairs == 8) {
      uint2 packed;
      packed.x = codes[0] | (codes[1] << 8) | (codes[2] << 16) | (static_cast<uint32_t>(codes[3]) << 24);
      packed.y = codes[4] | (codes[5] << 8) | (codes[6] << 16) | (static_cast<uint32_t>(codes[7]) << 24);
      *reinterpret_cast<uint2*>(p) = packed;
    } else {
#pragma unroll
      for (int i = 0; i < kPairs; ++i) p[i] = codes[i];
    }
  }
  // Rounds each value to bf16 (nearest even) and stores it to every destination given.
  __device__ __forceinline__ void store(bf16* p, bf16* also) const {
    if constexpr (kPairs == 8) {
      union { uint4 raw; __nv_bfloat162 pair[4]; } u;
#pragma unroll
      for (int i = 0; i < 4; ++i) u.pair[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
      *reinterpret_cast<uint4*>(p) = u.raw;
      if (also) *reinterpret_cast<uint4*>(also) = u.raw;
    } else {
#pragma unroll
      for (int i = 0; i < kPairs; ++i) {
        const bf16 r = __float2bfloat16_rn(v[i]);
        p[i] = r;
        if (also) also[i] = r;
      }
    }
  }
};

// kPairs: 8 (vectorized) or 1. Work items: (head, group of kPairs pairs) over the q and k heads, then
// (group of kPairs values) over the v heads for the cache copy. kFp8: the caches hold E4M3 codes.
template <int kPairs, bool kFp8>
__global__ void __launch_bounds__(kThreads) rope_kv_write_kernel(bf16* qkv, const int32_t* __restrict__ positions,
                                                                 const int64_t* __restrict__ slot_mapping,
                                                                 const float* __restrict__ inv_freq, int num_heads,
                                                                 int num_kv_heads, int head_dim, void* k_cache_raw,
                                                                 void* v_cache_raw, float k_inv_scale,
                                                                 float v_inv_scale) {
  using Element = std::conditional_t<kFp8, uint8_t, bf16>;
  Element* k_cache = static_cast<Element*>(k_cache_raw);
  Element* v_cache = static_cast<Element*>(v_cache_raw);
  __shared__ float cos_table[kMaxHalfDim], sin_table[kMaxHalfDim];
  const int64_t token = blockIdx.x;
  const int half = head_dim / 2;
  // The angle is rounded to fp32 first, as transformers' freqs = inv_freq @ positions; sincosf is the
  // full-precision one: positions reach 128k, far outside where __sinf/__cosf are accurate.
  const float position = static_cast<float>(positions[token]);
  for (int i = threadIdx.x; i < half; i += kThreads) sincosf(position * inv_freq[i], &sin_table[i], &cos_table[i]);
  __syncthreads();

  const int64_t kv_size = int64_t{num_kv_heads} * head_dim;
  const int64_t slot = slot_mapping[token];  // -1: a padding row, nothing goes to the cache
  bf16* row = qkv + token * (int64_t{num_heads} * head_dim + 2 * kv_size);
  const int groups_per_head = half / kPairs;
  const int rotated_items = (num_heads + num_kv_heads) * groups_per_head;
  const int v_items = static_cast<int>(kv_size / kPairs);
  // This CTA's share of the token's items: rotations first, then v copies.
  const int first_item = blockIdx.y * blockDim.x + threadIdx.x, stride = gridDim.y * blockDim.x;
  for (int item = first_item; item < rotated_items; item += stride) {
    const int head = item / groups_per_head;
    const int first = (item - head * groups_per_head) * kPairs;
    bf16* x = row + int64_t{head} * head_dim + first;
    Bf16Group<kPairs> a, b;
    a.load(x);
    b.load(x + half);
    // rotate_half: (a, b) -> (a cos - b sin, b cos + a sin) with transformers' (and vLLM's) bf16
    // rounding: cos and sin rounded to bf16, each product rounded, then the sum. At long positions
    // the fp32 rotation drifts from what bf16 checkpoints were trained and evaluated with.
#pragma unroll
    for (int i = 0; i < kPairs; ++i) {
      const float c = round_bf16(cos_table[first + i]), s = round_bf16(sin_table[first + i]);
      const float a_i = a.v[i], b_i = b.v[i];
      a.v[i] = round_bf16(a_i * c) - round_bf16(b_i * s);
      b.v[i] = round_bf16(b_i * c) + round_bf16(a_i * s);
    }
    Element* cached = nullptr;
    if (head >= num_heads && slot >= 0) cached = k_cache + slot * kv_size + int64_t{head - num_heads} * head_dim + first;
    if constexpr (kFp8) {
      a.store(x, nullptr);
      b.store(x + half, nullptr);
      if (cached) {
        a.store_codes(cached, k_inv_scale);
        b.store_codes(cached + half, k_inv_scale);
      }
    } else {
      a.store(x, cached);
      b.store(x + half, cached ? cached + half : nullptr);
    }
  }
  if (slot < 0) return;
  const bf16* v = row + int64_t{num_heads} * head_dim + kv_size;
  Element* v_cached = v_cache + slot * kv_size;
  for (int item = first_item - rotated_items; item < v_items; item += stride) {
    if (item < 0) continue;
    const int64_t i = int64_t{item} * kPairs;
    if constexpr (kFp8) {
      Bf16Group<kPairs> values;
      values.load(v + i);  // already bf16: round_bf16 in store_codes changes nothing
      values.store_codes(v_cached + i, v_inv_scale);
    } else if constexpr (kPairs == 8) {
      *reinterpret_cast<uint4*>(v_cached + i) = *reinterpret_cast<const uint4*>(v + i);
    } else {
      v_cached[i] = v[i];
    }
  }
}

}  // namespace

void rope_kv_write(bf16* qkv, const int32_t* positions, const int64_t* slot_mapping, const float* inv_freq,
                   int num_tokens, int num_heads, int num_kv_heads, int head_dim, void* k_cache, void* v_cache,
                   KvCacheFormat format, float k_scale, float v_scale, cudaStream_t stream) {
  if (num_tokens <= 0) return;
  // A model-configuration error, caught at the first (uncaptured) forward, not a data-dependent one:
  // the cos/sin table is sized for head_dim <= 256.
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 2 * kMaxHalfDim)
    fail("rope_kv_write: head_dim {} is not supported (an even head_dim up to {})", head_dim, 2 * kMaxHalfDim);
  // head_dim/2 a multiple of 8 keeps every group, row and cache slot 16-byte aligned.
  const bool vectorized = (head_dim / 2) % 8 == 0 && is_aligned_16(qkv) && is_aligned_16(k_cache) && is_aligned_16(v_cache);
  const int pairs = vectorized ? 8 : 1;
  // Parts per token: one item per thread where the tokens are too few to fill the GPU's SMs
  // (about 132 CTAs), one CTA per token from 128 tokens up.
  const int64_t items = int64_t{num_heads + num_kv_heads} * (head_dim / 2 / pairs) + int64_t{num_kv_heads} * head_dim / pairs;
  const int64_t all_parts = (items + kThreads - 1) / kThreads;
  const int parts = static_cast<int>(std::clamp<int64_t>(128 / num_tokens, 1, std::min<int64_t>(all_parts, 65535)));
  const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(parts));
  if (!(k_scale > 0.0f) || !(v_scale > 0.0f)) fail("rope_kv_write: KV scales must be positive ({}, {})", k_scale, v_scale);
  const float k_inv = 1.0f / k_scale, v_inv = 1.0f / v_scale;
  const bool fp8 = format == KvCacheFormat::Fp8E4M3;
  auto run = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, stream>>>(qkv, positions, slot_mapping, inv_freq, num_heads, num_kv_heads, head_dim,
                                          k_cache, v_cache, k_inv, v_inv);
  };
  if (vectorized && fp8) run(rope_kv_write_kernel<8, true>);
  else if (vectorized) run(rope_kv_write_kernel<8, false>);
  else if (fp8) run(rope_kv_write_kernel<1, true>);
  else run(rope_kv_write_kernel<1, false>);
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
