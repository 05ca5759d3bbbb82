// CublasLtGemm: y = x · Wᵀ (+ bias) for row-major activations x [m][k] and PyTorch-layout weights
// W [n][k], bf16 in, fp32 accumulate, bf16 or fp32 out — the linear layers of the model. The
// algorithm is chosen once per (m, n, k, output type) by cuBLASLt's heuristic and cached; the
// workspace is fixed, so calls can be captured in CUDA graphs.
#pragma once
#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "iol/backend/cuda/device_buffer.hpp"

namespace iol::backend::cuda {

class CublasLtGemm {
 public:
  explicit CublasLtGemm(size_t workspace_bytes = size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // y[m][n] = x[m][k] · w[n][k]ᵀ + bias[n] (bias may be null). y is bf16, or fp32 with out_fp32.
  void linear(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias, void* y, int m, int n, int k,
              bool out_fp32, cudaStream_t stream);

  // FP8 W8A8: y[m][n] = bf16((xq[m][k] · wq[n][k]ᵀ) · x_scale[m] · w_scale[n] + bias[n]) for E4M3
  // codes with per-token and per-channel fp32 scales, fp32 accumulation. Where cuBLASLt offers
  // per-row scale vectors (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F) it applies them in its
  // epilogue; otherwise it writes fp32 sums into `scratch` ([m][n] floats) and
  // kernels::scale_accumulators finishes. k a multiple of 16.
  void linear_fp8(const uint8_t* xq, const float* x_scale, const uint8_t* wq, const float* w_scale,
                  const __nv_bfloat16* bias, __nv_bfloat16* y, float* scratch, int m, int n, int k, cudaStream_t stream);
  // Whether cuBLASLt runs an FP8 GEMM of this shape with its scale-vector epilogue (plans it; no
  // launch). Without, linear_fp8 needs `scratch`.
  bool fp8_outer_vector_supported(int m, int n, int k);

 private:
  struct Plan {
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int, int, int, bool, bool>;  // m, n, k, fp32 out, bias
  Plan& plan_for(int m, int n, int k, bool out_fp32, bool bias);
  struct Fp8Plan {
    Plan plan;
    bool outer_vector = false;  // scales in cuBLASLt's epilogue (else fp32 out + scale_accumulators)
  };
  Fp8Plan& fp8_plan_for(int m, int n, int k, bool bias);
  std::map<Key, Fp8Plan> fp8_plans_;

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace iol::backend::cuda
