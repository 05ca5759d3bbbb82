#include "iol/bench/request_list.hpp"

#include <filesystem>
#include <fstream>

#include "iol/core/error.hpp"

namespace iol::bench {

void write_request_list(const std::string& path, const WorkloadSpec& spec, const std::vector<BenchRequest>& requests,
                        const nlohmann::json& header_extra) {
  int64_t measured = 0;
  for (const auto& r : requests) measured += r.warmup ? 0 : 1;
  nlohmann::json points = nlohmann::json::array();
  for (const SweepPoint& point : sweep_points(spec)) {
    nlohmann::json arrivals = nullptr;
    // The in-process runner's arrival offsets for the measured requests (runner.cpp).
    if (point.mode == ArrivalMode::Poisson)
      arrivals = gamma_arrival_times(measured, point.request_rate, spec.burstiness, spec.seed);
    points.push_back({{"mode", arrival_mode_name(point.mode)},
                      {"concurrency", point.mode == ArrivalMode::Closed ? nlohmann::json(point.concurrency) : nlohmann::json(nullptr)},
                      {"request_rate", point.mode == ArrivalMode::Poisson ? nlohmann::json(point.request_rate) : nlohmann::json(nullptr)},
                      {"label", point.label()},
                      {"arrival_s", arrivals}});
  }
  nlohmann::json header = header_extra;
  header["kind"] = "workload";
  header["workload"] = spec.to_json();
  header["sweep_points"] = points;

  const std::filesystem::path target(path);
  if (!target.parent_path().empty()) std::filesystem::create_directories(target.parent_path());
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) fail("{}: cannot open for writing (--export-requests)", temporary);
    out << header.dump() << "\n";
    for (size_t i = 0; i < requests.size(); ++i) {
      const BenchRequest& r = requests[i];
      out << nlohmann::json{{"kind", "request"}, {"index", i}, {"warmup", r.warmup}, {"prompt_token_ids", r.prompt_ids},
                            {"output_len", r.output_len}, {"ignore_eos", spec.ignore_eos}}
                 .dump()
          << "\n";
    }
    if (!out.flush()) fail("{}: write failed (--export-requests)", temporary);
  }
  std::error_code error;
  std::filesystem::rename(temporary, target, error);
  if (error) fail("{}: cannot rename to {}: {}", temporary, path, error.message());
}

}  // namespace iol::bench
