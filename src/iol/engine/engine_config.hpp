// EngineConfig: the scheduler's limits and the lever switches the benchmark ablates.
#pragma once
#include <cstdint>
#include <string>

namespace iol::engine {

// Static: a batch is formed and runs until its longest member finishes (PyTorch generate);
// InFlight: sequences join and leave at every step (continuous batching, Orca/vLLM).
enum class BatchingMode { InFlight, Static };
// Paged: blocks are taken as tokens arrive; Contiguous: each sequence reserves max_model_len
// tokens of KV when admitted, as a naive implementation does.
enum class KvLayout { Paged, Contiguous };

// Admission (docs/engine.md): MaxUtilization admits whatever fits this step and preempts
// (recompute) when the pool runs out later, as vLLM does; GuaranteedNoEvict admits a request only
// if the KV of its whole life (prompt + max_tokens) fits beside what the running sequences may
// still grow into, as TensorRT-LLM's GUARANTEED_NO_EVICT does: fewer sequences, no recompute.
enum class SchedulerPolicy { MaxUtilization, GuaranteedNoEvict };

// Speculative decoding (docs/speculative.md): who proposes the tokens the target verifies.
enum class SpeculativeMethod { None, Ngram, DraftModel };

struct SpeculativeConfig {
  SpeculativeMethod method = SpeculativeMethod::None;
  int64_t num_speculative_tokens = 0;  // k: proposals verified per sequence and step, at most
  // Speculation is off in a step whose running batch holds more than this many sequences, where
  // verifying k extra tokens per sequence costs more compute than it saves in steps (0: never off).
  int64_t disable_by_batch_size = 0;
  int64_t prompt_lookup_min = 1;  // ngram: shortest and longest suffix matched
  int64_t prompt_lookup_max = 3;
  // Benchmark only (iol bench --speculative-forced-acceptance): in [0, 1], every proposal is
  // accepted with this probability whatever the target says, so the cost of a step at a chosen
  // acceptance rate can be measured; the outputs are then not the model's. < 0: off (lossless).
  double forced_acceptance = -1.0;

  bool enabled() const { return method != SpeculativeMethod::None && num_speculative_tokens > 0; }
};

inline constexpr int64_t kMaxSpeculativeTokens = 32;

struct EngineConfig {
  int64_t num_kv_blocks = 0;            // the pool; sized from a memory budget by the caller
  int64_t block_size = 16;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 2048;
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  BatchingMode batching = BatchingMode::InFlight;
  KvLayout kv_layout = KvLayout::Paged;
  SchedulerPolicy scheduler_policy = SchedulerPolicy::MaxUtilization;
  SpeculativeConfig speculative;

  void validate() const;  // throws iol::Error naming the field
};

const char* batching_mode_name(BatchingMode mode);
const char* kv_layout_name(KvLayout layout);
BatchingMode parse_batching_mode(const std::string& text);  // throws UsageError
KvLayout parse_kv_layout(const std::string& text);          // throws UsageError
const char* scheduler_policy_name(SchedulerPolicy policy);
SchedulerPolicy parse_scheduler_policy(const std::string& text);  // throws UsageError
const char* speculative_method_name(SpeculativeMethod method);
SpeculativeMethod parse_speculative_method(const std::string& text);  // throws UsageError

}  // namespace iol::engine
