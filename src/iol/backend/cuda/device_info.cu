#include "iol/backend/cuda/device_info.hpp"

#include <cuda_bf16.h>

#include "iol/backend/cuda/cuda_check.hpp"

namespace iol::backend::cuda {

namespace {
__global__ void bf16_round_trip_kernel(const float* in, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __bfloat162float(__float2bfloat16_rn(in[i]));
}
}  // namespace

std::vector<DeviceInfo> list_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: report none
    return {};
  }
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    IOL_CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
    devices.push_back({i, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                       static_cast<int64_t>(prop.totalGlobalMem)});
  }
  return devices;
}

std::vector<float> bf16_round_trip_on_device(const std::vector<float>& values) {
  const int n = static_cast<int>(values.size());
  std::vector<float> result(values.size());
  if (n == 0) return result;
  float *d_in = nullptr, *d_out = nullptr;
  IOL_CUDA_CHECK(cudaMalloc(&d_in, n * sizeof(float)));
  IOL_CUDA_CHECK(cudaMalloc(&d_out, n * sizeof(float)));
  IOL_CUDA_CHECK(cudaMemcpy(d_in, values.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  bf16_round_trip_kernel<<<(n + 255) / 256, 256>>>(d_in, d_out, n);
  IOL_CUDA_CHECK(cudaGetLastError());
  IOL_CUDA_CHECK(cudaMemcpy(result.data(), d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
  IOL_CUDA_CHECK(cudaFree(d_in));
  IOL_CUDA_CHECK(cudaFree(d_out));
  return result;
}

}  // namespace iol::backend::cuda
