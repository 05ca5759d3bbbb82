#include "iol/report/kv_calculator.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::report {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

int64_t kv_bytes_per_token(const model::ModelConfig& config, DType kv_dtype) {
  return config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 2 *
         static_cast<int64_t>(dtype_size(kv_dtype));
}

KvMemoryPlan plan_kv_memory(const model::ModelConfig& config, const std::string& model_description, DType kv_dtype,
                            int64_t block_size, const KvBudgetInputs& budget, std::vector<int64_t> context_lens,
                            int64_t max_num_seqs, int64_t max_model_len) {
  if (block_size <= 0) throw UsageError(fmt::format("--block-size must be positive (got {})", block_size));
  if (max_num_seqs <= 0) throw UsageError(fmt::format("--max-num-seqs must be positive (got {})", max_num_seqs));
  if (max_model_len <= 0) max_model_len = config.max_position_embeddings;
  if (max_model_len <= 0) throw UsageError("--max-model-len: the config has no max_position_embeddings; give one");
  for (int64_t c : context_lens)
    if (c <= 0) throw UsageError(fmt::format("--context: lengths must be positive (got {})", c));
  KvMemoryPlan plan;
  plan.model = model_description;
  plan.num_layers = config.num_hidden_layers;
  plan.num_kv_heads = config.num_key_value_heads;
  plan.head_dim = config.head_dim;
  plan.kv_dtype = kv_dtype;
  plan.block_size = block_size;
  plan.bytes_per_token = kv_bytes_per_token(config, kv_dtype);
  plan.bytes_per_block = plan.bytes_per_token * block_size;
  plan.max_num_seqs = max_num_seqs;
  plan.max_model_len = max_model_len;
  if (budget.kv_cache_memory > 0) {
    plan.kv_budget_bytes = budget.kv_cache_memory;
  } else {
    if (budget.gpu_memory <= 0) throw UsageError("give --kv-cache-memory BYTES, or --gpu-memory BYTES (with --gpu-memory-utilization)");
    if (!(budget.gpu_memory_utilization > 0 && budget.gpu_memory_utilization <= 1))
      throw UsageError(fmt::format("--gpu-memory-utilization must be in (0, 1] (got {})", budget.gpu_memory_utilization));
    plan.weights_bytes = config.num_parameters() * static_cast<int64_t>(dtype_size(budget.weights_dtype));
    const double target = budget.gpu_memory_utilization * static_cast<double>(budget.gpu_memory);
    plan.kv_budget_bytes = static_cast<int64_t>(std::floor(target)) - plan.weights_bytes - budget.reserved_memory;
    if (plan.kv_budget_bytes <= 0)
      fail("kv: no memory left for the KV cache: {:.0f}% of {} is {}, the weights take {} and --reserved-memory {}",
           budget.gpu_memory_utilization * 100, format_bytes(static_cast<double>(budget.gpu_memory)), format_bytes(target),
           format_bytes(static_cast<double>(plan.weights_bytes)), format_bytes(static_cast<double>(budget.reserved_memory)));
  }
  plan.num_blocks = plan.kv_budget_bytes / plan.bytes_per_block;
  if (plan.num_blocks == 0)
    fail("kv: a KV budget of {} holds no block (one block of {} tokens needs {})", format_bytes(static_cast<double>(plan.kv_budget_bytes)),
         block_size, format_bytes(static_cast<double>(plan.bytes_per_block)));
  plan.blocks_per_sequence_contiguous = ceil_div(max_model_len, block_size);
  plan.max_sequences_contiguous = plan.num_blocks / plan.blocks_per_sequence_contiguous;
  plan.admitted_contiguous = std::min(plan.max_sequences_contiguous, max_num_seqs);
  std::sort(context_lens.begin(), context_lens.end());
  context_lens.erase(std::unique(context_lens.begin(), context_lens.end()), context_lens.end());
  for (int64_t context : context_lens) {
    KvContextRow row;
    row.context_len = context;
    row.blocks_per_sequence = ceil_div(context, block_size);
    row.bytes_per_sequence = row.blocks_per_sequence * plan.bytes_per_block;
    row.max_sequences_paged = plan.num_blocks / row.blocks_per_sequence;
    row.admitted_paged = std::min(row.max_sequences_paged, max_num_seqs);
    row.wasted_tokens_paged = row.blocks_per_sequence * block_size - context;
    plan.rows.push_back(row);
  }
  return plan;
}

