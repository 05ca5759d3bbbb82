#include "iol/backend/backend_factory.hpp"

#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "iol/backend/cpu/cpu_backend.hpp"
#include "iol/core/error.hpp"
#include "iol/core/system_memory.hpp"
#ifdef IOL_HAVE_CUDA
#include "iol/backend/cuda/cuda_backend.hpp"
#include "iol/backend/cuda/device_info.hpp"
#endif

namespace iol::backend {

namespace {

bool cuda_device_present() {
#ifdef IOL_HAVE_CUDA
  return !cuda::list_devices().empty();
#else
  return false;
#endif
}

CreatedBackend create_cpu(const BackendOptions& options, const model::ModelSource& source,
                          const model::ModelConfig& config) {
  if (options.block_size <= 0) throw UsageError("--block-size must be positive");
  const int64_t budget = options.kv_cache_memory > 0 ? options.kv_cache_memory : kDefaultCpuKvCacheMemory;
  const int64_t bytes_per_block = cpu::CpuBackend::kv_bytes_per_block(config, options.block_size);
  const int64_t num_blocks = budget / bytes_per_block;
  // The pool is allocated up front: more than the machine's memory is a usage error now, not a
  // bad_alloc (or the OOM killer) later.
  const int64_t physical = physical_memory_bytes();
  if (physical > 0 && budget > physical)
    throw UsageError(fmt::format("--kv-cache-memory {} exceeds this machine's memory ({} bytes)", budget, physical));
  if (num_blocks == 0)
    throw UsageError(fmt::format("--kv-cache-memory {} holds no block (one block of {} tokens needs {} bytes)", budget,
                                 options.block_size, bytes_per_block));
  const auto start = std::chrono::steady_clock::now();
  model::LoadedModel loaded = model::load_model(source);
  CreatedBackend created;
  created.backend = std::make_unique<cpu::CpuBackend>(config, loaded.weights, num_blocks, options.block_size,
                                                      options.cpu_threads, options.quantization, options.kv_cache_dtype);
  created.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::string> simulated;
  if (options.quantization != quant::QuantScheme::None) simulated.emplace_back(quant::scheme_name(options.quantization));
  if (options.kv_cache_dtype == quant::KvCacheDtype::Fp8) simulated.emplace_back("fp8 KV cache");
  created.description = simulated.empty() ? "cpu (fp32 reference)"
                                          : fmt::format("cpu (fp32 reference, {} simulated)", fmt::join(simulated, ", "));
  return created;
}

#ifdef IOL_HAVE_CUDA
CreatedBackend create_cuda(const BackendOptions& options, const model::ModelSource& source,
                           const model::ModelConfig& config) {
  if (!cuda_device_present())
    fail("--backend cuda: no CUDA device is visible (driver missing or no GPU); use --backend cpu");
  cuda::CudaBackendOptions o;
  o.block_size = options.block_size;
  o.kv_cache_memory = options.kv_cache_memory;
  o.gpu_memory_utilization = options.gpu_memory_utilization;
  o.max_num_seqs = options.max_num_seqs;
  o.max_num_batched_tokens = options.max_num_batched_tokens;
  o.max_model_len = options.max_model_len;
  o.cuda_graphs = options.cuda_graphs;
  o.decode_gemv = options.decode_gemv;
  o.quantization = options.quantization;
  o.kv_cache_dtype = options.kv_cache_dtype;
  o.max_speculative_tokens = options.max_speculative_tokens;
  o.speculative_max_batch = options.speculative_max_batch;
  CreatedBackend created;
  std::unique_ptr<cuda::CudaBackend> backend;
  if (model::uses_dummy_weights(source)) {
    if (source.dummy_dtype && *source.dummy_dtype != DType::BF16)
      throw UsageError("--backend cuda computes in bf16: dummy weights are drawn in bf16 (drop --dtype)");
    backend = std::make_unique<cuda::CudaBackend>(config, source.seed, o);
  } else {
    model::LoadedModel loaded = model::load_model(source);
    backend = std::make_unique<cuda::CudaBackend>(config, *loaded.weights, o);
  }
  created.load_seconds = backend->load_seconds();
  const auto devices = cuda::list_devices();
  created.description = fmt::format("cuda ({}), {}{}", devices.empty() ? "?" : devices.front().name,
                                    backend->linear_description(),
                                    options.kv_cache_dtype == quant::KvCacheDtype::Fp8 ? ", fp8 KV cache" : "");
  created.backend = std::move(backend);
  return created;
}
#endif

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
  if (cuda_device_present()) names.push_back("cuda");
  names.push_back("cpu");
  return names;
}

CreatedBackend create_backend(const BackendOptions& options, const model::ModelSource& source,
                              const model::ModelConfig& config) {
  std::string name = options.name;
  if (name == "auto") name = available_backends().front();
  if (name == "cpu") return create_cpu(options, source, config);
  if (name == "cuda") {
#ifdef IOL_HAVE_CUDA
    return create_cuda(options, source, config);
#else
    throw UsageError("--backend cuda: this build has no CUDA backend (built without nvcc or with IOL_CUDA=OFF)");
#endif
  }
  throw UsageError(fmt::format("--backend must be auto, cpu or cuda (got '{}')", options.name));
}

}  // namespace iol::backend
