// iol report: result records (.jsonl) → Markdown report (default) or one self-contained HTML page
// (--html); both carry the lever ablation and the cost model (report/).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "iol/bench/results.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/output_file.hpp"
#include "iol/core/error.hpp"
#include "iol/core/same_file.hpp"
#include "iol/report/ablation_view.hpp"
#include "iol/report/cost_model.hpp"
#include "iol/report/html_report.hpp"
#include "iol/report/markdown_report.hpp"

namespace iol::cli {

namespace {
struct ReportOptions {
  std::vector<std::string> results;
  std::string baseline;
  std::string out;
  std::string prices;
  bool html = false;
};

void run_report(const ReportOptions& o) {
  std::vector<nlohmann::json> records;
  for (const auto& path : o.results) {
    auto more = bench::read_jsonl(path);
    records.insert(records.end(), more.begin(), more.end());
  }
  const report::PriceTable prices = report::load_price_table(o.prices);
  const std::string name = o.html ? "report.html" : "report.md";
  const std::string out = o.out.empty() ? (std::filesystem::path(o.results.front()).parent_path() / name).string() : o.out;
  // Never over an input, nor over another results file: a report is derived, records are not.
  for (const auto& path : o.results)
    if (same_file(out, path))
      throw UsageError(fmt::format("the report {} would overwrite the results it reads; pass --out OTHER", out));
  refuse_results_file(out, "--out");
  std::string text;
  if (o.html) {
    text = report::html_report(records, prices, {o.baseline, fmt::format("{}", fmt::join(o.results, ", "))});
  } else {
    text = report::markdown_report(records, o.baseline);
    const auto views = report::ablation_views(records);
    if (!views.empty()) text += "\n## Lever ablation\n\n" + report::ablation_markdown(views);
    text += "\n## Cost\n\n" + report::cost_markdown(report::cost_table(prices, records, "", report::Traffic{}, o.baseline), prices);
  }
  write_file_atomically(out, text);
  fmt::print(stderr, "iol report: wrote {}\n", out);
}
}  // namespace

void add_report_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* command = app.add_subcommand("report", "Render result records (.jsonl) as a Markdown or HTML report");
  command->footer(
      "Examples:\n  iol report reports/results.jsonl\n  iol report reports/results.jsonl --html            # reports/report.html\n"
      "  iol report bench/results/h200/*.jsonl --html --out h200.html\n"
      "  iol report reports/results.jsonl --baseline RUN_ID --out report.md");
  command->add_option("results", options->results, "Results files written by iol bench or the PyTorch baseline")->required();
  command->add_option("--baseline", options->baseline, "Run id whose row the ratios compare against (default: each table's first)");
  command->add_option("--out", options->out,
                      "Report path (default: report.md or report.html beside the first results file; never a results file)");
  command->add_option("--prices", options->prices, "YAML overriding the cost model's default prices (iol cost --print-prices)");
  command->add_flag("--html", options->html, "Write one self-contained HTML page with SVG charts instead of Markdown");
  command->callback([options, &runner] { runner = [options] { run_report(*options); }; });
}

}  // namespace iol::cli
