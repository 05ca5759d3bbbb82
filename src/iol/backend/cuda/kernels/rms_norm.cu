// rms_norm and add_rms_norm: transformers' LlamaRMSNorm in bf16, the latter fused with the residual
// add before it. Memory-bound: each row is read from DRAM once and held in registers (16-byte
// vectors) across the sum-of-squares reduction, then written once. Rows of up to 1024 elements get
// one warp each (no barrier); wider rows, up to 16384, one CTA each; anything else (a width not a
// multiple of 8, a misaligned pointer, wider rows) takes a scalar two-pass kernel.
#include <algorithm>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"

namespace iol::backend::cuda::kernels {
namespace {

constexpr int kVecElems = 8;           // bf16 per 16-byte access
constexpr int kWarpSize = 32;
constexpr int kMaxWarpRowVecs = 4;     // warp-per-row path: rows of up to 32 * 4 * 8 = 1024 elements
constexpr int kWarpRowsPerBlock = 4;
constexpr int kMaxBlockThreads = 256;  // CTA-per-row path: up to 8 vectors a thread, so 16384 elements
constexpr int kMaxBlockRowVecs = 8;
constexpr int kScalarThreads = 256;

union Bf16x8 {
  uint4 raw;
  __nv_bfloat162 pair[4];
};

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The CTA's sum, returned to every thread. Every warp re-reduces the partials itself, which saves
// the second barrier a broadcast would need; called once per kernel, so `partial` is never reused.
// blockDim.x is a multiple of 32.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[kWarpSize];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  return warp_sum(lane < static_cast<int>(blockDim.x / kWarpSize) ? partial[lane] : 0.0f);
}

// LlamaRMSNorm's last two steps: the normalised value is cast to bf16 before weight (bf16) times it,
// and that product is rounded again. Both roundings are round-to-nearest-even, as torch's.
__device__ __forceinline__ __nv_bfloat162 scale_by_weight(__nv_bfloat162 x, __nv_bfloat162 w, float inv_rms) {
  const float2 xf = __bfloat1622float2(x);
  const float2 y = __bfloat1622float2(__floats2bfloat162_rn(xf.x * inv_rms, xf.y * inv_rms));
  const float2 wf = __bfloat1622float2(w);
  return __floats2bfloat162_rn(wf.x * y.x, wf.y * y.y);
}

// kAddResidual: `src` is the residual, updated in place with delta before it is normalised; else
// `src` is read only, its row r at rows[r] when rows is given.
template <int kVecsPerThread, bool kWarpPerRow, bool kAddResidual>
__global__ void __launch_bounds__(kMaxBlockThreads) rms_norm_vec_kernel(bf16* src, const bf16* delta, const int32_t* rows, const bf16* weight, float eps,
                                    int num_rows, int hidden, bf16* out) {
  int row, lane, stride;
  if constexpr (kWarpPerRow) {
    row = blockIdx.x * kWarpRowsPerBlock + threadIdx.x / kWarpSize;
    lane = threadIdx.x % kWarpSize;
    stride = kWarpSize;
    if (row >= num_rows) return;  // whole warps only: this path has no CTA barrier
  } else {
    row = blockIdx.x;
    lane = threadIdx.x;
    stride = blockDim.x;
  }
  const int num_vecs = hidden / kVecElems;
  const int64_t src_row = (!kAddResidual && rows) ? rows[row] : row;
  uint4* src_vecs = reinterpret_cast<uint4*>(src + src_row * hidden);
  const uint4* weight_vecs = reinterpret_cast<const uint4*>(weight);

  // Every load of the row is issued before any arithmetic: kVecsPerThread (x2 with delta) 16-byte
  // loads in flight per thread. The weight is loaded after the reduction: it stays in L2 across rows,
  // and holding it too would cost occupancy.
  Bf16x8 x[kVecsPerThread];
  [[maybe_unused]] Bf16x8 d[kVecsPerThread];
#pragma unroll
  for (int k = 0; k < kVecsPerThread; ++k) {
    const int j = lane + k * stride;
    if (j < num_vecs) {
      x[k].raw = src_vecs[j];
      if constexpr (kAddResidual) d[k].raw = reinterpret_cast<const uint4*>(delta + int64_t{row} * hidden)[j];
    }
  }

  float sum_squares = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecsPerThread; ++k) {
    const int j = lane + k * stride;
    if (j < num_vecs) {
      if constexpr (kAddResidual) {
        // transformers adds the residual in bf16: the sum is rounded, stored, and that is what is normalised.
#pragma unroll
        for (int p = 0; p < 4; ++p) {
          const float2 a = __bfloat1622float2(x[k].pair[p]), b = __bfloat1622float2(d[k].pair[p]);
          x[k].pair[p] = __floats2bfloat162_rn(a.x + b.x, a.y + b.y);
        }
        src_vecs[j] = x[k].raw;
      }
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        const float2 a = __bfloat1622float2(x[k].pair[p]);
        sum_squares = fmaf(a.x, a.x, sum_squares);
        sum_squares = fmaf(a.y, a.y, sum_squares);
      }
    }
  }
  const float total = kWarpPerRow ? warp_sum(sum_squares) : block_sum(sum_squares);
  const float inv_rms = rsqrtf(total / static_cast<float>(hidden) + eps);

  uint4* out_vecs = reinterpret_cast<uint4*>(out + int64_t{row} * hidden);
