// Offline convenience API: run a list of prompts to completion as one in-flight batch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "iol/engine/engine.hpp"

namespace iol::engine {

struct Completion {
  int32_t sample_index = 0;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::vector<sampling::SampledToken> tokens;
  std::string text;
  FinishReason finish_reason = FinishReason::None;
  std::string error;  // why, when finish_reason is Error
  RequestTimestamps timestamps;
  int64_t num_cached_prompt_tokens = 0;
  int64_t num_preemptions = 0;
};

// Adds every prompt (with its params; one params for all when params.size() == 1), steps the
// engine until all finish, and returns the completions in prompt order, a prompt's n parallel
// samples next to each other (sample 0 first).
// `on_output`, if given, also sees every output as it happens (for streaming).
std::vector<Completion> generate(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                 const std::vector<sampling::SamplingParams>& params, const OutputCallback& on_output = {});

}  // namespace iol::engine
