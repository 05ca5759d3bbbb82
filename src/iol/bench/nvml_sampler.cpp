#include "iol/bench/nvml_sampler.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace iol::bench {

namespace {
// The few NVML types and entry points we use (the ABI documented in nvml.h).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
struct NvmlUtilization {
  unsigned int gpu, memory;
};
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr int kNvmlClockSm = 1;
constexpr int kNvmlTemperatureGpu = 0;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

struct NvmlSampler::Functions {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*shutdown)();
  nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*get_driver)(char*, unsigned int);
  nvmlReturn_t (*get_power)(nvmlDevice_t, unsigned int*);
  nvmlReturn_t (*get_energy)(nvmlDevice_t, unsigned long long*);
  nvmlReturn_t (*get_memory)(nvmlDevice_t, NvmlMemory*);
  nvmlReturn_t (*get_utilization)(nvmlDevice_t, NvmlUtilization*);
  nvmlReturn_t (*get_clock)(nvmlDevice_t, int, unsigned int*);
  nvmlReturn_t (*get_temperature)(nvmlDevice_t, int, unsigned int*);
};

NvmlSampler::NvmlSampler(const std::string& library, int device_index, double sample_hz)
    : period_s_(1.0 / sample_hz), fn_(std::make_unique<Functions>()) {
  // A path is opened by dlopen() itself: a FIFO there would block it for ever.
  struct stat info {};
  if (library.find('/') != std::string::npos && (::stat(library.c_str(), &info) != 0 || !S_ISREG(info.st_mode))) {
    reason_ = fmt::format("NVML not loaded: {} is not a regular file", library);
    return;
  }
  library_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library_) {
    const char* error = dlerror();
    reason_ = fmt::format("NVML not loaded: {}", error ? error : library);
    return;
  }
  auto load = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(library_, name));
    return fn != nullptr;
  };
  bool ok = load(fn_->init, "nvmlInit_v2") && load(fn_->shutdown, "nvmlShutdown") &&
            load(fn_->get_handle, "nvmlDeviceGetHandleByIndex_v2") && load(fn_->get_name, "nvmlDeviceGetName") &&
            load(fn_->get_driver, "nvmlSystemGetDriverVersion") && load(fn_->get_power, "nvmlDeviceGetPowerUsage") &&
            load(fn_->get_energy, "nvmlDeviceGetTotalEnergyConsumption") &&
            load(fn_->get_memory, "nvmlDeviceGetMemoryInfo") &&
            load(fn_->get_utilization, "nvmlDeviceGetUtilizationRates") &&
            load(fn_->get_clock, "nvmlDeviceGetClockInfo") && load(fn_->get_temperature, "nvmlDeviceGetTemperature");
  if (!ok) {
    reason_ = fmt::format("{} lacks an NVML entry point", library);
    return;
  }
  if (fn_->init() != kNvmlSuccess) {
    reason_ = "nvmlInit failed (no driver?)";
    return;
  }
  nvmlDevice_t device = nullptr;
  if (fn_->get_handle(static_cast<unsigned int>(device_index), &device) != kNvmlSuccess) {
    reason_ = fmt::format("no GPU at index {}", device_index);
    fn_->shutdown();
    return;
  }
  device_ = device;
}

NvmlSampler::~NvmlSampler() {
  if (running_) stop();
  if (device_) fn_->shutdown();
  if (library_) dlclose(library_);
}

std::optional<GpuInfo> NvmlSampler::gpu_info() const {
  if (!device_) return std::nullopt;
  GpuInfo info;
  char buffer[128] = {};
  if (fn_->get_name(device_, buffer, sizeof buffer) == kNvmlSuccess) info.name = buffer;
  if (fn_->get_driver(buffer, sizeof buffer) == kNvmlSuccess) info.driver_version = buffer;
  NvmlMemory memory{};
  if (fn_->get_memory(device_, &memory) == kNvmlSuccess) info.memory_total_bytes = static_cast<int64_t>(memory.total);
  return info;
}

std::optional<double> NvmlSampler::read_energy_j() const {
  unsigned long long millijoules = 0;
  if (fn_->get_energy(device_, &millijoules) != kNvmlSuccess) return std::nullopt;
  return static_cast<double>(millijoules) / 1e3;
}

NvmlSampler::Sample NvmlSampler::read_sample(double t) const {
  Sample s{t, {}, {}, {}, {}, {}, {}};
  unsigned int value = 0;
  if (fn_->get_power(device_, &value) == kNvmlSuccess) s.power_w = value / 1e3;  // milliwatts
  NvmlMemory memory{};
  if (fn_->get_memory(device_, &memory) == kNvmlSuccess) s.memory_used = static_cast<double>(memory.used);
  NvmlUtilization util{};
  if (fn_->get_utilization(device_, &util) == kNvmlSuccess) {
    s.gpu_util = util.gpu;
    s.mem_util = util.memory;
  }
  if (fn_->get_clock(device_, kNvmlClockSm, &value) == kNvmlSuccess) s.sm_clock = value;
  if (fn_->get_temperature(device_, kNvmlTemperatureGpu, &value) == kNvmlSuccess) s.temperature = value;
  return s;
}

