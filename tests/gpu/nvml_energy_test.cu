// On a GPU machine: NVML telemetry is real — a few seconds of GPU work give non-zero power and
// energy, and the energy counter agrees with mean power × duration within 10%.
#include <gtest/gtest.h>

#include <chrono>

#include "iol/backend/cuda/cuda_check.hpp"
#include "iol/bench/nvml_sampler.hpp"

namespace {

__global__ void busy_kernel(float* out, int iterations) {
  float x = threadIdx.x * 1e-3f, y = blockIdx.x * 1e-3f;
  for (int i = 0; i < iterations; ++i) {
    x = x * 0.9999f + y;
    y = y * 0.9998f + x * 1e-4f;
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = x + y;
}

TEST(GpuTelemetry, EnergyMatchesMeanPowerTimesDuration) {
  iol::bench::NvmlSampler sampler;
  ASSERT_TRUE(sampler.available()) << sampler.unavailable_reason();
  auto info = sampler.gpu_info();
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->name.empty());
  float* out = nullptr;
  const int blocks = 132 * 16, threads = 256;
  IOL_CUDA_CHECK(cudaMalloc(&out, sizeof(float) * blocks * threads));
  auto burn = [&](std::chrono::seconds how_long) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < how_long) {
      busy_kernel<<<blocks, threads>>>(out, 20000);
      IOL_CUDA_CHECK(cudaGetLastError());
      IOL_CUDA_CHECK(cudaDeviceSynchronize());
    }
  };
  // NVML's power reading is a ~1 s moving average on Hopper: start sampling at steady state,
  // or the power integral lags the ramp-up that the energy counter sees.
  burn(std::chrono::seconds(2));
  sampler.start();
  burn(std::chrono::seconds(4));
  iol::bench::TelemetrySummary summary = sampler.stop();
  IOL_CUDA_CHECK(cudaFree(out));
  ASSERT_TRUE(summary.available);
  ASSERT_TRUE(summary.energy_counter_j.has_value());
  ASSERT_TRUE(summary.mean_power_w.has_value());
  EXPECT_GT(summary.num_samples, 40);  // 20 Hz for 4 s
  EXPECT_GT(*summary.mean_power_w, 50.0);
  EXPECT_GT(*summary.energy_counter_j, 0.0);
  const double expected = *summary.mean_power_w * summary.duration_s;
  EXPECT_NEAR(*summary.energy_counter_j, expected, 0.10 * expected);
  EXPECT_NEAR(*summary.energy_integrated_j, *summary.energy_counter_j, 0.10 * *summary.energy_counter_j);
  std::printf("[ nvml ] %s: %.1f s, mean power %.1f W, counter %.1f J, integrated %.1f J, mean×duration %.1f J, %lld samples\n",
              info->name.c_str(), summary.duration_s, *summary.mean_power_w, *summary.energy_counter_j,
              *summary.energy_integrated_j, expected, static_cast<long long>(summary.num_samples));
}

}  // namespace
