// silu_mul: the SwiGLU activation of the Llama MLP, out = silu(gate) * up over the fused gate_up
// projection, in fp32 and rounded to bf16 once. Memory-bound (read 4 bytes, write 2 per output):
// one 16-byte vector of gate and of up per thread, a grid of (tokens) x (row chunks).
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

// silu(g) = g * sigmoid(g) = g / (1 + e^-g), as torch computes it; expf (not __expf) keeps it within
// an fp32 ulp or two. For g -> -inf, e^-g = inf and the quotient is -0, not NaN.
__device__ __forceinline__ float silu_times(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

__global__ void silu_mul_vec_kernel(const bf16* __restrict__ gate_up, int inter, bf16* __restrict__ out) {
  const int column = (blockIdx.y * kThreads + threadIdx.x) * kVecElems;
  if (column >= inter) return;
  const int64_t token = blockIdx.x;
  const bf16* gate = gate_up + token * 2 * inter + column;
  Bf16x8 g, u, y;
  g.raw = *reinterpret_cast<const uint4*>(gate);
  u.raw = *reinterpret_cast<const uint4*>(gate + inter);
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    const float2 gf = __bfloat1622float2(g.pair[p]), uf = __bfloat1622float2(u.pair[p]);
    y.pair[p] = __floats2bfloat162_rn(silu_times(gf.x, uf.x), silu_times(gf.y, uf.y));
  }
  *reinterpret_cast<uint4*>(out + token * inter + column) = y.raw;
}

__global__ void silu_mul_scalar_kernel(const bf16* __restrict__ gate_up, int inter, bf16* __restrict__ out) {
  const int column = blockIdx.y * kThreads + threadIdx.x;
  if (column >= inter) return;
  const int64_t token = blockIdx.x;
  const bf16* gate = gate_up + token * 2 * inter + column;
  out[token * inter + column] =
      __float2bfloat16_rn(silu_times(__bfloat162float(gate[0]), __bfloat162float(gate[inter])));
}

}  // namespace

void silu_mul(const bf16* gate_up, int num_tokens, int inter, bf16* out, cudaStream_t stream) {
  if (num_tokens <= 0 || inter <= 0) return;
  if (inter % kVecElems == 0 && is_aligned_16(gate_up) && is_aligned_16(out)) {
    const int width = inter / kVecElems;
    const dim3 grid(num_tokens, (width + kThreads - 1) / kThreads);
    silu_mul_vec_kernel<<<grid, kThreads, 0, stream>>>(gate_up, inter, out);
  } else {
    const dim3 grid(num_tokens, (inter + kThreads - 1) / kThreads);
    silu_mul_scalar_kernel<<<grid, kThreads, 0, stream>>>(gate_up, inter, out);
  }
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
