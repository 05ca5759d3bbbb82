// embedding: the token-embedding gather, out[t] = table[token_ids[t]]. A pure copy, so the only
// work is moving bytes: 16-byte vectors (8 bf16) when the row width and pointers allow, one vector
// per thread, a grid of (tokens) x (row chunks) so every SM has loads in flight even for one token.
// Token ids are trusted: the engine validates them against the vocabulary when a request arrives.
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/elementwise.cuh"

namespace iol::backend::cuda::kernels {
namespace {

constexpr int kVecElems = 8;  // bf16 per 16-byte access
constexpr int kThreads = 128;

bool is_aligned_16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// T is uint4 (8 bf16 a lane) or bf16; `width` counts T's per row.
template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, const int32_t* __restrict__ token_ids, int width,
                                 T* __restrict__ out) {
  const int column = blockIdx.y * kThreads + threadIdx.x;
  if (column >= width) return;
  const int64_t token = blockIdx.x;
  const int64_t id = token_ids[token];
  out[token * width + column] = __ldg(table + id * width + column);
}

}  // namespace

void embedding(const bf16* table, const int32_t* token_ids, int num_tokens, int hidden, bf16* out,
               cudaStream_t stream) {
  if (num_tokens <= 0 || hidden <= 0) return;
  if (hidden % kVecElems == 0 && is_aligned_16(table) && is_aligned_16(out)) {
    const int width = hidden / kVecElems;
    const dim3 grid(num_tokens, (width + kThreads - 1) / kThreads);
    embedding_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint4*>(table), token_ids, width,
                                                    reinterpret_cast<uint4*>(out));
  } else {
    const dim3 grid(num_tokens, (hidden + kThreads - 1) / kThreads);
    embedding_kernel<<<grid, kThreads, 0, stream>>>(table, token_ids, hidden, out);
  }
  IOL_CUDA_LAUNCH_CHECK();
}

}  // namespace iol::backend::cuda::kernels
