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

  void validate() const;  // throws iol::Error naming the field
};

const char* batching_mode_name(BatchingMode mode);
const char* kv_layout_name(KvLayout layout);
BatchingMode parse_batching_mode(const std::string& text);  // throws UsageError
KvLayout parse_kv_layout(const std::string& text);          // throws UsageError

}  // namespace iol::engine
