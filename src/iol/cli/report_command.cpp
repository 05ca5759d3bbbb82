// iol report: result records (.jsonl) → Markdown report.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "iol/bench/results.hpp"
#include "iol/cli/commands.hpp"
#include "iol/cli/output_file.hpp"
#include "iol/core/error.hpp"
#include "iol/core/same_file.hpp"
#include "iol/report/markdown_report.hpp"

namespace iol::cli {

namespace {
struct ReportOptions {
  std::string results;
  std::string baseline;
  std::string out;
};

void run_report(const ReportOptions& o) {
  const std::string out =
      o.out.empty() ? (std::filesystem::path(o.results).parent_path() / "report.md").string() : o.out;
  // Never over an input, nor over another results file: a report is derived, records are not.
  if (same_file(out, o.results))
    throw UsageError(fmt::format("the report {} would overwrite the results it reads; pass --out OTHER.md", out));
  refuse_results_file(out, "--out");
  std::string markdown = report::markdown_report(bench::read_jsonl(o.results), o.baseline);
  write_file_atomically(out, markdown);
  fmt::print(stderr, "iol report: wrote {}\n", out);
}
}  // namespace

void add_report_command(CLI::App& app, CommandRunner& runner) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* command = app.add_subcommand("report", "Render result records (.jsonl) as a Markdown report");
  command->footer("Examples:\n  iol report reports/results.jsonl\n  iol report reports/results.jsonl --baseline RUN_ID --out report.md");
  command->add_option("results", options->results, "Results file written by iol bench")->required();
  command->add_option("--baseline", options->baseline, "Run id whose row the ratios compare against (default: each table's first)");
  command->add_option("--out", options->out, "Report path (default: report.md beside the results; never a results file)");
  command->callback([options, &runner] { runner = [options] { run_report(*options); }; });
}

}  // namespace iol::cli
