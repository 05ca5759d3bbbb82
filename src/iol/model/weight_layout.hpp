// The tensors a Llama-family checkpoint holds: Hugging Face names and shapes derived from the
// config. The single source of truth for loading, validating, dummy weights and writing models.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "iol/model/model_config.hpp"

namespace iol::model {

enum class WeightKind { Embedding, Linear, Bias, Norm };

struct WeightSpec {
  std::string name;             // e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;   // PyTorch order: Linear is [out_features, in_features]
  WeightKind kind;
};

std::vector<WeightSpec> weight_layout(const ModelConfig& config);

}  // namespace iol::model
