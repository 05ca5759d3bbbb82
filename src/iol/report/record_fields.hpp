// Reading result records (docs/results-schema.md) by JSON pointer without throwing: absent or
// null fields are "not measured", never zero.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace iol::report {

inline const nlohmann::json& field(const nlohmann::json& record, const char* pointer) {
  static const nlohmann::json kNull;
  nlohmann::json::json_pointer path(pointer);
  return record.contains(path) ? record[path] : kNull;
}

inline std::optional<double> number_field(const nlohmann::json& record, const char* pointer) {
  const nlohmann::json& v = field(record, pointer);
  return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt;
}

inline std::string string_field(const nlohmann::json& record, const char* pointer, const std::string& fallback = "?") {
  const nlohmann::json& v = field(record, pointer);
  return v.is_string() ? v.get<std::string>() : fallback;
}

// Records of one workload at one sweep point compare against each other: "default — offline".
inline std::string point_key(const nlohmann::json& record) {
  return string_field(record, "/workload/name") + " — " + string_field(record, "/workload/sweep/label");
}

// Records that measure the same thing (same workload, arrival mode, concurrency or rate, lengths),
// on the same GPU, whatever batch size a baseline chose: the PyTorch baseline's "offline-bs256" compares with
// iol's "offline".
inline std::string comparison_key(const nlohmann::json& record) {
  return string_field(record, "/workload/name") + "|" + string_field(record, "/workload/sweep/mode") + "|" +
         field(record, "/workload/sweep/concurrency").dump() + "|" + field(record, "/workload/sweep/request_rate").dump() +
         "|" + field(record, "/workload/input_len").dump() + "|" + field(record, "/workload/output_len").dump() + "|" +
         string_field(record, "/environment/gpu/name", "no GPU");  // an H100 run never compares with an H200 one
}

inline bool is_pytorch_baseline(const nlohmann::json& record) {
  return string_field(record, "/engine/runner", "").rfind("pytorch", 0) == 0;
}

// "iol (cuda)", "pytorch-eager (cuda)": who produced the record.
inline std::string engine_label(const nlohmann::json& record) {
  const std::string name = string_field(record, "/engine/name");
  const std::string runner = string_field(record, "/engine/runner", "");
  const std::string who = runner.rfind("pytorch", 0) == 0 ? runner : name;
  return who + " (" + string_field(record, "/engine/backend") + ")";
}

}  // namespace iol::report
