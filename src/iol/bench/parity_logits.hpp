// Teacher-forced next-token logits of the first requests of a workload, for the parity gate
// against another engine (docs/baseline.md): each prompt prefilled alone, the fp32 logits of
// every position written as raw little-endian float32 [sum of prompt lengths][vocab].
#pragma once
#include <string>
#include <vector>

#include "iol/backend/backend.hpp"
#include "iol/bench/workload.hpp"

namespace iol::bench {

// The fp32 next-token logits of every position of `ids` prefilled alone on a fresh sequence (KV
// blocks 0, 1, ... of the backend's pool), at most max_rows_per_forward rows per forward:
// [ids.size()][vocab]. Throws when the pool cannot hold the prompt.
std::vector<float> prompt_logits(backend::Backend& backend, const std::vector<int32_t>& ids, int64_t max_rows_per_forward);

// Writes `path` (and `path`.json with the prompt lengths and vocabulary size) for the first
// `num_requests` requests, warm-up ones included, in request order. Uses KV blocks 0, 1, ...
// of the backend's pool, so it runs before the engine does.
void write_parity_logits(backend::Backend& backend, const std::vector<BenchRequest>& requests, size_t num_requests,
                         int64_t max_rows_per_forward, const std::string& path);

}  // namespace iol::bench
