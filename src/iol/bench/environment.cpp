#include "iol/bench/environment.hpp"

#include <cstdlib>

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "iol/bench/nvml_sampler.hpp"
#include "iol/git_commit.hpp"
#include "iol/version.hpp"

namespace iol::bench {

namespace {
std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}
}  // namespace

nlohmann::json collect_environment(const NvmlSampler& nvml) {
  utsname uts{};
  uname(&uts);
  nlohmann::json gpu = nullptr;
  if (auto info = nvml.gpu_info())
    gpu = {{"name", info->name}, {"driver_version", info->driver_version}, {"memory_total_bytes", info->memory_total_bytes}};
  return {{"date", utc_now()},
          {"iol_version", std::string(kVersion)},
          {"git_commit", std::string(kGitCommit)},
          {"host", uts.nodename},
          {"kernel", std::string(uts.sysname) + " " + uts.release},
          {"cpu_model", cpu_model()},
          {"cpu_count", std::thread::hardware_concurrency()},
          {"gpu", gpu},
          {"gpu_unavailable_reason", nvml.available() ? nlohmann::json(nullptr) : nlohmann::json(nvml.unavailable_reason())},
          {"cuda_runtime", nullptr},
          // docker/Dockerfile sets it to the image's digest: records say which locked image made them.
          {"image_digest", std::getenv("IOL_IMAGE_DIGEST") && *std::getenv("IOL_IMAGE_DIGEST")
                               ? nlohmann::json(std::getenv("IOL_IMAGE_DIGEST")) : nlohmann::json(nullptr)}};
}

}  // namespace iol::bench
