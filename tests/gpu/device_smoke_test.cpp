// GPU smoke test: a device is visible and its bf16 rounding matches the host conversion bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "iol/backend/cuda/device_info.hpp"
#include "iol/core/dtype.hpp"
#include "iol/core/rng.hpp"

namespace iol {

TEST(GpuDevice, AtLeastOneDeviceIsVisible) {
  auto devices = backend::cuda::list_devices();
  ASSERT_FALSE(devices.empty()) << "no CUDA device: run the gpu-labelled tests on a machine with a GPU";
  EXPECT_GE(devices[0].compute_capability_major, 8);
  EXPECT_GT(devices[0].total_memory_bytes, 0);
}

TEST(GpuDevice, Bf16RoundingMatchesHost) {
  Rng rng(42);
  std::vector<float> values;
  for (int i = 0; i < 100000; ++i) values.push_back(static_cast<float>((rng.uniform() - 0.5) * std::ldexp(1.0, i % 40 - 20)));
  values.push_back(0.0f);
  values.push_back(-0.0f);
  values.push_back(bits_to_f32(0x3f808000u));  // a tie: rounds to even
  auto device = backend::cuda::bf16_round_trip_on_device(values);
  ASSERT_EQ(device.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i)
    ASSERT_EQ(f32_to_bits(device[i]), f32_to_bits(bf16_to_f32(f32_to_bf16(values[i])))) << "value " << values[i];
}

}  // namespace iol
