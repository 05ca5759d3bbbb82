// add_bias: the bias of a linear layer (Qwen2's q/k/v projections), x[r] += bias, added in fp32 and
// rounded once to bf16. In place is allowed: each thread reads exactly the elements it writes.
// 16-byte vectors when the row width and pointers allow; a grid of (rows) x (row chunks).
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"

namespace iol::backend::cuda::kernels {
namespace {

constexpr int kVecElems = 8;  // bf16 per 16-byte access
constexpr int kThreads = 128;

union Bf16x8 {
  uint4 raw;
  __nv_bfloat162 pair[4];
};

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__global__ void add_bias_vec_kernel(bf16* x, const bf16* __restrict__ bias, int n) {
  const int column = (blockIdx.y * kThreads + threadIdx.x) * kVecElems;
  if (column >= n) return;
  uint4* vec = reinterpret_cast<uint4*>(x + int64_t{blockIdx.x} * n + column);
  Bf16x8 v, b;
  v.raw = *vec;
  b.raw = __ldg(reinterpret_cast<const uint4*>(bias + column));
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    const float2 vf = __bfloat1622float2(v.pair[p]), bf = __bfloat1622float2(b.pair[p]);
    v.pair[p] = __floats2bfloat162_rn(bf.x + vf.x, bf.y + vf.y);
  }
  *vec = v.raw;
}

__global__ void add_bias_scalar_kernel(bf16* x, const bf16* __restrict__ bias, int n) {
  const int column = blockIdx.y * kThreads + threadIdx.x;
  if (column >= n) return;
  bf16* element = x + int64_t{blockIdx.x} * n + column;
  *element = __float2bfloat16_rn(__bfloat162float(bias[column]) + __bfloat162float(*element));
}

}  // namespace

void add_bias(bf16* x, const bf16* bias, int rows, int n, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return;
  if (n % kVecElems == 0 && is_aligned_16(x) && is_aligned_16(bias)) {
    const dim3 grid(rows, (n / kVecElems + kThreads - 1) / kThreads);
    add_bias_vec_kernel<<<grid, kThreads, 0, stream>>>(x, bias, n);
  } else {
    const dim3 grid(rows, (n + kThreads - 1) / kThreads);
    add_bias_scalar_kernel<<<grid, kThreads, 0, stream>>>(x, bias, n);
  }
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
