// The engine flags shared by subcommands that run requests: KV pool size, scheduler limits and
// the lever switches (batching, KV layout, prefix caching, chunked prefill).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/engine/engine_config.hpp"
#include "iol/model/model_config.hpp"
#include "iol/spec/proposer.hpp"

namespace iol::cli {

struct EngineOptions {
  std::string backend = "auto";
  int64_t kv_cache_memory = 0;  // 0: the backend decides (cpu: 256 MiB; cuda: --gpu-memory-utilization)
  double gpu_memory_utilization = 0.90;
  bool no_cuda_graphs = false;
  bool no_decode_gemv = false;
  std::string quantization = "none";  // none | fp8 | int8-weight-only
  std::string kv_cache_dtype = "auto";  // auto (the compute dtype) | fp8 (E4M3 codes)
  int64_t block_size = 16;
  // 0: the backend's default (kDefault* below), so one command line suits the CPU and the GPU.
  int64_t max_num_seqs = 0;
  int64_t max_num_batched_tokens = 0;
  int64_t max_model_len = 0;  // 0: the config's max_position_embeddings
  std::string batching = "inflight";
  std::string kv_layout = "paged";
  std::string scheduler_policy = "max-utilization";
  bool no_prefix_caching = false;
  bool no_chunked_prefill = false;
  size_t threads = 0;
  // Speculative decoding (docs/speculative.md).
  std::string speculative_method = "none";  // none | ngram | draft (implied by --speculative-model)
  std::string speculative_model;            // draft model: HF directory or preset name
  int64_t num_speculative_tokens = 0;       // k; 0 with a method: kDefaultNumSpeculativeTokens
  int64_t speculative_disable_by_batch_size = 0;
  int64_t prompt_lookup_min = 1, prompt_lookup_max = 3;
  double speculative_forced_acceptance = -1.0;  // iol bench only: < 0 off (engine_config.hpp)
  static constexpr int64_t kDefaultNumSpeculativeTokens = 4;

  // Scheduler limits when the flags are left at 0: the CPU reference runs small batches; on the
  // GPU, vLLM's defaults for 80 GB-class cards (measured on the H200: 17.3k output tok/s offline
  // at 128/128 against 15.6k with 256 and 2048, docs/performance.md).
  static constexpr int64_t kDefaultCpuMaxNumSeqs = 256, kDefaultCpuMaxNumBatchedTokens = 2048;
  static constexpr int64_t kDefaultCudaMaxNumSeqs = 1024, kDefaultCudaMaxNumBatchedTokens = 8192;

  void add_to(CLI::App& command);
  // --backend with auto resolved to what this machine has.
  std::string resolved_backend() const;
  int64_t resolved_max_num_seqs() const;
  int64_t resolved_max_num_batched_tokens() const;
  // --max-model-len, or the config's when not given; throws UsageError above the config's.
  int64_t resolved_max_model_len(const model::ModelConfig& model) const;
  backend::BackendOptions to_backend_options(const model::ModelConfig& model) const;
  // --quantization parsed; throws UsageError naming the allowed values.
  quant::QuantScheme resolved_quantization() const;
  // --kv-cache-dtype parsed; throws UsageError naming the allowed values.
  quant::KvCacheDtype resolved_kv_cache_dtype() const;
  // The engine's limits and levers, its pool the blocks the backend allocated; throws UsageError.
  engine::EngineConfig to_config(const model::ModelConfig& model, const backend::KvCacheSpec& kv) const;
  // The draft-model proposer of --speculative-model, or null without one (the engine builds the
  // n-gram proposer itself). The draft's backend (its own KV pool: on cpu sized by
  // --kv-cache-memory, on cuda see engine_options.cpp) is created by the first call and shared
  // by later ones (the bench's fresh engine per sweep point), so call it once before creating
  // the target's backend: on cuda the target's memory budget then counts the draft as used.
  std::unique_ptr<spec::Proposer> make_proposer(const model::ModelConfig& target) const;
  engine::SpeculativeMethod resolved_speculative_method() const;
  // k: --num-speculative-tokens, or kDefaultNumSpeculativeTokens when 0 (with a method).
  int64_t resolved_num_speculative_tokens() const;

 private:
  mutable std::shared_ptr<backend::Backend> draft_backend_;
  mutable int64_t draft_max_tokens_per_forward_ = 0;
};

}  // namespace iol::cli
