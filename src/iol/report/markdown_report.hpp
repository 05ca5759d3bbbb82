// Markdown report from result records: one table per workload (and sweep point) with a row per
// engine configuration, key metrics, and ratios against a baseline row; then telemetry and the
// environment.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::report {

// `baseline_run_id` empty: each table's first row is its baseline. Throws iol::Error if the
// named baseline is not among the records.
std::string markdown_report(const std::vector<nlohmann::json>& records, const std::string& baseline_run_id);

}  // namespace iol::report
