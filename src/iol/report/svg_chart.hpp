// Charts as inline SVG written here (no script, no library, nothing fetched when the page opens).
// Every mark carries the record it comes from: data-run-id, data-value and a <title> tooltip, so
// each plotted number traces to a record id; each series is a <g class="series"> for tests.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace iol::report {

struct ChartPoint {
  double x = 0, y = 0;
  std::string run_id;
};
struct ChartSeries {
  std::string name;
  std::vector<ChartPoint> points;
};
// Lines with markers; x on a log2 scale when `log_x` (concurrency 1, 2, 4, …).
std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<ChartSeries>& series, bool log_x);

struct Bar {
  double value = 0;
  std::string run_id;
};
struct BarGroup {
  std::string category;
  std::vector<std::optional<Bar>> bars;  // one per series name, absent = not measured
};
std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& series_names,
                      const std::vector<BarGroup>& groups);

// Floating bars from `from` to `to`; totals are drawn from zero.
struct WaterfallStep {
  std::string label;
  double from = 0, to = 0;
  bool total = false;
  std::string run_id;
};
std::string waterfall_chart(const std::string& title, const std::string& y_label, const std::vector<WaterfallStep>& steps);

std::string html_escape(const std::string& text);
// 15613.79 → "15,614"; 0.046 → "0.0460": the figure shown for a value.
std::string format_value(double value);

}  // namespace iol::report
