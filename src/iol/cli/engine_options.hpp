// The engine flags shared by subcommands that run requests: KV pool size, scheduler limits and
// the lever switches (batching, KV layout, prefix caching, chunked prefill).
#pragma once
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/engine/engine_config.hpp"
#include "iol/model/model_config.hpp"

namespace iol::cli {

struct EngineOptions {
  std::string backend = "auto";
  int64_t kv_cache_memory = 0;  // 0: the backend decides (cpu: 256 MiB; cuda: --gpu-memory-utilization)
  double gpu_memory_utilization = 0.90;
  bool no_cuda_graphs = false;
  bool no_decode_gemv = false;
  int64_t block_size = 16;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;  // 0: the config's max_position_embeddings
  std::string batching = "inflight";
  std::string kv_layout = "paged";
  bool no_prefix_caching = false;
  bool no_chunked_prefill = false;
  size_t threads = 0;

  void add_to(CLI::App& command);
  // --max-model-len, or the config's when not given; throws UsageError above the config's.
  int64_t resolved_max_model_len(const model::ModelConfig& model) const;
  backend::BackendOptions to_backend_options(const model::ModelConfig& model) const;
  // The engine's limits and levers, its pool the blocks the backend allocated; throws UsageError.
  engine::EngineConfig to_config(const model::ModelConfig& model, const backend::KvCacheSpec& kv) const;
};

}  // namespace iol::cli
