// IOL_CUDA_CHECK: every CUDA runtime call is checked; failures become iol::Error with the call site.
#pragma once
#include <cuda_runtime.h>

#include "iol/core/error.hpp"

#define IOL_CUDA_CHECK(call)                                                                           \
  do {                                                                                                 \
    cudaError_t iol_cuda_status_ = (call);                                                             \
    if (iol_cuda_status_ != cudaSuccess)                                                               \
      ::iol::fail("CUDA error {} ({}) at {}:{}: {}", static_cast<int>(iol_cuda_status_),                \
                  cudaGetErrorName(iol_cuda_status_), __FILE__, __LINE__, cudaGetErrorString(iol_cuda_status_)); \
  } while (0)

// After every kernel launch: a bad launch configuration fails here, at its call site, not at the
// next synchronisation. cudaPeekAtLastError does not synchronise, so this is safe during graph capture.
#define IOL_CUDA_LAUNCH_CHECK() IOL_CUDA_CHECK(cudaPeekAtLastError())
