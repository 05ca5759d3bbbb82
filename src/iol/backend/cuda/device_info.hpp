// CUDA device discovery and a conversion self-check; the seed of the CUDA backend.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace iol::backend::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability_major = 0, compute_capability_minor = 0;
  int multiprocessors = 0;
  int64_t total_memory_bytes = 0;
};

// Empty when no driver or device is present (never throws for that).
std::vector<DeviceInfo> list_devices();
// Rounds each value to bf16 and back on the device (round-to-nearest-even, as the host does).
std::vector<float> bf16_round_trip_on_device(const std::vector<float>& values);

}  // namespace iol::backend::cuda
