// The exact request list of a workload, written for other runners (the PyTorch baseline,
// docs/baseline.md): prompt ids, output lengths and, per sweep point, arrival times, so every
// engine of a comparison sees identical requests.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/bench/workload.hpp"

namespace iol::bench {

// Writes `path` (JSONL: a workload header line, then one line per request, warm-up first). The
// file is written beside `path` and renamed over it, so a reader never sees half of it.
void write_request_list(const std::string& path, const WorkloadSpec& spec, const std::vector<BenchRequest>& requests,
                        const nlohmann::json& header_extra);

}  // namespace iol::bench
