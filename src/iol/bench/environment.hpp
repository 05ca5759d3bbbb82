// The environment of a run, stored in every result record: host, CPU, GPU, driver, commit,
// version and date, so a figure can be traced to where and what produced it.
#pragma once
#include <nlohmann/json_fwd.hpp>

namespace iol::bench {

class NvmlSampler;

// `nvml` may be unavailable: GPU fields are then null.
nlohmann::json collect_environment(const NvmlSampler& nvml);

}  // namespace iol::bench
