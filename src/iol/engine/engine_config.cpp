#include "iol/engine/engine_config.hpp"

#include <fmt/format.h>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"

namespace iol::engine {

void EngineConfig::validate() const {
  if (num_kv_blocks <= 0) fail("engine: the KV cache has no blocks (raise --kv-cache-memory)");
  if (block_size <= 0) fail("engine: block_size must be positive (got {})", block_size);
  if (max_num_seqs <= 0) fail("engine: max_num_seqs must be positive (got {})", max_num_seqs);
  if (max_num_batched_tokens <= 0) fail("engine: max_num_batched_tokens must be positive (got {})", max_num_batched_tokens);
  if (max_model_len <= 0) fail("engine: max_model_len must be positive (got {})", max_model_len);
  if (kv_layout == KvLayout::Contiguous && ceil_div(max_model_len, block_size) > num_kv_blocks)
    fail("engine: contiguous KV layout reserves max_model_len {} tokens per sequence, but the pool holds only {} "
         "tokens", max_model_len, num_kv_blocks * block_size);
  const SpeculativeConfig& spec = speculative;
  if (spec.method != SpeculativeMethod::None &&
      (spec.num_speculative_tokens < 1 || spec.num_speculative_tokens > kMaxSpeculativeTokens))
    fail("engine: --num-speculative-tokens must be in [1, {}] with --speculative-method {} (got {})",
         kMaxSpeculativeTokens, speculative_method_name(spec.method), spec.num_speculative_tokens);
  if (spec.method == SpeculativeMethod::None && spec.num_speculative_tokens != 0)
    fail("engine: --num-speculative-tokens {} needs --speculative-method ngram or --speculative-model",
         spec.num_speculative_tokens);
  if (spec.disable_by_batch_size < 0)
    fail("engine: --speculative-disable-by-batch-size must be >= 0 (got {})", spec.disable_by_batch_size);
  if (spec.forced_acceptance > 1.0 || (spec.forced_acceptance >= 0.0 && !spec.enabled()))
    fail("engine: --speculative-forced-acceptance must be in [0, 1] and needs speculation (got {})",
         spec.forced_acceptance);
  if (spec.prompt_lookup_min < 1 || spec.prompt_lookup_max < spec.prompt_lookup_min)
    fail("engine: need 1 <= --prompt-lookup-min ({}) <= --prompt-lookup-max ({})", spec.prompt_lookup_min,
         spec.prompt_lookup_max);
}

const char* speculative_method_name(SpeculativeMethod method) {
  switch (method) {
    case SpeculativeMethod::Ngram: return "ngram";
    case SpeculativeMethod::DraftModel: return "draft";
    case SpeculativeMethod::None: break;
  }
  return "none";
}

SpeculativeMethod parse_speculative_method(const std::string& text) {
  if (text == "none") return SpeculativeMethod::None;
  if (text == "ngram") return SpeculativeMethod::Ngram;
  if (text == "draft") return SpeculativeMethod::DraftModel;
  throw UsageError(fmt::format("--speculative-method must be none, ngram or draft (got '{}')", text));
}

const char* batching_mode_name(BatchingMode mode) { return mode == BatchingMode::Static ? "static" : "inflight"; }
const char* kv_layout_name(KvLayout layout) { return layout == KvLayout::Contiguous ? "contiguous" : "paged"; }

BatchingMode parse_batching_mode(const std::string& text) {
  if (text == "inflight") return BatchingMode::InFlight;
  if (text == "static") return BatchingMode::Static;
  throw UsageError(fmt::format("--batching must be inflight or static (got '{}')", text));
}

const char* scheduler_policy_name(SchedulerPolicy policy) {
  return policy == SchedulerPolicy::GuaranteedNoEvict ? "guaranteed-no-evict" : "max-utilization";
}

SchedulerPolicy parse_scheduler_policy(const std::string& text) {
  if (text == "max-utilization") return SchedulerPolicy::MaxUtilization;
  if (text == "guaranteed-no-evict") return SchedulerPolicy::GuaranteedNoEvict;
  throw UsageError(fmt::format("--scheduler-policy must be max-utilization or guaranteed-no-evict (got '{}')", text));
}

KvLayout parse_kv_layout(const std::string& text) {
  if (text == "paged") return KvLayout::Paged;
  if (text == "contiguous") return KvLayout::Contiguous;
  throw UsageError(fmt::format("--kv-layout must be paged or contiguous (got '{}')", text));
}

}  // namespace iol::engine
