// Result records: one JSON object per run (or sweep point), appended to a .jsonl file, with a
// versioned schema (docs/results-schema.md, bench/schema/results.schema.json). Raw per-token
// timestamps go to a side file so any metric can be recomputed.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iol/bench/metrics.hpp"
#include "iol/bench/results_file.hpp"

namespace iol::bench {

inline constexpr int kResultsSchemaVersion = 1;

// Appends one line through a JsonlAppender (checked, whole lines only).
void append_jsonl(const std::string& path, const nlohmann::json& record);
// Reads every record; errors name the file and line.
std::vector<nlohmann::json> read_jsonl(const std::string& path);
// One line per request: {run_id, index, warmup, status, arrival, first_token, finished, token_times}.
void append_request_traces(JsonlAppender& out, const std::string& run_id, const std::vector<RequestTrace>& traces);
void append_request_traces(const std::string& path, const std::string& run_id, const std::vector<RequestTrace>& traces);

// Process CPU time and peak resident memory (getrusage).
nlohmann::json process_stats();

}  // namespace iol::bench
