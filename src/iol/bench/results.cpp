#include "iol/bench/results.hpp"

#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "iol/core/error.hpp"

namespace iol::bench {

void append_jsonl(const std::string& path, const nlohmann::json& record) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::app);
  if (!out) fail("{}: cannot open for appending", path);
  out << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  if (!out) fail("{}: write failed", path);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open results file", path);
  std::vector<nlohmann::json> records;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) fail("{}:{}: not a JSON object", path, number);
    records.push_back(std::move(record));
  }
  return records;
}

void append_request_traces(const std::string& path, const std::string& run_id, const std::vector<RequestTrace>& traces) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::app);
  if (!out) fail("{}: cannot open for appending", path);
  for (const auto& t : traces) {
    nlohmann::json line = {{"run_id", run_id}, {"index", t.index}, {"warmup", t.warmup},
                           {"status", request_status_name(t.status)}, {"error", t.error},
                           {"input_tokens", t.input_tokens}, {"output_tokens", t.output_tokens},
                           {"arrival", t.arrival}, {"first_token", t.first_token}, {"finished", t.finished},
                           {"token_times", t.token_times}, {"cached_prompt_tokens", t.cached_prompt_tokens},
                           {"preemptions", t.preemptions}};
    out << line.dump() << "\n";
  }
}

nlohmann::json process_stats() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return {{"cpu_user_s", seconds(usage.ru_utime)},
          {"cpu_system_s", seconds(usage.ru_stime)},
          {"peak_rss_bytes", static_cast<int64_t>(usage.ru_maxrss) * 1024}};
}

}  // namespace iol::bench
