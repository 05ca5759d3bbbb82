// The backend factory: the one place that knows every backend. `--backend cpu|cuda|auto` picks
// one (auto: cuda when this build has it and a GPU is visible); the backend loads the weights
// and sizes its KV pool, which the engine then adopts (kv_cache_spec()).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/model/model_source.hpp"
#include "iol/quant/quant_scheme.hpp"

namespace iol::backend {

struct BackendOptions {
  std::string name = "auto";          // auto | cpu | cuda
  int64_t block_size = 16;
  int64_t kv_cache_memory = 0;        // bytes of KV pool; 0 = the backend's default
  double gpu_memory_utilization = 0.90;
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;          // 0 = the config's
  bool cuda_graphs = true;
  bool decode_gemv = true;            // cuda: our fused GEMV for steps of <= 4 tokens (else cuBLASLt)
  size_t cpu_threads = 0;             // 0 = all cores
  // 8-bit linear layers (docs/quantization.md): on cuda the real kernels, on cpu the simulation.
  quant::QuantScheme quantization = quant::QuantScheme::None;
  // The KV cache's element type: auto = the compute dtype; fp8 = E4M3 codes (cpu: simulated).
  quant::KvCacheDtype kv_cache_dtype = quant::KvCacheDtype::Auto;
  // Speculative decoding: k proposals per sequence, in steps of at most speculative_max_batch
  // sequences (0 = max_num_seqs); a backend that reserves per-row buffers sizes them from these.
  int64_t max_speculative_tokens = 0;
  int64_t speculative_max_batch = 0;
};

// The CPU backend's pool when kv_cache_memory is 0.
inline constexpr int64_t kDefaultCpuKvCacheMemory = int64_t{256} << 20;

struct CreatedBackend {
  std::unique_ptr<Backend> backend;
  double load_seconds = 0;
  std::string description;  // "cuda (NVIDIA H100 80GB HBM3), bf16"
};

// Throws iol::Error / UsageError naming the problem (unknown name, cuda not built, no GPU).
CreatedBackend create_backend(const BackendOptions& options, const model::ModelSource& source,
                              const model::ModelConfig& config);
// Backends this build and machine can run, in preference order ("cuda" only with a GPU).
std::vector<std::string> available_backends();

}  // namespace iol::backend
