// The engine flags shared by subcommands that run requests: KV pool size, scheduler limits and
// the lever switches (batching, KV layout, prefix caching, chunked prefill).
#pragma once
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "iol/engine/engine_config.hpp"
#include "iol/model/model_config.hpp"

namespace iol::cli {

struct EngineOptions {
  int64_t kv_cache_memory = int64_t{256} << 20;
  int64_t block_size = 16;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;
  std::string batching = "inflight";
  std::string kv_layout = "paged";
  bool no_prefix_caching = false;
  bool no_chunked_prefill = false;
  size_t threads = 0;

  void add_to(CLI::App& command);
  // Sizes the KV pool from kv_cache_memory / bytes_per_block; throws UsageError on bad values.
  engine::EngineConfig to_config(const model::ModelConfig& model, int64_t bytes_per_block) const;
};

}  // namespace iol::cli
