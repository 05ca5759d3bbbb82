#include "iol/report/ablation_view.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "iol/report/record_fields.hpp"

namespace iol::report {

const AblationStep* AblationView::find(const std::string& step) const {
  for (const auto& s : steps)
    if (s.step == step) return &s;
  return nullptr;
}

std::vector<AblationView> ablation_views(const std::vector<nlohmann::json>& records) {
  std::vector<AblationView> views;
  std::map<std::string, std::vector<std::pair<int64_t, AblationStep>>> ordered;
  for (const auto& r : records) {
    const nlohmann::json& a = field(r, "/ablation");
    if (!a.is_object()) continue;
    // One view per ablation id and sweep point.
    const std::string key = a.value("id", "?") + " | " + point_key(r);
    auto it = std::find_if(views.begin(), views.end(), [&](const AblationView& v) { return v.id + " | " + v.point == key; });
    if (it == views.end()) {
      views.push_back({a.value("id", "?"), point_key(r), {}, {}});
      it = views.end() - 1;
      if (a.contains("skipped") && a["skipped"].is_array())
        for (const auto& s : a["skipped"]) it->skipped.emplace_back(s.value("lever", "?"), s.value("reason", "?"));
    }
    AblationStep step;
    step.step = a.value("step", "?");
    step.lever = a.contains("lever") && a["lever"].is_string() ? a["lever"].get<std::string>() : "";
    step.run_id = string_field(r, "/run_id");
    step.output_throughput = number_field(r, "/metrics/output_throughput").value_or(0);
    step.tpot_p50_ms = number_field(r, "/metrics/tpot_ms/median");
    step.ttft_p50_ms = number_field(r, "/metrics/ttft_ms/median");
    ordered[key].emplace_back(a.value("order", int64_t{0}), step);
  }
  for (auto& v : views) {
    auto& steps = ordered[v.id + " | " + v.point];
    std::stable_sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& s : steps) v.steps.push_back(s.second);
  }
  return views;
}

std::string ablation_markdown(const std::vector<AblationView>& views) {
  std::string md;
  for (const auto& v : views) {
    md += fmt::format("### Ablation {} ({})\n\nEach lever is turned on alone over \"all off\"; \"all on\" has every available lever.\n\n",
                      v.id, v.point);
    md += "| step | run | output tok/s | vs all off | TTFT p50 ms | TPOT p50 ms |\n|---|---|---|---|---|---|\n";
    const AblationStep* off = v.find("all-off");
    for (const auto& s : v.steps)
      md += fmt::format("| {} | {} | {:.1f} | {} | {} | {} |\n", s.step, s.run_id, s.output_throughput,
                        off && off->output_throughput > 0 ? fmt::format("{:.2f}×", s.output_throughput / off->output_throughput) : "–",
                        s.ttft_p50_ms ? fmt::format("{:.1f}", *s.ttft_p50_ms) : "–", s.tpot_p50_ms ? fmt::format("{:.2f}", *s.tpot_p50_ms) : "–");
    if (!v.skipped.empty()) {
      md += "\nSkipped levers:\n\n";
      for (const auto& [lever, reason] : v.skipped) md += fmt::format("- {}: {}\n", lever, reason);
    }
    md += "\n";
  }
  return md;
}

}  // namespace iol::report
