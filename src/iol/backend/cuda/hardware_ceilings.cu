// Hardware ceilings (hardware_ceilings.cuh). The read kernel streams 16-byte loads with a grid of
// a few CTAs per SM and folds them into one word per CTA (so nothing is optimised away); bytes
// counted: the buffer once. The copy counts bytes read plus bytes written. The GEMM multiplies
// seeded random bf16 matrices (never zeros: they run faster than real data) and counts 2·M·N·K.
#include "iol/backend/cuda/hardware_ceilings.cuh"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "iol/backend/cuda/cublaslt_gemm.hpp"
#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/backend/cuda/device_buffer.hpp"
#include "iol/backend/cuda/kernels/dummy_weights.cuh"

namespace iol::backend::cuda {
namespace {

__global__ void __launch_bounds__(512) read_stream_kernel(const uint4* data, size_t count, uint32_t* sink) {
  uint32_t folded = 0;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < count; i += 4 * stride) {
    const uint4 a = __ldcs(data + i), b = __ldcs(data + i + stride), c = __ldcs(data + i + 2 * stride),
                d = __ldcs(data + i + 3 * stride);
    folded ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < count; i += stride) {
    const uint4 a = __ldcs(data + i);
    folded ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  for (int offset = 16; offset > 0; offset >>= 1) folded ^= __shfl_xor_sync(0xffffffffu, folded, offset);
  if (threadIdx.x % 32 == 0) atomicXor(sink + blockIdx.x, folded);
}

template <typename Body>
double median_ms(cudaStream_t stream, int repeats, Body&& body) {
  cudaEvent_t start, stop;
  IOL_CUDA_CHECK(cudaEventCreate(&start));
  IOL_CUDA_CHECK(cudaEventCreate(&stop));
  body();  // warm-up
  std::vector<float> times;
  for (int r = 0; r < repeats; ++r) {
    IOL_CUDA_CHECK(cudaEventRecord(start, stream));
    body();
    IOL_CUDA_CHECK(cudaEventRecord(stop, stream));
    IOL_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    IOL_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

MeasuredCeilings measure_hardware_ceilings(CublasLtGemm& gemm, cudaStream_t stream, size_t max_stream_bytes) {
  MeasuredCeilings ceilings;
  int device = 0, sms = 0;
  IOL_CUDA_CHECK(cudaGetDevice(&device));
  IOL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  size_t free_bytes = 0, total_bytes = 0;
  IOL_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  // Several times the L2 (50 MiB), and what is free after the engine's allocations.
  const size_t stream_bytes = std::min(max_stream_bytes, (free_bytes / 2) & ~size_t{(1 << 20) - 1});
  if (stream_bytes >= (size_t{512} << 20)) {
    DeviceBuffer buffer(stream_bytes);
    kernels::fill_dummy_bf16(buffer.as<__nv_bfloat16>(), stream_bytes / 2, 0x5eed, 1.0, 0.0, stream);
    const int grid = 4 * sms;
    DeviceBuffer sink(static_cast<size_t>(grid) * sizeof(uint32_t));
    const double read_ms = median_ms(stream, 20, [&] {
      read_stream_kernel<<<grid, 512, 0, stream>>>(buffer.as<uint4>(), stream_bytes / 16, sink.as<uint32_t>());
      IOL_CUDA_LAUNCH_CHECK();
    });
    ceilings.read_bytes_per_s = static_cast<double>(stream_bytes) / (read_ms * 1e-3);
    const size_t half = stream_bytes / 2;
    const double copy_ms = median_ms(stream, 20, [&] {
      IOL_CUDA_CHECK(cudaMemcpyAsync(buffer.as<char>() + half, buffer.data(), half, cudaMemcpyDeviceToDevice, stream));
    });
    ceilings.copy_bytes_per_s = 2.0 * static_cast<double>(half) / (copy_ms * 1e-3);
    ceilings.stream_bytes = static_cast<int64_t>(stream_bytes);
  }
  constexpr int kGemm = 8192;
  const size_t elements = size_t{kGemm} * kGemm;
  if (free_bytes > 4 * elements * 2) {
    DeviceBuffer a(elements * 2), b(elements * 2), c(elements * 2);
    kernels::fill_dummy_bf16(a.as<__nv_bfloat16>(), elements, 0xa11ce, 0.5, 0.0, stream);
    kernels::fill_dummy_bf16(b.as<__nv_bfloat16>(), elements, 0xb0b, 0.5, 0.0, stream);
    const double gemm_ms = median_ms(stream, 10, [&] {
      gemm.linear(a.as<__nv_bfloat16>(), b.as<__nv_bfloat16>(), nullptr, c.data(), kGemm, kGemm, kGemm, false, stream);
    });
    ceilings.bf16_gemm_flops = 2.0 * kGemm * double{kGemm} * kGemm / (gemm_ms * 1e-3);
  }
  IOL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return ceilings;
}

}  // namespace iol::backend::cuda
