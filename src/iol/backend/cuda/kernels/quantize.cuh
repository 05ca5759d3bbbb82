// Row-wise 8-bit quantization on the device (docs/quantization.md): per-channel weight scales at
// load time, per-token activation scales in the step, the INT8 weight-only layers' dequantization
// for large batches, and the epilogue that scales INT32/FP32 GEMM accumulators back to bf16.
// Launch only: capturable in CUDA graphs.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "iol/backend/cuda/kernels/quant_codec.cuh"

namespace iol::backend::cuda::kernels {

// For each row r of x [rows][k] (bf16): scales[r] = row_scale(max |x[r]|) and
// q[r][i] = encode(x[r][i] · qmax / amax) (quant_codec.cuh), one byte per element. `activation` picks the activation
// rule of row_scale (per-token) over the weight rule (per-channel). k a multiple of 8.
void quantize_rows(const __nv_bfloat16* x, int64_t rows, int k, QuantFormat format, bool activation, uint8_t* q,
                   float* scales, cudaStream_t stream);

// out[r][i] = bf16(decode(q[r][i]) * scales[r]): the dequantized weight of an 8-bit layer for a
// bf16 GEMM (INT8 weight-only above the GEMV's batch sizes). k a multiple of 8.
void dequantize_rows(const uint8_t* q, const float* scales, int64_t rows, int k, QuantFormat format, __nv_bfloat16* out,
                     cudaStream_t stream);

// out[t][j] = bf16(acc[t][j] * row_scales[t] * col_scales[j] + bias[j]) for accumulators acc
// [m][n], int32 (INT8 GEMMs) or fp32 (acc_int32 false); bias may be null. n a multiple of 4.
void scale_accumulators(const void* acc, bool acc_int32, const float* row_scales, const float* col_scales,
                        const __nv_bfloat16* bias, int m, int n, __nv_bfloat16* out, cudaStream_t stream);

}  // namespace iol::backend::cuda::kernels
