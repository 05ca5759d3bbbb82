// iol report: result records (.jsonl) → Markdown report.
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "iol/bench/results.hpp"
#include "iol/cli/commands.hpp"
#include "iol/core/error.hpp"
#include "iol/report/markdown_report.hpp"

namespace iol::cli {

namespace {
struct ReportOptions {
  std::string results;
  std::string baseline;
  std::string out;
};

void run_report(const ReportOptions& o) {
  std::string markdown = report::markdown_report(bench::read_jsonl(o.results), o.baseline);
  std::string out = o.out.empty() ? (std::filesystem::path(o.results).parent_path() / "report.md").string() : o.out;
  std::ofstream file(out, std::ios::trunc);
  if (!file) fail("{}: cannot write report", out);
  file << markdown;
  fmt::print(stderr, "iol report: wrote {}\n", out);
}
}  // namespace

void add_report_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* command = app.add_subcommand("report", "Render result records (.jsonl) as a Markdown report");
  command->footer("Examples:\n  iol report reports/results.jsonl\n  iol report reports/results.jsonl --baseline RUN_ID --out report.md");
  command->add_option("results", options->results, "Results file written by iol bench")->required();
  command->add_option("--baseline", options->baseline, "Run id whose row the ratios compare against (default: each table's first)");
  command->add_option("--out", options->out, "Report path (default: report.md beside the results)");
  command->callback([options, &runner] { runner = [options] { run_report(*options); }; });
}

}  // namespace iol::cli