nlohmann::json KvMemoryPlan::to_json() const {
  nlohmann::json rows_json = nlohmann::json::array();
  for (const auto& r : rows)
    rows_json.push_back({{"context_len", r.context_len},
                         {"bytes_per_sequence", r.bytes_per_sequence},
                         {"blocks_per_sequence", r.blocks_per_sequence},
                         {"max_sequences_paged", r.max_sequences_paged},
                         {"admitted_paged", r.admitted_paged},
                         {"wasted_tokens_paged", r.wasted_tokens_paged},
                         {"max_sequences_contiguous", max_sequences_contiguous},
                         {"admitted_contiguous", admitted_contiguous},
                         {"paged_over_contiguous", max_sequences_contiguous > 0
                              ? nlohmann::json(static_cast<double>(r.max_sequences_paged) / static_cast<double>(max_sequences_contiguous))
                              : nlohmann::json(nullptr)}});
  return {{"model", model},
          {"num_layers", num_layers},
          {"num_kv_heads", num_kv_heads},
          {"head_dim", head_dim},
          {"kv_dtype", std::string(dtype_name(kv_dtype))},
          {"block_size", block_size},
          {"bytes_per_token", bytes_per_token},
          {"bytes_per_block", bytes_per_block},
          {"weights_bytes", weights_bytes},
          {"kv_budget_bytes", kv_budget_bytes},
          {"num_blocks", num_blocks},
          {"max_num_seqs", max_num_seqs},
          {"max_model_len", max_model_len},
          {"blocks_per_sequence_contiguous", blocks_per_sequence_contiguous},
          {"max_sequences_contiguous", max_sequences_contiguous},
          {"admitted_contiguous", admitted_contiguous},
          {"contexts", rows_json}};
}

std::string KvMemoryPlan::to_text() const {
  std::string t = fmt::format("{}: {} layers × {} KV heads × head_dim {}, KV cache in {} ({} bytes)\n", model, num_layers,
                              num_kv_heads, head_dim, dtype_name(kv_dtype), dtype_size(kv_dtype));
  t += fmt::format("bytes per token: {} ({}) = {} × {} × {} × 2 (K, V) × {}\n", bytes_per_token,
                   format_bytes(static_cast<double>(bytes_per_token)), num_layers, num_kv_heads, head_dim, dtype_size(kv_dtype));
  t += fmt::format("bytes per block of {} tokens: {} ({})\n", block_size, bytes_per_block, format_bytes(static_cast<double>(bytes_per_block)));
  if (weights_bytes > 0) t += fmt::format("weights: {}\n", format_bytes(static_cast<double>(weights_bytes)));
  t += fmt::format("KV budget: {} → {} blocks ({} tokens)\n", format_bytes(static_cast<double>(kv_budget_bytes)), num_blocks,
                   num_blocks * block_size);
  t += fmt::format("contiguous reservation of max_model_len {} = {} blocks per sequence: at most {} sequences at any context "
                   "(admitted with max_num_seqs {}: {})\n\n", max_model_len, blocks_per_sequence_contiguous,
                   max_sequences_contiguous, max_num_seqs, admitted_contiguous);
  t += "| context | KV per sequence | blocks | max sequences, paged | admitted (max_num_seqs) | max sequences, contiguous | paged ÷ contiguous |\n";
  t += "|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows)
    t += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", r.context_len, format_bytes(static_cast<double>(r.bytes_per_sequence)),
                     r.blocks_per_sequence, r.max_sequences_paged, r.admitted_paged, max_sequences_contiguous,
                     max_sequences_contiguous > 0 ? fmt::format("{:.1f}×", static_cast<double>(r.max_sequences_paged) /
                                                                             static_cast<double>(max_sequences_contiguous))
                                                  : std::string("∞"));
  return t;
}

int64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw UsageError(fmt::format("{}: '{}' is not a size (examples: 80GiB, 141GB, 256MiB, 4096)", what, text));
  }
  std::string unit = text.substr(used);
  unit.erase(std::remove_if(unit.begin(), unit.end(), [](unsigned char c) { return std::isspace(c); }), unit.end());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "kib" || unit == "k") scale = 1024.0;
  else if (unit == "mib" || unit == "m") scale = 1024.0 * 1024;
  else if (unit == "gib" || unit == "g") scale = 1024.0 * 1024 * 1024;
  else if (unit == "tib" || unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb") scale = 1e3;
  else if (unit == "mb") scale = 1e6;
  else if (unit == "gb") scale = 1e9;
  else if (unit == "tb") scale = 1e12;
  else throw UsageError(fmt::format("{}: unknown unit '{}' in '{}' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", what, unit, text));
  const double bytes = value * scale;
  if (!(bytes >= 0) || bytes > 9e18) throw UsageError(fmt::format("{}: '{}' is out of range", what, text));
  return static_cast<int64_t>(std::llround(bytes));
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(bytes) >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace iol::report
