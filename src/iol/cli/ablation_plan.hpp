// The lever ablation of `iol bench --ablation SCENARIO`: every lever off, then each lever on
// alone, then all on, as far as this build and backend allow; levers that cannot run are listed
// with the reason. The steps are engine flag sets over the user's own options.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "iol/cli/engine_options.hpp"

namespace iol::cli {

struct AblationStepPlan {
  std::string step;   // "all-off", "+inflight-batching", …, "all-on"
  std::string lever;  // the lever turned on; empty for all-off / all-on
  EngineOptions engine;
};

struct AblationPlan {
  std::vector<AblationStepPlan> steps;
  std::vector<std::pair<std::string, std::string>> skipped;  // lever, reason
};

// `backend`: the resolved backend name (cpu | cuda). `pytorch_reason`: why the PyTorch baseline
// is not run (empty: it is run by the caller before these steps).
AblationPlan plan_ablation(const EngineOptions& user, const std::string& backend, const std::string& pytorch_reason);

}  // namespace iol::cli
