// NvmlSampler: GPU telemetry through NVML, loaded at run time with dlopen (no link dependency).
// A thread samples power, memory, utilization, SM clock and temperature at a fixed rate; run
// energy comes from the total-energy counter difference, with power integration as fallback.
// Without the library or a device every field is null with a reason — never a crash.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::bench {

struct GpuInfo {
  std::string name, driver_version;
  int64_t memory_total_bytes = 0;
};

struct TelemetrySummary {
  bool available = false;
  std::string reason;  // why not available
  int64_t num_samples = 0;
  double duration_s = 0;
  std::optional<double> energy_counter_j;     // nvmlDeviceGetTotalEnergyConsumption difference
  std::optional<double> energy_integrated_j;  // trapezoidal integral of power samples
  std::optional<double> mean_power_w, peak_power_w;
  std::optional<double> peak_memory_used_bytes;
  std::optional<double> mean_gpu_utilization, mean_memory_utilization;  // percent
  std::optional<double> mean_sm_clock_mhz, max_temperature_c;
  // Power and memory over time for the report's charts, downsampled to kMaxTimelinePoints.
  static constexpr size_t kMaxTimelinePoints = 240;
  std::vector<double> timeline_t_s;
  std::vector<std::optional<double>> timeline_power_w, timeline_memory_used_bytes;
  nlohmann::json to_json() const;
};

class NvmlSampler {
 public:
  // library: path or soname to dlopen; device_index: which GPU.
  explicit NvmlSampler(const std::string& library = "libnvidia-ml.so.1", int device_index = 0,
                       double sample_hz = 20.0);
  ~NvmlSampler();
  NvmlSampler(const NvmlSampler&) = delete;
  NvmlSampler& operator=(const NvmlSampler&) = delete;

  bool available() const { return device_ != nullptr; }
  const std::string& unavailable_reason() const { return reason_; }
  std::optional<GpuInfo> gpu_info() const;

  void start();
  TelemetrySummary stop();
  // The device's total-energy counter now (joules since the driver loaded), when it has one.
  std::optional<double> total_energy_j() const { return available() ? read_energy_j() : std::nullopt; }

 private:
  struct Sample {
    double t;
    std::optional<double> power_w, memory_used, gpu_util, mem_util, sm_clock, temperature;
  };
  void loop();
  Sample read_sample(double t) const;
  std::optional<double> read_energy_j() const;

  void* library_ = nullptr;
  void* device_ = nullptr;
  std::string reason_;
  double period_s_;
  struct Functions;
  std::unique_ptr<Functions> fn_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex samples_mutex_;
  std::vector<Sample> samples_;
  std::optional<double> energy_start_j_;
  double start_time_ = 0;
};

}  // namespace iol::bench
