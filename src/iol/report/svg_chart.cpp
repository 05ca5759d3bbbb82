#include "iol/report/svg_chart.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace iol::report {

namespace {

constexpr double kWidth = 760, kHeight = 320, kLeft = 70, kRight = 180, kTop = 34, kBottom = 56;
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                "#bcbd22", "#17becf"};

const char* color(size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

// A "nice" axis maximum and tick step covering [0, max].
std::pair<double, double> nice_axis(double max) {
  if (!(max > 0)) return {1, 0.25};
  const double raw = max / 4, magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  return {step * std::ceil(max / step), step};
}

std::string frame(const std::string& title, const std::string& x_label, const std::string& y_label, double y_max, double y_step) {
  std::string s = fmt::format(
      "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"{2}\">\n<text x=\"{3}\" y=\"20\" class=\"title\">{2}</text>\n",
      kWidth, kHeight, html_escape(title), kLeft);
  const double plot_h = kHeight - kTop - kBottom;
  for (double v = 0; v <= y_max * 1.0000001; v += y_step) {
    const double y = kTop + plot_h * (1 - v / y_max);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1f}\" class=\"tick\" "
                     "text-anchor=\"end\">{}</text>\n", kLeft, y, kWidth - kRight, y, kLeft - 6, y + 4, format_value(v));
  }
  s += fmt::format("<text x=\"{:.0f}\" y=\"{:.0f}\" class=\"axis\" text-anchor=\"middle\">{}</text>\n", kLeft + (kWidth - kLeft - kRight) / 2,
                   kHeight - 8, html_escape(x_label));
  s += fmt::format("<text x=\"14\" y=\"{:.0f}\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.0f})\">{}</text>\n",
                   kTop + plot_h / 2, kTop + plot_h / 2, html_escape(y_label));
  return s;
}

std::string legend(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i)
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" class=\"legend\">{}</text>\n",
                     kWidth - kRight + 12, kTop + 16 * i, color(i), kWidth - kRight + 26, kTop + 16 * i + 9, html_escape(names[i]));
  return s;
}

std::string mark_title(const std::string& series, const std::string& run_id, double value) {
  return fmt::format("<title>{}: {} (record {})</title>", html_escape(series), format_value(value), html_escape(run_id));
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  const double a = std::abs(v);
  if (a >= 1000) {
    std::string digits = fmt::format("{:.0f}", a), grouped;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
      grouped += digits[i];
    }
    return (v < 0 ? "-" : "") + grouped;
  }
  if (a >= 100 || (a >= 1 && v == std::round(v))) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  if (a == 0) return "0";
  return fmt::format("{:.4f}", v);
}

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<ChartSeries>& series, bool log_x) {
  double x_min = INFINITY, x_max = -INFINITY, y_top = 0;
  auto tx = [&](double x) { return log_x ? std::log2(std::max(x, 1e-9)) : x; };
  for (const auto& s : series)
    for (const auto& p : s.points) {
      x_min = std::min(x_min, tx(p.x));
      x_max = std::max(x_max, tx(p.x));
      y_top = std::max(y_top, p.y);
    }
  if (!(x_max > x_min)) {
    x_min -= 1;
    x_max += 1;
  }
  const auto [y_max, y_step] = nice_axis(y_top);
  std::string svg = frame(title, x_label, y_label, y_max, y_step);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + plot_w * (tx(x) - x_min) / (x_max - x_min); };
  auto py = [&](double y) { return kTop + plot_h * (1 - y / y_max); };
  // x ticks at the data's own x values.
  std::vector<double> xs;
  for (const auto& s : series)
    for (const auto& p : s.points) xs.push_back(p.x);
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double x : xs)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.0f}\" class=\"tick\" text-anchor=\"middle\">{}</text>\n", px(x), kHeight - kBottom + 16,
                       format_value(x));
  std::vector<std::string> names;
  for (size_t i = 0; i < series.size(); ++i) {
    names.push_back(series[i].name);
    std::vector<ChartPoint> points = series[i].points;
    std::sort(points.begin(), points.end(), [](const ChartPoint& a, const ChartPoint& b) { return a.x < b.x; });
    svg += fmt::format("<g class=\"series\" data-series=\"{}\">", html_escape(series[i].name));
    std::string path;
    for (const auto& p : points) path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(p.x), py(p.y));
    if (points.size() > 1) svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>", path, color(i));
    for (const auto& p : points)
      svg += fmt::format("<circle class=\"mark\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\" data-run-id=\"{}\" data-value=\"{}\">{}</circle>",
                         px(p.x), py(p.y), color(i), html_escape(p.run_id), p.y, mark_title(series[i].name, p.run_id, p.y));
    svg += "</g>\n";
  }
  return svg + legend(names) + "</svg>\n";
}

