// RoPE inverse frequencies for head_dim with default, linear or llama3 scaling (as transformers'
// rope_init_fns), in fp32. Shared by the CPU and CUDA backends.
#pragma once
#include <cstdint>
#include <vector>

#include "iol/model/model_config.hpp"

namespace iol::backend {

std::vector<float> rope_inverse_frequencies(const model::RopeConfig& rope, int64_t head_dim);

}  // namespace iol::backend
