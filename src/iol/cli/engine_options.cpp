#include "iol/cli/engine_options.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "iol/cli/numeric_flags.hpp"
#include "iol/core/error.hpp"
#include "iol/spec/draft_model_proposer.hpp"

namespace iol::cli {

void EngineOptions::add_to(CLI::App& command) {
  command.add_option("--backend", backend, "auto | cpu | cuda (auto: cuda when a GPU is visible)")->capture_default_str();
  command.add_option("--kv-cache-memory", kv_cache_memory,
                     "KV-cache pool in bytes (0: cpu 256 MiB, cuda from --gpu-memory-utilization)")
      ->check(int_range(0, kMaxKvCacheMemory))
      ->capture_default_str();
  command.add_option("--gpu-memory-utilization", gpu_memory_utilization,
                     "cuda: fraction of device memory for weights, activations and the KV pool")
      ->check(real_range(0.0, 1.0, /*min_exclusive=*/true))
      ->capture_default_str();
  command.add_flag("--no-cuda-graphs", no_cuda_graphs, "cuda: launch every step's kernels one by one");
  command.add_flag("--no-decode-gemv", no_decode_gemv,
                   "cuda: steps of <= 4 tokens use cuBLASLt GEMMs instead of the fused decode GEMV");
  command.add_option("--quantization", quantization,
                     "none | fp8 (E4M3 weights and activations) | int8-weight-only: 8-bit decoder linear layers, "
                     "quantized per channel at load (cpu: simulated)")
      ->capture_default_str();
  command.add_option("--kv-cache-dtype", kv_cache_dtype,
                     "auto (the compute dtype) | fp8 (K and V stored as E4M3, scale 1: half the bytes of bf16, "
                     "so about twice the tokens fit; cpu: simulated)")
      ->capture_default_str();
  command.add_option("--block-size", block_size, "KV-cache block size in tokens")
      ->check(int_range(1, kMaxBlockSize))
      ->capture_default_str();
  command.add_option("--max-num-seqs", max_num_seqs,
                     fmt::format("Sequences running at once at most (0: {} on cpu, {} on cuda)", kDefaultCpuMaxNumSeqs,
                                 kDefaultCudaMaxNumSeqs))
      ->check(int_range(0, kMaxNumSeqs))
      ->capture_default_str();
  command.add_option("--max-num-batched-tokens", max_num_batched_tokens,
                     fmt::format("Tokens per engine step at most (0: {} on cpu, {} on cuda)",
                                 kDefaultCpuMaxNumBatchedTokens, kDefaultCudaMaxNumBatchedTokens))
      ->check(int_range(0, kMaxBatchedTokens))
      ->capture_default_str();
  command.add_option("--max-model-len", max_model_len, "Prompt + output tokens per request (default: the config's)")
      ->check(int_range(1, model::kMaxModelLen));
  command.add_option("--batching", batching, "inflight | static (PyTorch-generate style)")->capture_default_str();
  command.add_option("--kv-layout", kv_layout, "paged | contiguous (reserve max-model-len per sequence)")
      ->capture_default_str();
  command.add_option("--scheduler-policy", scheduler_policy,
                     "max-utilization (admit what fits now, preempt when the pool runs out) | guaranteed-no-evict "
                     "(admit only what fits for prompt + max_tokens: no preemption)")
      ->capture_default_str();
  command.add_flag("--no-prefix-caching", no_prefix_caching, "Disable automatic prefix caching");
  command.add_flag("--no-chunked-prefill", no_chunked_prefill, "Prefill each prompt in one step");
  command.add_option("--threads", threads, "CPU threads (0 = all cores)")
      ->check(int_range(0, kMaxThreads))
      ->capture_default_str();
  command.add_option("--speculative-method", speculative_method,
                     "Speculative decoding: none | ngram (prompt lookup) | draft (needs --speculative-model)")
      ->capture_default_str();
  command.add_option("--speculative-model", speculative_model,
                     "Draft model for speculative decoding: HF directory or preset, same tokenizer (its own backend and KV pool)");
  command.add_option("--num-speculative-tokens", num_speculative_tokens,
                     fmt::format("Tokens proposed and verified per sequence and step (0: {} with a method)",
                                 kDefaultNumSpeculativeTokens))
      ->check(int_range(0, engine::kMaxSpeculativeTokens))
      ->capture_default_str();
  command.add_option("--speculative-disable-by-batch-size", speculative_disable_by_batch_size,
                     "No speculation in steps with more running sequences than this (0: never off)")
      ->check(int_range(0, kMaxNumSeqs))
      ->capture_default_str();
  command.add_option("--prompt-lookup-min", prompt_lookup_min, "ngram: shortest suffix matched")
      ->check(int_range(1, 64))
      ->capture_default_str();
  command.add_option("--prompt-lookup-max", prompt_lookup_max, "ngram: longest suffix matched")
      ->check(int_range(1, 64))
      ->capture_default_str();
}

engine::SpeculativeMethod EngineOptions::resolved_speculative_method() const {
  const engine::SpeculativeMethod method = engine::parse_speculative_method(speculative_method);
  if (!speculative_model.empty()) {
    if (method == engine::SpeculativeMethod::Ngram)
      throw UsageError("--speculative-model is a draft model: drop --speculative-method ngram (or the model)");
    return engine::SpeculativeMethod::DraftModel;
  }
  if (method == engine::SpeculativeMethod::DraftModel)
    throw UsageError("--speculative-method draft needs --speculative-model DIR|PRESET");
  if (method == engine::SpeculativeMethod::None && num_speculative_tokens > 0)
    throw UsageError("--num-speculative-tokens needs --speculative-method ngram or --speculative-model");
  return method;
}

std::unique_ptr<spec::Proposer> EngineOptions::make_proposer(const model::ModelConfig& target) const {
  if (resolved_speculative_method() != engine::SpeculativeMethod::DraftModel) return nullptr;
  if (draft_backend_)
    return std::make_unique<spec::DraftModelProposer>(draft_backend_, target.vocab_size, draft_max_tokens_per_forward_);
  model::ModelSource source;
  if (std::filesystem::is_directory(speculative_model)) source.model_dir = speculative_model;
  else source.preset = speculative_model;
  const model::ModelConfig draft = model::load_model(source, /*load_weights=*/false).config;
  if (draft.vocab_size != target.vocab_size)
    throw UsageError(fmt::format("--speculative-model {}: vocabulary of {} tokens, the target's is {} (the draft must "
                                 "share the target's tokenizer)", speculative_model, draft.vocab_size, target.vocab_size));
  const int64_t max_len = resolved_max_model_len(target);
  if (draft.max_position_embeddings < max_len)
    throw UsageError(fmt::format("--speculative-model {}: max_position_embeddings {} is below the target's max model "
                                 "length {}; pass --max-model-len {} or less", speculative_model,
                                 draft.max_position_embeddings, max_len, draft.max_position_embeddings));
  EngineOptions draft_options = *this;
  draft_options.max_model_len = max_len;
  draft_options.quantization = "none";
  draft_options.kv_cache_dtype = "auto";  // the target's KV and weight formats are not the draft's
  backend::BackendOptions options = draft_options.to_backend_options(draft);
  options.max_speculative_tokens = 0;  // the draft runs plain forwards
  options.speculative_max_batch = 0;
  int64_t max_tokens_per_forward = 0;
  if (resolved_backend() == "cuda") {
    // The draft is created before the target, whose memory budget then counts the draft as used.
    // Its pool holds every sequence at its full length when that is at most 4 GiB (beyond, the
    // proposer frees the states of sequences it is not proposing for); --kv-cache-memory, which
    // sizes the target's pool, is not the draft's.
    const int64_t bytes_per_token = 2 * draft.num_hidden_layers * draft.kv_size() * 2;  // K and V, bf16
    options.kv_cache_memory = std::min<int64_t>(int64_t{4} << 30, bytes_per_token * options.max_num_seqs * max_len);
    max_tokens_per_forward = options.max_num_batched_tokens;
  }
  draft_backend_ = backend::create_backend(options, source, draft).backend;
  draft_max_tokens_per_forward_ = max_tokens_per_forward;
  return std::make_unique<spec::DraftModelProposer>(draft_backend_, target.vocab_size, max_tokens_per_forward);
}

int64_t EngineOptions::resolved_num_speculative_tokens() const {
  return num_speculative_tokens > 0 ? num_speculative_tokens : kDefaultNumSpeculativeTokens;
}

int64_t EngineOptions::resolved_max_model_len(const model::ModelConfig& model) const {
  if (max_model_len == 0) return model.max_position_embeddings;
  // Positions past the config's are untrained (and beyond RoPE scaling's range): refuse, as vLLM does.
  if (max_model_len > model.max_position_embeddings)
    throw UsageError(fmt::format("--max-model-len {} exceeds the model's max_position_embeddings {} (allowed: [1, {}])",
                                 max_model_len, model.max_position_embeddings, model.max_position_embeddings));
  return max_model_len;
}

std::string EngineOptions::resolved_backend() const {
  return backend == "auto" ? backend::available_backends().front() : backend;
}

int64_t EngineOptions::resolved_max_num_seqs() const {
  if (max_num_seqs < 0) throw UsageError(fmt::format("--max-num-seqs must be >= 1, or 0 for the default (got {})", max_num_seqs));
  if (max_num_seqs > 0) return max_num_seqs;
  return resolved_backend() == "cuda" ? kDefaultCudaMaxNumSeqs : kDefaultCpuMaxNumSeqs;
}

int64_t EngineOptions::resolved_max_num_batched_tokens() const {
  if (max_num_batched_tokens < 0)
    throw UsageError(fmt::format("--max-num-batched-tokens must be >= 1, or 0 for the default (got {})",
                                 max_num_batched_tokens));
  if (max_num_batched_tokens > 0) return max_num_batched_tokens;
  return resolved_backend() == "cuda" ? kDefaultCudaMaxNumBatchedTokens : kDefaultCpuMaxNumBatchedTokens;
}

backend::BackendOptions EngineOptions::to_backend_options(const model::ModelConfig& model) const {
  // Ranges were checked as the flags were parsed (numeric_flags.hpp); this guards programmatic use.
  if (block_size < 1 || block_size > kMaxBlockSize || kv_cache_memory < 0 || kv_cache_memory > kMaxKvCacheMemory ||
      max_num_seqs < 0 || max_num_seqs > kMaxNumSeqs || max_num_batched_tokens < 0 ||
      max_num_batched_tokens > kMaxBatchedTokens || max_model_len < 0 || threads > kMaxThreads ||
      !(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    throw UsageError("engine options out of range (see iol generate --help for each flag's range)");
  backend::BackendOptions options;
  options.name = backend;
  options.block_size = block_size;
  options.kv_cache_memory = kv_cache_memory;
  options.gpu_memory_utilization = gpu_memory_utilization;
  options.max_num_seqs = resolved_max_num_seqs();
  options.max_num_batched_tokens = resolved_max_num_batched_tokens();
  options.max_model_len = resolved_max_model_len(model);
  options.cuda_graphs = !no_cuda_graphs;
  options.decode_gemv = !no_decode_gemv;
  options.cpu_threads = threads;
  options.quantization = resolved_quantization();
  options.kv_cache_dtype = resolved_kv_cache_dtype();
  if (resolved_speculative_method() != engine::SpeculativeMethod::None) {
    options.max_speculative_tokens = resolved_num_speculative_tokens();
    options.speculative_max_batch = speculative_disable_by_batch_size;
  }
  return options;
}

quant::QuantScheme EngineOptions::resolved_quantization() const {
  const auto scheme = quant::parse_scheme(quantization);
  if (!scheme)
    throw UsageError(fmt::format("--quantization must be none, fp8 or int8-weight-only (got '{}')", quantization));
  return *scheme;
}

quant::KvCacheDtype EngineOptions::resolved_kv_cache_dtype() const {
  const auto dtype = quant::parse_kv_cache_dtype(kv_cache_dtype);
  if (!dtype) throw UsageError(fmt::format("--kv-cache-dtype must be auto or fp8 (got '{}')", kv_cache_dtype));
  return *dtype;
}

engine::EngineConfig EngineOptions::to_config(const model::ModelConfig& model, const backend::KvCacheSpec& kv) const {
  engine::EngineConfig config;
  config.block_size = kv.shape.block_size;
  config.num_kv_blocks = kv.shape.num_blocks;
  config.max_num_seqs = resolved_max_num_seqs();
  config.max_num_batched_tokens = resolved_max_num_batched_tokens();
  config.max_model_len = resolved_max_model_len(model);
  config.batching = engine::parse_batching_mode(batching);
  config.kv_layout = engine::parse_kv_layout(kv_layout);
  config.scheduler_policy = engine::parse_scheduler_policy(scheduler_policy);
  config.enable_prefix_caching = !no_prefix_caching;
  config.enable_chunked_prefill = !no_chunked_prefill;
  config.speculative.method = resolved_speculative_method();
  if (config.speculative.method != engine::SpeculativeMethod::None)
    config.speculative.num_speculative_tokens = resolved_num_speculative_tokens();
  config.speculative.disable_by_batch_size = speculative_disable_by_batch_size;
  config.speculative.forced_acceptance = speculative_forced_acceptance;
  config.speculative.prompt_lookup_min = prompt_lookup_min;
  config.speculative.prompt_lookup_max = prompt_lookup_max;
  if (prompt_lookup_max < prompt_lookup_min)
    throw UsageError(fmt::format("--prompt-lookup-max {} is below --prompt-lookup-min {}", prompt_lookup_max,
                                 prompt_lookup_min));
  return config;
}

}  // namespace iol::cli
