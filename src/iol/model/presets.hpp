// Built-in model shapes: the published configs of common models (for dummy-weight benchmarks)
// and small test models (tiny, tiny-qwen2) used by tests, CPU demos and the default job.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iol/model/model_config.hpp"

namespace iol::model {

std::optional<ModelConfig> find_preset(std::string_view name);
std::vector<std::string> preset_names();
// find_preset or an iol::Error listing the known names.
ModelConfig preset_or_throw(std::string_view name);

}  // namespace iol::model
