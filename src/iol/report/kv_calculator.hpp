// KV-memory calculator: what the KV cache of a model costs per token, per block and per sequence,
// and how many sequences a memory budget holds at each context length under paged allocation
// (blocks taken as tokens arrive) versus a contiguous max-length reservation per sequence (the
// "impact of prompts on memory"). The formulas are the engine's own: the block pool is
// floor(budget / bytes_per_block) blocks (backend_factory.cpp, cuda_backend.cpp) and a sequence
// of n tokens holds ceil(n / block_size) blocks (BlockManager::blocks_needed), or
// ceil(max_model_len / block_size) in the contiguous layout (Scheduler::reserved_tokens).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "iol/core/dtype.hpp"
#include "iol/model/model_config.hpp"

namespace iol::report {

struct KvBudgetInputs {
  // Either an explicit KV pool size (what --kv-cache-memory gives the engine), or a device:
  // budget = gpu_memory × gpu_memory_utilization − weights − reserved (activations, CUDA context).
  int64_t kv_cache_memory = 0;  // > 0: used as is
  int64_t gpu_memory = 0;
  double gpu_memory_utilization = 0.90;
  int64_t reserved_memory = 0;
  DType weights_dtype = DType::BF16;
};

struct KvContextRow {
  int64_t context_len = 0;
  int64_t bytes_per_sequence = 0;        // ceil(context / block) blocks, what the pool gives it
  int64_t blocks_per_sequence = 0;
  int64_t max_sequences_paged = 0;       // floor(num_blocks / blocks_per_sequence)
  int64_t admitted_paged = 0;            // also capped by max_num_seqs
  int64_t wasted_tokens_paged = 0;       // last block's unused slots, per sequence
};

struct KvMemoryPlan {
  std::string model;                     // description
  int64_t num_layers = 0, num_kv_heads = 0, head_dim = 0;
  DType kv_dtype = DType::BF16;
  int64_t block_size = 16;
  int64_t bytes_per_token = 0;           // layers × kv_heads × head_dim × 2 (K, V) × sizeof(kv dtype)
  int64_t bytes_per_block = 0;
  int64_t weights_bytes = 0;             // num_parameters × sizeof(weights dtype); 0 with an explicit pool
  int64_t kv_budget_bytes = 0;
  int64_t num_blocks = 0;
  int64_t max_num_seqs = 0;
  int64_t max_model_len = 0;
  int64_t blocks_per_sequence_contiguous = 0;
  int64_t max_sequences_contiguous = 0;  // every sequence reserves max_model_len
  int64_t admitted_contiguous = 0;
  std::vector<KvContextRow> rows;

  nlohmann::json to_json() const;
  std::string to_text() const;
};

int64_t kv_bytes_per_token(const model::ModelConfig& config, DType kv_dtype);

// Throws iol::Error naming the input when the budget holds no block or a value is out of range.
KvMemoryPlan plan_kv_memory(const model::ModelConfig& config, const std::string& model_description, DType kv_dtype,
                            int64_t block_size, const KvBudgetInputs& budget, std::vector<int64_t> context_lens,
                            int64_t max_num_seqs, int64_t max_model_len);

// "80GiB", "141 GB", "256MiB", "1.5e9", "4096" → bytes. Throws UsageError naming `what`.
int64_t parse_byte_size(const std::string& text, const std::string& what);
// 137438953472 → "128.00 GiB".
std::string format_bytes(double bytes);

}  // namespace iol::report
