// Decode GEMV: the linear layers of a decode step of up to kMaxGemvRows sequences, y = x · Wᵀ for
// bf16 weights W [n][k] (PyTorch layout) streamed once from DRAM, with the small ops around each
// layer fused in so a Llama layer is four of these plus RoPE and attention (docs/performance.md):
//   - prologue: RMSNorm of x (transformers' rounding, as kernels::rms_norm) before the product;
//   - epilogue: + bias; then one of: store bf16, store fp32 (logits), add into a bf16 residual in
//     place (residual = bf16(residual + bf16(y)), as add_rms_norm's add), or SwiGLU over a fused
//     [gate; up] weight (out[j] = silu(bf16(gate_j)) * bf16(up_j), as kernels::silu_mul).
// At batch 1-4 a decode step is bound by reading the weights; cuBLAS's GEMMs reach 2.2-2.8 TB/s on
// these skinny shapes and need split-K reductions, norm and SwiGLU kernels around them.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace iol::backend::cuda::kernels {

constexpr int kMaxGemvRows = 4;

// The weight's element type. 8-bit weights carry one fp32 scale per output row (per channel):
// y = (Σ x·decode(wq)) · s_w, or with quantize_activations (FP8 W8A8) every CTA quantizes the rows
// of x per token on the fly, exactly as kernels::quantize_rows does, and
// y = (Σ decode(xq)·decode(wq)) · s_x · s_w (docs/quantization.md).
enum class GemvWeights { Bf16, Fp8E4M3, Int8 };

enum class GemvEpilogue {
  StoreBf16,    // out bf16 [m][n]
  StoreF32,     // out fp32 [m][n]
  AddResidual,  // out is the bf16 residual [m][n], updated in place
  SwiGlu,       // W is [2 * n][k] (gate rows, then up rows); out bf16 [m][n]
};

struct GemvParams {
  const __nv_bfloat16* x = nullptr;  // [m][k], rows contiguous
  int m = 0, n = 0, k = 0;           // n: outputs per row (for SwiGlu, half of W's rows)
  const void* w = nullptr;           // [n][k], or [2n][k] for SwiGlu, of `weights` elements
  GemvWeights weights = GemvWeights::Bf16;
  const float* weight_scale = nullptr;  // [n] or [2n] for 8-bit weights
  bool quantize_activations = false;    // FP8 weights only: x quantized to E4M3 per row
  const __nv_bfloat16* bias = nullptr;         // [n] or [2n]; may be null
  const __nv_bfloat16* norm_weight = nullptr;  // RMSNorm of x first when not null
  float norm_eps = 0.0f;
  GemvEpilogue epilogue = GemvEpilogue::StoreBf16;
  void* out = nullptr;  // [m][n], bf16 or fp32 (see GemvEpilogue); must not alias x
  // Warps that share one output column, each reducing a slice of k (1, 2, 4 or 8); 0 chooses by
  // shape so the columns spread evenly over the warps that fit on the GPU (tests force each).
  int k_splits = 0;
};

// Whether gemv() takes these shapes and pointers: 1 <= m <= kMaxGemvRows, k a multiple of 8 (16
// for 8-bit weights) up to kMaxGemvK, 16-byte aligned x and w, k_splits 0, 1, 2, 4 or 8, and for
// 8-bit weights a weight_scale and no StoreF32 epilogue. Anything else goes to cuBLAS.
constexpr int kMaxGemvK = 16384;
bool gemv_supports(const GemvParams& p);

// Launch only (no synchronisation or allocation): capturable in a CUDA graph. Fails (iol::Error)
// on parameters gemv_supports rejects.
void gemv(const GemvParams& p, cudaStream_t stream);

}  // namespace iol::backend::cuda::kernels
