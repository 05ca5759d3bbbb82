#include "iol/engine/engine_config.hpp"

#include <fmt/format.h>

#include "iol/core/checked_math.hpp"
#include "iol/core/error.hpp"

namespace iol::engine {

void EngineConfig::validate() const {
  if (num_kv_blocks <= 0) fail("engine: the KV cache has no blocks (raise --kv-cache-memory)");
  if (block_size <= 0) fail("engine: block_size must be positive (got {})", block_size);
  if (max_num_seqs <= 0) fail("engine: max_num_seqs must be positive (got {})", max_num_seqs);
  if (max_num_batched_tokens <= 0) fail("engine: max_num_batched_tokens must be positive (got {})", max_num_batched_tokens);
  if (max_model_len <= 0) fail("engine: max_model_len must be positive (got {})", max_model_len);
  if (kv_layout == KvLayout::Contiguous && ceil_div(max_model_len, block_size) > num_kv_blocks)
    fail("engine: contiguous KV layout reserves max_model_len {} tokens per sequence, but the pool holds only {} "
         "tokens", max_model_len, num_kv_blocks * block_size);
}

const char* batching_mode_name(BatchingMode mode) { return mode == BatchingMode::Static ? "static" : "inflight"; }
const char* kv_layout_name(KvLayout layout) { return layout == KvLayout::Contiguous ? "contiguous" : "paged"; }

BatchingMode parse_batching_mode(const std::string& text) {
  if (text == "inflight") return BatchingMode::InFlight;
  if (text == "static") return BatchingMode::Static;
  throw UsageError(fmt::format("--batching must be inflight or static (got '{}')", text));
}

KvLayout parse_kv_layout(const std::string& text) {
  if (text == "paged") return KvLayout::Paged;
  if (text == "contiguous") return KvLayout::Contiguous;
  throw UsageError(fmt::format("--kv-layout must be paged or contiguous (got '{}')", text));
}

}  // namespace iol::engine
