// Reading Prometheus text exposition (what /metrics serves): the value of a metric, summed over
// its label sets, so one call works for iol, vLLM and anything else that names metrics alike.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace iol::bench {

// Sum of every sample of `name` (exact name: `foo` does not match `foo_total`); nullopt when absent.
std::optional<double> prometheus_value(std::string_view text, std::string_view name);

}  // namespace iol::bench
