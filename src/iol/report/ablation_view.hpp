// The lever ablation as the reports show it: records written by `iol bench --ablation` carry an
// `ablation` object (id, step, lever, order, skipped); this groups them into one view per
// ablation run, in step order: the PyTorch baseline (when run), all levers off, each lever on
// alone, all levers on. Markdown and HTML render the same view.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace iol::report {

struct AblationStep {
  std::string step;            // "baseline", "all-off", "+paged-kv", "all-on"
  std::string lever;           // the lever this step turns on; empty for the others
  std::string run_id;
  double output_throughput = 0;
  std::optional<double> tpot_p50_ms, ttft_p50_ms;
};

struct AblationView {
  std::string id;
  std::string point;           // workload — sweep label
  std::vector<AblationStep> steps;
  std::vector<std::pair<std::string, std::string>> skipped;  // lever, reason
  const AblationStep* find(const std::string& step) const;
};

std::vector<AblationView> ablation_views(const std::vector<nlohmann::json>& records);
std::string ablation_markdown(const std::vector<AblationView>& views);

}  // namespace iol::report