std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& series_names,
                      const std::vector<BarGroup>& groups) {
  double y_top = 0;
  for (const auto& g : groups)
    for (const auto& b : g.bars)
      if (b) y_top = std::max(y_top, b->value);
  const auto [y_max, y_step] = nice_axis(y_top);
  std::string svg = frame(title, "", y_label, y_max, y_step);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const double group_w = plot_w / std::max<size_t>(groups.size(), 1);
  const double bar_w = group_w * 0.8 / std::max<size_t>(series_names.size(), 1);
  for (size_t g = 0; g < groups.size(); ++g) {
    const double x0 = kLeft + g * group_w + group_w * 0.1;
    std::string label = groups[g].category.size() > 28 ? groups[g].category.substr(0, 27) + "…" : groups[g].category;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.0f}\" class=\"tick\" text-anchor=\"middle\">{}<title>{}</title></text>\n",
                       x0 + group_w * 0.4, kHeight - kBottom + 16, html_escape(label), html_escape(groups[g].category));
  }
  for (size_t s = 0; s < series_names.size(); ++s) {
    svg += fmt::format("<g class=\"series\" data-series=\"{}\">", html_escape(series_names[s]));
    for (size_t g = 0; g < groups.size(); ++g) {
      if (s >= groups[g].bars.size() || !groups[g].bars[s]) continue;
      const Bar& b = *groups[g].bars[s];
      const double h = plot_h * b.value / y_max;
      svg += fmt::format("<rect class=\"mark\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" data-run-id=\"{}\" "
                         "data-value=\"{}\">{}</rect>", kLeft + g * group_w + group_w * 0.1 + s * bar_w, kTop + plot_h - h,
                         std::max(bar_w - 1, 1.0), std::max(h, 0.5), color(s), html_escape(b.run_id), b.value,
                         mark_title(series_names[s], b.run_id, b.value));
    }
    svg += "</g>\n";
  }
  return svg + legend(series_names) + "</svg>\n";
}

std::string waterfall_chart(const std::string& title, const std::string& y_label, const std::vector<WaterfallStep>& steps) {
  double y_top = 0;
  for (const auto& s : steps) y_top = std::max({y_top, s.from, s.to});
  const auto [y_max, y_step] = nice_axis(y_top);
  std::string svg = frame(title, "", y_label, y_max, y_step);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const double w = plot_w / std::max<size_t>(steps.size(), 1);
  auto py = [&](double y) { return kTop + plot_h * (1 - y / y_max); };
  svg += "<g class=\"series\" data-series=\"steps\">";
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& s = steps[i];
    const double lo = s.total ? 0 : std::min(s.from, s.to), hi = s.total ? s.to : std::max(s.from, s.to);
    const char* fill = s.total ? "#4c72b0" : (s.to >= s.from ? "#2ca02c" : "#d62728");
    svg += fmt::format("<rect class=\"mark\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" data-run-id=\"{}\" "
                       "data-value=\"{}\">{}</rect>", kLeft + i * w + w * 0.15, py(hi), w * 0.7, std::max(py(lo) - py(hi), 0.5), fill,
                       html_escape(s.run_id), s.to, mark_title(s.label, s.run_id, s.to));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"middle\">{}</text>", kLeft + i * w + w * 0.5, py(hi) - 4,
                       s.total ? format_value(s.to) : fmt::format("{}{:.0f}%", s.to >= s.from ? "+" : "", s.from > 0 ? 100 * (s.to - s.from) / s.from : 0));
    std::string label = s.label.size() > 18 ? s.label.substr(0, 17) + "…" : s.label;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.0f}\" class=\"tick\" text-anchor=\"middle\">{}<title>{}</title></text>\n",
                       kLeft + i * w + w * 0.5, kHeight - kBottom + 16, html_escape(label), html_escape(s.label));
  }
  svg += "</g>\n";
  return svg + "</svg>\n";
}

}  // namespace iol::report
