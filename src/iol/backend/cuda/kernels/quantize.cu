// Row-wise quantization kernels (quantize.cuh). Each is one pass (two for quantize_rows: the row's
// max, then the encoding from L2) over memory-bound rows; the floor is their bytes over DRAM
// bandwidth, small next to the GEMM that follows.
#include <algorithm>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/quantize.cuh"
#include "iol/core/error.hpp"

namespace iol::backend::cuda::kernels {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 256;

union Bf16x8 {
  uint4 raw;
  __nv_bfloat162 pair[4];
};

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[kThreads / 32];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total = fmaxf(total, partial[w]);
  return total;
}

template <QuantFormat F>
__global__ void __launch_bounds__(kThreads) quantize_rows_kernel(const bf16* __restrict__ x, int k, bool activation,
                                                                 uint8_t* __restrict__ q, float* __restrict__ scales) {
  const int64_t row = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(x + row * k);
  const int vecs = k / 8;
  float amax = 0.0f;
  for (int i = threadIdx.x; i < vecs; i += kThreads) {
    Bf16x8 v;
    v.raw = src[i];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = __bfloat1622float2(v.pair[e]);
      amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
    }
  }
  const float row_amax = block_max(amax);
  const float inv = row_inverse_scale(row_amax, quant_max(F), activation);
  if (threadIdx.x == 0) scales[row] = row_scale(row_amax, quant_max(F), activation);
  uint2* dst = reinterpret_cast<uint2*>(q + row * k);
  for (int i = threadIdx.x; i < vecs; i += kThreads) {
    Bf16x8 v;
    v.raw = src[i];
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = __bfloat1622float2(v.pair[e]);
      const uint32_t lo = encode<F>(__fmul_rn(f.x, inv)), hi = encode<F>(__fmul_rn(f.y, inv));
      word[e / 2] |= (lo | hi << 8) << (16 * (e % 2));
    }
    dst[i] = make_uint2(word[0], word[1]);
  }
}

template <QuantFormat F>
__global__ void __launch_bounds__(kThreads) dequantize_rows_kernel(const uint8_t* __restrict__ q,
                                                                   const float* __restrict__ scales, int64_t rows, int k,
                                                                   bf16* __restrict__ out) {
  const int64_t vecs = rows * (k / 8);
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < vecs; i += int64_t{gridDim.x} * kThreads) {
    const int64_t row = i / (k / 8);
    const float scale = scales[row];
    const uint2 packed = reinterpret_cast<const uint2*>(q)[i];
    const uint32_t words[2] = {packed.x, packed.y};
    Bf16x8 v;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const uint32_t pair = words[e / 2] >> (16 * (e % 2));
      v.pair[e] = __floats2bfloat162_rn(decode<F>(static_cast<uint8_t>(pair & 0xff)) * scale,
                                        decode<F>(static_cast<uint8_t>(pair >> 8)) * scale);
    }
    reinterpret_cast<uint4*>(out)[i] = v.raw;
  }
}

template <typename Acc>
__global__ void __launch_bounds__(kThreads) scale_accumulators_kernel(const Acc* __restrict__ acc,
                                                                      const float* __restrict__ row_scales,
                                                                      const float* __restrict__ col_scales,
                                                                      const bf16* __restrict__ bias, int m, int n,
                                                                      bf16* __restrict__ out) {
  const int64_t quads = int64_t{m} * (n / 4);
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < quads; i += int64_t{gridDim.x} * kThreads) {
    const int64_t t = i / (n / 4);
    const int j = static_cast<int>(i % (n / 4)) * 4;
    const float rs = row_scales[t];
    float v[4];
    if constexpr (sizeof(Acc) == 4 && static_cast<Acc>(0.5f) == 0) {
      const int4 a = reinterpret_cast<const int4*>(acc)[i];
      v[0] = static_cast<float>(a.x), v[1] = static_cast<float>(a.y), v[2] = static_cast<float>(a.z), v[3] = static_cast<float>(a.w);
    } else {
      const float4 a = reinterpret_cast<const float4*>(acc)[i];
      v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    }
    __nv_bfloat162 o[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float y0 = v[2 * e] * rs * col_scales[j + 2 * e], y1 = v[2 * e + 1] * rs * col_scales[j + 2 * e + 1];
      if (bias) y0 += __bfloat162float(bias[j + 2 * e]), y1 += __bfloat162float(bias[j + 2 * e + 1]);
      o[e] = __floats2bfloat162_rn(y0, y1);
    }
    reinterpret_cast<uint2*>(out)[i] = *reinterpret_cast<const uint2*>(o);
  }
}

int grid_for(int64_t items) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((items + kThreads - 1) / kThreads, 132 * 16)));
}

}  // namespace

void quantize_rows(const bf16* x, int64_t rows, int k, QuantFormat format, bool activation, uint8_t* q, float* scales,
                   cudaStream_t stream) {
  if (rows <= 0) return;
  if (k % 8 != 0) fail("quantize_rows: k = {} is not a multiple of 8", k);
  if (format == QuantFormat::Fp8E4M3)
    quantize_rows_kernel<QuantFormat::Fp8E4M3><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, k, activation, q, scales);
  else
    quantize_rows_kernel<QuantFormat::Int8><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, k, activation, q, scales);
  IOL_CUDA_LAUNCH_CHECK();
}

void dequantize_rows(const uint8_t* q, const float* scales, int64_t rows, int k, QuantFormat format, bf16* out,
                     cudaStream_t stream) {
  if (rows <= 0) return;
  if (k % 8 != 0) fail("dequantize_rows: k = {} is not a multiple of 8", k);
  const int grid = grid_for(rows * (k / 8));
  if (format == QuantFormat::Fp8E4M3)
    dequantize_rows_kernel<QuantFormat::Fp8E4M3><<<grid, kThreads, 0, stream>>>(q, scales, rows, k, out);
  else
    dequantize_rows_kernel<QuantFormat::Int8><<<grid, kThreads, 0, stream>>>(q, scales, rows, k, out);
  IOL_CUDA_LAUNCH_CHECK();
}

void scale_accumulators(const void* acc, bool acc_int32, const float* row_scales, const float* col_scales,
                        const bf16* bias, int m, int n, bf16* out, cudaStream_t stream) {
  if (m <= 0) return;
  if (n % 4 != 0) fail("scale_accumulators: n = {} is not a multiple of 4", n);
  const int grid = grid_for(int64_t{m} * (n / 4));
  if (acc_int32)
    scale_accumulators_kernel<int32_t><<<grid, kThreads, 0, stream>>>(static_cast<const int32_t*>(acc), row_scales,
                                                                      col_scales, bias, m, n, out);
  else
    scale_accumulators_kernel<float><<<grid, kThreads, 0, stream>>>(static_cast<const float*>(acc), row_scales,
                                                                    col_scales, bias, m, n, out);
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
