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

 private:
  struct Plan {
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int, int, int, bool, bool>;  // m, n, k, fp32 out, bias
  Plan& plan_for(int m, int n, int k, bool out_fp32, bool bias);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace iol::backend::cuda
