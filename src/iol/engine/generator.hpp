// Generator: runs one request to completion on a backend (prefill, then one decode step per
// token), with sampling, stop conditions and streaming. The continuous-batching engine
// (scheduler, block manager) builds on the same pieces.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/model/model_config.hpp"
#include "iol/sampling/sampler.hpp"
#include "iol/tokenizer/vocabulary.hpp"

namespace iol::engine {

enum class FinishReason { Length, Stop };  // Stop: EOS, a stop token or a stop string
const char* finish_reason_name(FinishReason reason);

struct GenerationResult {
  std::vector<int32_t> output_ids;
  std::vector<sampling::SampledToken> tokens;  // per output token: logprob and top logprobs
  std::string text;                            // decoded output (empty without a vocabulary)
  FinishReason finish_reason = FinishReason::Length;
  double ttft_seconds = 0.0;   // request start → first token sampled
  double total_seconds = 0.0;  // request start → last token
};

// Receives streamed text as it becomes final.
using TextCallback = std::function<void(std::string_view)>;

class Generator {
 public:
  // `vocabulary` may be null: then no text is produced and stop strings are rejected.
  Generator(backend::Backend& backend, const model::ModelConfig& config, const tokenizer::Vocabulary* vocabulary);

  GenerationResult generate(std::span<const int32_t> prompt_ids, const sampling::SamplingParams& params,
                            const TextCallback& on_text = {});

 private:
  backend::Backend& backend_;
  const model::ModelConfig& config_;
  const tokenizer::Vocabulary* vocabulary_;
};

}  // namespace iol::engine
