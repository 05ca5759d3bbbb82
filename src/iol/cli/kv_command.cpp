// iol kv: the KV-memory calculator (report/kv_calculator.hpp) for a preset, a Hugging Face
// directory or a config.json: bytes per token and block, sequences a budget holds per context,
// paged vs contiguous. `--backend cpu` uses the CPU backend's KV dtype (f32) and default pool.
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "iol/backend/backend_factory.hpp"
#include "iol/cli/commands.hpp"
#include "iol/core/error.hpp"
#include "iol/model/presets.hpp"
#include "iol/report/kv_calculator.hpp"

namespace iol::cli {

namespace {

struct KvOptions {
  std::string preset, model_dir, config_file;
  std::string backend = "cuda";
  std::string kv_dtype, dtype;
  int64_t block_size = 16;
  std::string kv_cache_memory, gpu_memory, reserved_memory = "0";
  double gpu_memory_utilization = 0.90;
  std::vector<int64_t> contexts;
  int64_t max_model_len = 0;
  int64_t max_num_seqs = 256;
  bool json = false;
};

DType parse_kv_dtype(const std::string& text, const char* flag) {
  if (text == "fp8" || text == "fp8_e4m3" || text == "f8_e4m3") return DType::F8_E4M3;
  if (text == "fp8_e5m2" || text == "f8_e5m2") return DType::F8_E5M2;
  if (text == "int8" || text == "i8") return DType::I8;
  if (auto d = dtype_from_user_name(text)) return *d;
  throw UsageError(fmt::format("{} must be bf16, f16, f32, fp8 (e4m3), fp8_e5m2 or int8 (got '{}')", flag, text));
}

void run_kv(const KvOptions& o) {
  const int sources = !o.preset.empty() + !o.model_dir.empty() + !o.config_file.empty();
  if (sources != 1) throw UsageError("give exactly one of --preset NAME, --model DIR, --config FILE");
  if (o.backend != "cpu" && o.backend != "cuda") throw UsageError(fmt::format("--backend must be cpu or cuda (got '{}')", o.backend));
  model::ModelConfig config;
  std::string description;
  if (!o.preset.empty()) {
    config = model::preset_or_throw(o.preset);
    description = "preset " + o.preset;
  } else {
    const std::string path = o.config_file.empty() ? (std::filesystem::path(o.model_dir) / "config.json").string() : o.config_file;
    config = model::ModelConfig::from_file(path);
    config.validate(path);
    description = o.config_file.empty() ? o.model_dir : o.config_file;
  }
  // The engine's KV dtype: the CPU reference keeps f32, the CUDA backend bf16.
  const DType kv_dtype = o.kv_dtype.empty() ? (o.backend == "cpu" ? DType::F32 : DType::BF16) : parse_kv_dtype(o.kv_dtype, "--kv-dtype");
  report::KvBudgetInputs budget;
  budget.weights_dtype = o.dtype.empty() ? (o.backend == "cpu" ? DType::F32 : DType::BF16) : parse_kv_dtype(o.dtype, "--dtype");
  if (!o.kv_cache_memory.empty()) budget.kv_cache_memory = report::parse_byte_size(o.kv_cache_memory, "--kv-cache-memory");
  if (!o.gpu_memory.empty()) budget.gpu_memory = report::parse_byte_size(o.gpu_memory, "--gpu-memory");
  budget.reserved_memory = report::parse_byte_size(o.reserved_memory, "--reserved-memory");
  budget.gpu_memory_utilization = o.gpu_memory_utilization;
  if (!o.kv_cache_memory.empty() && budget.kv_cache_memory == 0) throw UsageError("--kv-cache-memory must be positive");
  if (!o.kv_cache_memory.empty() && !o.gpu_memory.empty()) throw UsageError("give --kv-cache-memory or --gpu-memory, not both");
  if (o.kv_cache_memory.empty() && o.gpu_memory.empty()) {
    if (o.backend != "cpu") throw UsageError("give --gpu-memory (e.g. 80GiB) or --kv-cache-memory (the KV pool itself)");
    budget.kv_cache_memory = backend::kDefaultCpuKvCacheMemory;  // what `--backend cpu` allocates by default
  }
  const int64_t max_model_len = o.max_model_len > 0 ? o.max_model_len : config.max_position_embeddings;
  std::vector<int64_t> contexts = o.contexts;
  if (contexts.empty())
    for (int64_t c = 512; c <= max_model_len; c *= 2) contexts.push_back(c);
  if (contexts.empty()) contexts.push_back(max_model_len);
  const report::KvMemoryPlan plan = report::plan_kv_memory(config, description, kv_dtype, o.block_size, budget, contexts,
                                                           o.max_num_seqs, max_model_len);
  if (o.json) fmt::print("{}\n", plan.to_json().dump(2));
  else fmt::print("{}", plan.to_text());
}

}  // namespace

void add_kv_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<KvOptions>();
  CLI::App* command = app.add_subcommand("kv", "KV-cache memory: bytes per token, sequences a budget holds, paged vs contiguous");
  command->footer(
      "Examples:\n"
      "  iol kv --preset llama-3.1-8b --gpu-memory 80GiB --gpu-memory-utilization 0.9\n"
      "  iol kv --preset llama-3.1-70b --kv-dtype fp8 --kv-cache-memory 40GiB --context 4096,32768 --json\n"
      "  iol kv --preset tiny --backend cpu --kv-cache-memory 4MiB --context 64   # what iol bench --backend cpu admits");
  command->add_option("--preset", options->preset, fmt::format("Built-in model shape: {}", fmt::join(model::preset_names(), ", ")));
  command->add_option("--model", options->model_dir, "Hugging Face model directory (its config.json)");
  command->add_option("--config", options->config_file, "A config.json file");
  command->add_option("--backend", options->backend, "cuda (bf16 KV) | cpu (f32 KV, 256 MiB pool by default)")->capture_default_str();
  command->add_option("--kv-dtype", options->kv_dtype, "KV cache dtype: bf16 | f16 | f32 | fp8 | fp8_e5m2 | int8 (default: the backend's)");
  command->add_option("--dtype", options->dtype, "Weights dtype, for the weights' share of --gpu-memory (default: the backend's)");
  command->add_option("--block-size", options->block_size, "Tokens per KV block")->capture_default_str();
  command->add_option("--kv-cache-memory", options->kv_cache_memory, "The KV pool itself (as iol bench --kv-cache-memory), e.g. 40GiB");
  command->add_option("--gpu-memory", options->gpu_memory, "Device memory, e.g. 80GiB (H100 SXM), 141GB (H200)");
  command->add_option("--gpu-memory-utilization", options->gpu_memory_utilization, "Fraction of --gpu-memory for weights, activations and KV")
      ->capture_default_str();
  command->add_option("--reserved-memory", options->reserved_memory, "Activations and CUDA context taken before the KV pool, e.g. 2.4GiB")
      ->capture_default_str();
  command->add_option("--context", options->contexts, "Context lengths (prompt + output tokens); default 512, 1024, … up to max_model_len")
      ->delimiter(',');
  command->add_option("--max-model-len", options->max_model_len, "What a contiguous layout reserves per sequence (default: the config's)");
  command->add_option("--max-num-seqs", options->max_num_seqs, "The scheduler's cap on running sequences")->capture_default_str();
  command->add_flag("--json", options->json, "Print JSON instead of text");
  command->callback([options, &runner] { runner = [options] { run_kv(*options); }; });
}

}  // namespace iol::cli