#pragma unroll
  for (int k = 0; k < kVecsPerThread; ++k) {
    const int j = lane + k * stride;
    if (j < num_vecs) {
      Bf16x8 w, y;
      w.raw = __ldg(weight_vecs + j);
#pragma unroll
      for (int p = 0; p < 4; ++p) y.pair[p] = scale_by_weight(x[k].pair[p], w.pair[p], inv_rms);
      out_vecs[j] = y.raw;
    }
  }
}

// Any width or alignment: one CTA per row, two passes over the row (the second hits L1/L2). In the
// add variant each thread re-reads in pass 2 exactly the residual elements it wrote in pass 1.
template <bool kAddResidual>
__global__ void rms_norm_scalar_kernel(bf16* src, const bf16* delta, const int32_t* rows, const bf16* weight,
                                       float eps, int hidden, bf16* out) {
  const int row = blockIdx.x;
  const int64_t src_row = (!kAddResidual && rows) ? rows[row] : row;
  bf16* x = src + src_row * hidden;
  float sum_squares = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float a = __bfloat162float(x[i]);
    if constexpr (kAddResidual) {
      const bf16 sum = __float2bfloat16_rn(a + __bfloat162float(delta[int64_t{row} * hidden + i]));
      x[i] = sum;
      a = __bfloat162float(sum);
    }
    sum_squares = fmaf(a, a, sum_squares);
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares) / static_cast<float>(hidden) + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float y = __bfloat162float(__float2bfloat16_rn(__bfloat162float(x[i]) * inv_rms));
    out[int64_t{row} * hidden + i] = __float2bfloat16_rn(__bfloat162float(weight[i]) * y);
  }
}

int round_up_to_warp(int n) { return (n + kWarpSize - 1) / kWarpSize * kWarpSize; }

template <int kVecsPerThread, bool kAddResidual>
void launch_warp_rows(bf16* src, const bf16* delta, const int32_t* rows, const bf16* weight, float eps, int num_rows,
                      int hidden, bf16* out, cudaStream_t stream) {
  const int blocks = (num_rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock;
  rms_norm_vec_kernel<kVecsPerThread, true, kAddResidual><<<blocks, kWarpRowsPerBlock * kWarpSize, 0, stream>>>(
      src, delta, rows, weight, eps, num_rows, hidden, out);
}

template <int kVecsPerThread, bool kAddResidual>
void launch_block_rows(bf16* src, const bf16* delta, const int32_t* rows, const bf16* weight, float eps, int num_rows,
                       int hidden, bf16* out, cudaStream_t stream) {
  const int num_vecs = hidden / kVecElems;
  const int threads = round_up_to_warp((num_vecs + kVecsPerThread - 1) / kVecsPerThread);
  rms_norm_vec_kernel<kVecsPerThread, false, kAddResidual><<<num_rows, threads, 0, stream>>>(
      src, delta, rows, weight, eps, num_rows, hidden, out);
}

template <bool kAddResidual>
void launch_rms_norm(bf16* src, const bf16* delta, const int32_t* rows, const bf16* weight, float eps, int num_rows,
                     int hidden, bf16* out, cudaStream_t stream) {
  if (num_rows <= 0 || hidden <= 0) return;
  const int num_vecs = hidden / kVecElems;
  const bool vectorized = hidden % kVecElems == 0 && is_aligned_16(src) && is_aligned_16(weight) &&
                          is_aligned_16(out) && (!kAddResidual || is_aligned_16(delta));
  if (vectorized && num_vecs <= kWarpSize * kMaxWarpRowVecs) {
    if (num_vecs <= kWarpSize)
      launch_warp_rows<1, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
    else if (num_vecs <= 2 * kWarpSize)
      launch_warp_rows<2, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
    else
      launch_warp_rows<4, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
  } else if (vectorized && num_vecs <= kMaxBlockThreads * kMaxBlockRowVecs) {
    // The fewest vectors per thread that keep the CTA at <= 256 threads: 4096 -> 2, 8192 -> 4, 16384 -> 8.
    if (num_vecs <= kMaxBlockThreads)
      launch_block_rows<1, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
    else if (num_vecs <= 2 * kMaxBlockThreads)
      launch_block_rows<2, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
    else if (num_vecs <= 4 * kMaxBlockThreads)
      launch_block_rows<4, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
    else
      launch_block_rows<8, kAddResidual>(src, delta, rows, weight, eps, num_rows, hidden, out, stream);
  } else {
    const int threads = std::min(kScalarThreads, round_up_to_warp(hidden));
    rms_norm_scalar_kernel<kAddResidual><<<num_rows, threads, 0, stream>>>(src, delta, rows, weight, eps, hidden, out);
  }
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void rms_norm(const bf16* x, const int32_t* rows, const bf16* weight, float eps, int num_rows, int hidden, bf16* out,
              cudaStream_t stream) {
  // The kernels share one body with add_rms_norm, whose source is written; this one never writes x.
  launch_rms_norm<false>(const_cast<bf16*>(x), nullptr, rows, weight, eps, num_rows, hidden, out, stream);
}

void add_rms_norm(bf16* residual, const bf16* delta, const bf16* weight, float eps, int num_rows, int hidden,
                  bf16* out, cudaStream_t stream) {
  launch_rms_norm<true>(residual, delta, nullptr, weight, eps, num_rows, hidden, out, stream);
}

}  // namespace iol::backend::cuda::kernels
