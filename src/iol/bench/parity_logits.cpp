#include "iol/bench/parity_logits.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "iol/core/error.hpp"

namespace iol::bench {

std::vector<float> prompt_logits(backend::Backend& backend, const std::vector<int32_t>& ids, int64_t max_rows_per_forward) {
  const int64_t vocab = backend.vocab_size();
  const int64_t block_size = backend.kv_cache_spec().shape.block_size;
  const int32_t n = static_cast<int32_t>(ids.size());
  const int32_t num_blocks = static_cast<int32_t>((n + block_size - 1) / block_size);
  if (num_blocks > backend.kv_cache_spec().shape.num_blocks)
    fail("a prompt of {} tokens needs {} KV blocks, the pool has {}", n, num_blocks, backend.kv_cache_spec().shape.num_blocks);
  std::vector<int32_t> positions(static_cast<size_t>(n)), block_table(static_cast<size_t>(num_blocks));
  std::vector<int64_t> slots(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 0);
  std::iota(block_table.begin(), block_table.end(), 0);
  std::iota(slots.begin(), slots.end(), int64_t{0});
  const std::vector<int32_t> query_start_loc = {0, n}, context_lens = {n};
  std::vector<float> logits(static_cast<size_t>(n) * static_cast<size_t>(vocab));
  // The whole prompt each time, the logits of one slice of positions per forward.
  for (int32_t first = 0; first < n; first += static_cast<int32_t>(max_rows_per_forward)) {
    const int32_t rows = std::min<int32_t>(n - first, static_cast<int32_t>(max_rows_per_forward));
    std::vector<int32_t> wanted(static_cast<size_t>(rows));
    std::iota(wanted.begin(), wanted.end(), first);
    backend::ForwardBatch batch{.token_ids = ids,
                                .positions = positions,
                                .slot_mapping = slots,
                                .query_start_loc = query_start_loc,
                                .context_lens = context_lens,
                                .block_tables = block_table,
                                .max_blocks_per_seq = num_blocks,
                                .logits_indices = wanted};
    backend.compute_logits(batch, std::span<float>(logits).subspan(static_cast<size_t>(first) * static_cast<size_t>(vocab),
                                                                   static_cast<size_t>(rows) * static_cast<size_t>(vocab)));
  }
  return logits;
}

void write_parity_logits(backend::Backend& backend, const std::vector<BenchRequest>& requests, size_t num_requests,
                         int64_t max_rows_per_forward, const std::string& path) {
  const int64_t vocab = backend.vocab_size();
  const size_t count = std::min(num_requests, requests.size());
  const std::filesystem::path target(path);
  if (!target.parent_path().empty()) std::filesystem::create_directories(target.parent_path());
  const std::string temporary = path + ".partial";
  std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot open for writing (--parity-logits)", temporary);
  nlohmann::json lengths = nlohmann::json::array();
  for (size_t r = 0; r < count; ++r) {
    const std::vector<int32_t>& ids = requests[r].prompt_ids;
    const int32_t n = static_cast<int32_t>(ids.size());
    std::vector<float> logits;
    try {
      logits = prompt_logits(backend, ids, max_rows_per_forward);
    } catch (const Error& e) {
      fail("--parity-logits: {}", e.what());
    }
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    lengths.push_back(n);
  }
  if (!out.flush()) fail("{}: write failed (--parity-logits)", temporary);
  out.close();
  std::error_code error;
  std::filesystem::rename(temporary, target, error);
  if (error) fail("{}: cannot rename to {}: {}", temporary, path, error.message());
  std::ofstream meta(path + ".json", std::ios::trunc);
  meta << nlohmann::json{{"dtype", "float32"}, {"layout", "[positions][vocab]"}, {"vocab_size", vocab},
                         {"prompt_lengths", lengths}, {"num_requests", count}}
              .dump()
       << "\n";
  if (!meta) fail("{}.json: write failed (--parity-logits)", path);
}

}  // namespace iol::bench
