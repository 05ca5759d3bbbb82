#include "iol/backend/cuda/cublaslt_gemm.hpp"

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/kernels/quantize.cuh"

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
  auto destroy_plan = [](cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                         cublasLtMatrixLayout_t c) {
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
  };
  for (auto& [key, plan] : plans_) destroy_plan(plan.operation, plan.a, plan.b, plan.c);
  for (auto& [key, fp8] : fp8_plans_) destroy_plan(fp8.plan.operation, fp8.plan.a, fp8.plan.b, fp8.plan.c);
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

CublasLtGemm::Fp8Plan& CublasLtGemm::fp8_plan_for(int m, int n, int k, bool bias) {
  const Key key{m, n, k, false, bias};
  auto it = fp8_plans_.find(key);
  if (it != fp8_plans_.end()) return it->second;
  // As plan_for: yᵀ [n][m] = Wq (op T) · xqᵀ (op N), the "TN" layout Hopper's FP8 GEMMs require.
  // First with the scale vectors in the epilogue (A's per row of yᵀ: w_scale; B's per column:
  // x_scale), bf16 out; without an algorithm for that, fp32 out and our epilogue kernel.
  auto build = [&](bool outer_vector, Fp8Plan& out) -> bool {
    Plan& plan = out.plan;
    plan = Plan{};
    IOL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
    if (outer_vector) {
      const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
      IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
      if (bias) {
        const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        IOL_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        const cudaDataType_t bias_type = CUDA_R_16BF;
        IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                        sizeof bias_type));
      }
    }
    IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_8F_E4M3, k, n, k));
    IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_8F_E4M3, k, m, k));
    IOL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, outer_vector ? CUDA_R_16BF : CUDA_R_32F, n, m, n));
    cublasLtMatmulPreference_t preference;
    IOL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    const size_t workspace_bytes = workspace_.bytes();
    IOL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &workspace_bytes, sizeof workspace_bytes));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan.operation, plan.a, plan.b, plan.c, plan.c,
                                                                 preference, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.c);
      cublasLtMatmulDescDestroy(plan.operation);
      plan = Plan{};
      return false;
    }
    plan.algo = result.algo;
    out.outer_vector = outer_vector;
    return true;
  };
  Fp8Plan fp8;
  if (!build(true, fp8) && !build(false, fp8))
    fail("cuBLASLt: no algorithm for an FP8 E4M3 GEMM of m={} n={} k={} (needs compute capability 8.9+)", m, n, k);
  return fp8_plans_.emplace(key, fp8).first->second;
}

bool CublasLtGemm::fp8_outer_vector_supported(int m, int n, int k) { return fp8_plan_for(m, n, k, false).outer_vector; }

void CublasLtGemm::linear_fp8(const uint8_t* xq, const float* x_scale, const uint8_t* wq, const float* w_scale,
                              const __nv_bfloat16* bias, __nv_bfloat16* y, float* scratch, int m, int n, int k,
                              cudaStream_t stream) {
  if (m == 0) return;
  Fp8Plan& fp8 = fp8_plan_for(m, n, k, bias != nullptr);
  Plan& plan = fp8.plan;
  const float alpha = 1.0f, beta = 0.0f;
  if (fp8.outer_vector) {
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale,
                                                    sizeof w_scale));
    IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale,
                                                    sizeof x_scale));
    if (bias)
      IOL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    IOL_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.operation, &alpha, wq, plan.a, xq, plan.b, &beta, y, plan.c, y, plan.c,
                                    &plan.algo, workspace_.data(), workspace_.bytes(), stream));
    return;
  }
  if (scratch == nullptr) fail("cuBLASLt: an FP8 GEMM of m={} n={} k={} has no scale-vector epilogue and no fp32 scratch", m, n, k);
  IOL_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.operation, &alpha, wq, plan.a, xq, plan.b, &beta, scratch, plan.c, scratch,
                                  plan.c, &plan.algo, workspace_.data(), workspace_.bytes(), stream));
  kernels::scale_accumulators(scratch, false, x_scale, w_scale, bias, m, n, y, stream);
}

}  // namespace iol::backend::cuda
