// HTML report from result records: one self-contained page (inline CSS and SVG, no script, no
// fetch) with throughput vs concurrency / request rate, TTFT/TPOT/ITL percentile bars, the lever
// ablation as a waterfall, power and memory over time, energy per token, the cost model and the
// environment. Every figure sits in a row or mark that names its record id (data-run-id).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/report/cost_prices.hpp"

namespace iol::report {

struct HtmlReportOptions {
  std::string baseline_run_id;  // empty: the best PyTorch record of each point, else its first
  std::string source;           // the results file(s), shown in the header
};

std::string html_report(const std::vector<nlohmann::json>& records, const PriceTable& prices, const HtmlReportOptions& options);

}  // namespace iol::report
