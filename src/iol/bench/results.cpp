#include "iol/bench/results.hpp"

#include <sys/resource.h>

#include "iol/core/error.hpp"
#include "iol/core/json_file.hpp"

namespace iol::bench {

void append_jsonl(const std::string& path, const nlohmann::json& record) { JsonlAppender(path).append(record); }

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  const std::string text = read_text_file(path);
  std::vector<nlohmann::json> records;
  size_t begin = 0;
  for (int number = 1; begin < text.size(); ++number) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto record = parse_json_or_discarded(line, fmt::format("{}:{}", path, number));
    if (record.is_discarded() || !record.is_object())
      fail("{}:{}: not a JSON object{}", path, number,
           end == text.size() && text.back() != '\n' ? " (an incomplete last line: an interrupted write?)" : "");
    records.push_back(std::move(record));
  }
  return records;
}

void append_request_traces(JsonlAppender& out, const std::string& run_id, const std::vector<RequestTrace>& traces) {
  std::vector<nlohmann::json> lines;
  for (const auto& t : traces) {
    nlohmann::json line = {{"run_id", run_id}, {"index", t.index}, {"warmup", t.warmup},
                           {"status", request_status_name(t.status)}, {"error", t.error},
                           {"input_tokens", t.input_tokens}, {"output_tokens", t.output_tokens},
                           {"arrival", t.arrival}, {"first_token", t.first_token}, {"finished", t.finished},
                           {"token_times", t.token_times}, {"cached_prompt_tokens", t.cached_prompt_tokens},
                           {"preemptions", t.preemptions}};
    lines.push_back(std::move(line));
  }
  out.append(lines);
}

void append_request_traces(const std::string& path, const std::string& run_id, const std::vector<RequestTrace>& traces) {
  JsonlAppender out(path);
  append_request_traces(out, run_id, traces);
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
