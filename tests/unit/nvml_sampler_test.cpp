// Without NVML (a path that does not exist, or a library that is not NVML) every telemetry
// field is null with a reason; nothing crashes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iol/bench/environment.hpp"
#include "iol/bench/nvml_sampler.hpp"

namespace iol::bench {

TEST(NvmlSampler, MissingLibraryGivesNullsAndAReason) {
  NvmlSampler sampler("/nonexistent/libnvidia-ml.so.1");
  EXPECT_FALSE(sampler.available());
  EXPECT_NE(sampler.unavailable_reason().find("/nonexistent/libnvidia-ml.so.1"), std::string::npos);
  EXPECT_FALSE(sampler.gpu_info().has_value());
  sampler.start();
  TelemetrySummary summary = sampler.stop();
  EXPECT_FALSE(summary.available);
  nlohmann::json j = summary.to_json();
  EXPECT_TRUE(j["reason"].is_string());
  for (const char* field : {"energy_counter_j", "energy_integrated_j", "mean_power_w", "peak_memory_used_bytes"})
    EXPECT_TRUE(j[field].is_null()) << field;
  nlohmann::json env = collect_environment(sampler);
  EXPECT_TRUE(env["gpu"].is_null());
  EXPECT_TRUE(env["gpu_unavailable_reason"].is_string());
}

TEST(NvmlSampler, ALibraryThatIsNotNvmlIsRejected) {
  NvmlSampler sampler("libc.so.6");
  EXPECT_FALSE(sampler.available());
  EXPECT_EQ(sampler.unavailable_reason(), "libc.so.6 lacks an NVML entry point");
}

}  // namespace iol::bench
