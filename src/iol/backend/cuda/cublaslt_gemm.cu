#include "iol/backend/cuda/cublaslt_gemm.hpp"

#include "iol/backend/cuda/cuda_check.hpp"

#define IOL_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                             \
    cublasStatus_t iol_cublas_status_ = (call);                                                    \
    if (iol_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                               \
      ::iol::fail("cuBLASLt error {} at {}:{}", static_cast<int>(iol_cublas_status_), __FILE__, __LINE__); \
  } while (0)

namespace iol::backend::cuda {

CublasLtGemm::CublasLtGemm(size_t workspace_bytes) : workspace_(workspace_bytes) {
  IOL_CUBLAS_CHECK(cublasLtCreate(&handle_));
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatmulDescDestroy(plan.operation);
  }
  if (handle_) cublasLtDestroy(handle_);
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(int m, int n, int k, bool out_fp32, bool bias) {
  const Key key{m, n, k, out_fp32, bias};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  // Column-major view: yᵀ [n][m] = W [n][k] (stored k-major: op T) · xᵀ [k][m] (op N).
  Plan plan;
  IOL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
  IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    const cudaDataType_t bias_type = CUDA_R_16BF;
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                    sizeof bias_type));
  }
  IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, k, n, k));
  IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, k, m, k));
  IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, out_fp32 ? CUDA_R_32F : CUDA_R_16BF, n, m, n));

  cublasLtMatmulPreference_t preference;
  IOL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace_bytes = workspace_.bytes();
  IOL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &workspace_bytes, sizeof workspace_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  IOL_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, plan.operation, plan.a, plan.b, plan.c, plan.c, preference, 1,
                                                  &result, &found));
  cublasLtMatmulPreferenceDestroy(preference);
  if (found == 0) fail("cuBLASLt: no algorithm for a bf16 GEMM of m={} n={} k={}", m, n, k);
  plan.algo = result.algo;
  return plans_.emplace(key, plan).first->second;
}

void CublasLtGemm::linear(const __nv_bfloat16* x, const __nv_bfloat16* w, const __nv_bfloat16* bias, void* y, int m,
                          int n, int k, bool out_fp32, cudaStream_t stream) {
  if (m == 0) return;
  Plan& plan = plan_for(m, n, k, out_fp32, bias != nullptr);
  if (bias)
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  const float alpha = 1.0f, beta = 0.0f;
  IOL_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.operation, &alpha, w, plan.a, x, plan.b, &beta, y, plan.c, y, plan.c,
                                  &plan.algo, workspace_.data(), workspace_.bytes(), stream));
}

}  // namespace iol::backend::cuda