void NvmlSampler::start() {
  if (!device_ || running_) return;
  samples_.clear();
  start_time_ = now_seconds();
  energy_start_j_ = read_energy_j();
  running_ = true;
  thread_ = std::thread([this] { loop(); });
}

void NvmlSampler::loop() {
  auto next = std::chrono::steady_clock::now();
  while (running_) {
    Sample s = read_sample(now_seconds() - start_time_);
    {
      std::lock_guard lock(samples_mutex_);
      samples_.push_back(s);
    }
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(period_s_));
    std::this_thread::sleep_until(next);
  }
}

TelemetrySummary NvmlSampler::stop() {
  TelemetrySummary summary;
  if (!device_) {
    summary.reason = reason_;
    return summary;
  }
  running_ = false;
  if (thread_.joinable()) thread_.join();
  const double end = now_seconds() - start_time_;
  std::optional<double> energy_end = read_energy_j();
  samples_.push_back(read_sample(end));
  summary.available = true;
  summary.num_samples = static_cast<int64_t>(samples_.size());
  summary.duration_s = end;
  if (energy_start_j_ && energy_end) summary.energy_counter_j = *energy_end - *energy_start_j_;
  auto mean_of = [&](auto field) -> std::optional<double> {
    double sum = 0;
    int64_t n = 0;
    for (const auto& s : samples_) if (s.*field) { sum += *(s.*field); ++n; }
    return n ? std::optional<double>(sum / static_cast<double>(n)) : std::nullopt;
  };
  auto max_of = [&](auto field) -> std::optional<double> {
    std::optional<double> best;
    for (const auto& s : samples_) if (s.*field) best = std::max(best.value_or(*(s.*field)), *(s.*field));
    return best;
  };
  summary.mean_power_w = mean_of(&Sample::power_w);
  summary.peak_power_w = max_of(&Sample::power_w);
  summary.peak_memory_used_bytes = max_of(&Sample::memory_used);
  summary.mean_gpu_utilization = mean_of(&Sample::gpu_util);
  summary.mean_memory_utilization = mean_of(&Sample::mem_util);
  summary.mean_sm_clock_mhz = mean_of(&Sample::sm_clock);
  summary.max_temperature_c = max_of(&Sample::temperature);
  // Trapezoids between consecutive power samples (the first at t ≈ 0, the last at the end).
  double integral = 0;
  bool have_power = false;
  for (size_t i = 1; i < samples_.size(); ++i) {
    const auto& a = samples_[i - 1];
    const auto& b = samples_[i];
    if (a.power_w && b.power_w) {
      integral += 0.5 * (*a.power_w + *b.power_w) * (b.t - a.t);
      have_power = true;
    }
  }
  if (have_power) summary.energy_integrated_j = integral;
  // Every k-th sample (and the last), so a long run stays a few kilobytes per record.
  const size_t stride = (samples_.size() + TelemetrySummary::kMaxTimelinePoints - 1) / TelemetrySummary::kMaxTimelinePoints;
  for (size_t i = 0; i < samples_.size(); i += std::max<size_t>(stride, 1)) {
    const size_t k = i + stride >= samples_.size() ? samples_.size() - 1 : i;
    summary.timeline_t_s.push_back(samples_[k].t);
    summary.timeline_power_w.push_back(samples_[k].power_w);
    summary.timeline_memory_used_bytes.push_back(samples_[k].memory_used);
  }
  return summary;
}

nlohmann::json TelemetrySummary::to_json() const {
  auto field = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json out = {{"available", available},
          {"reason", available ? nlohmann::json(nullptr) : nlohmann::json(reason)},
          {"num_samples", num_samples},
          {"duration_s", duration_s},
          {"energy_counter_j", field(energy_counter_j)},
          {"energy_integrated_j", field(energy_integrated_j)},
          {"mean_power_w", field(mean_power_w)},
          {"peak_power_w", field(peak_power_w)},
          {"peak_memory_used_bytes", field(peak_memory_used_bytes)},
          {"mean_gpu_utilization", field(mean_gpu_utilization)},
          {"mean_memory_utilization", field(mean_memory_utilization)},
          {"mean_sm_clock_mhz", field(mean_sm_clock_mhz)},
          {"max_temperature_c", field(max_temperature_c)}};
  if (!timeline_t_s.empty()) {
    nlohmann::json power = nlohmann::json::array(), memory = nlohmann::json::array();
    for (const auto& v : timeline_power_w) power.push_back(field(v));
    for (const auto& v : timeline_memory_used_bytes) memory.push_back(field(v));
    out["timeline"] = {{"t_s", timeline_t_s}, {"power_w", power}, {"memory_used_bytes", memory}};
  }
  return out;
}

}  // namespace iol::bench
