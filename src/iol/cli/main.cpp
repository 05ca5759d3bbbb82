// iol: command-line entry point. Errors print one line; exit code 2 for usage, 1 for runtime.
#include <cstdio>
#include <new>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "iol/cli/commands.hpp"
#include "iol/cli/interrupt.hpp"
#include "iol/core/error.hpp"
#include "iol/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{"iol — Inference-Optim-LLM: an LLM inference engine and benchmark bench.", "iol"};
  app.set_version_flag("--version", std::string(iol::kVersion));
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  iol model create --preset tiny --out models/tiny\n"
      "  iol generate --model models/tiny --prompt-ids 256,72,105 --max-tokens 16 --temperature 0\n"
      "  iol generate --preset llama-3.1-8b --load-format dummy --prompt-ids 1,2,3 --output-ids\n"
      "  iol bench --preset tiny --scenario bench/scenarios/default-cpu.yaml && iol report reports/results.jsonl\n"
      "  iol serve --model models/tiny --port 8000   # OpenAI-compatible HTTP server (docs/server.md)\n"
      "Run 'iol SUBCOMMAND --help' for each subcommand's options.");
  iol::cli::CommandRunner runner;
  iol::cli::add_generate_command(app, runner);
  iol::cli::add_model_command(app, runner);
  iol::cli::add_bench_command(app, runner);
  iol::cli::add_report_command(app, runner);
  iol::cli::add_tokenize_command(app, runner);
  iol::cli::add_kv_command(app, runner);
  iol::cli::add_cost_command(app, runner);
  iol::cli::add_eval_command(app, runner);
  iol::cli::add_serve_command(app, runner);
  auto is_subcommand = [&](const char* name) {
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->get_name() == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_subcommand(argv[1])) {
    fmt::print(stderr, "iol: error: unknown subcommand '{}' (see --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "iol: error: {} (see --help)\n", e.what());
    return 2;
  }
  try {
    runner();
  } catch (const iol::cli::Interrupted& e) {
    return 128 + e.signal();  // the message was printed where the run was recorded
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "iol: error: out of memory; lower --kv-cache-memory, --max-num-seqs or "
               "--max-num-batched-tokens, or use a smaller model\n");
    return 1;
  } catch (const iol::UsageError& e) {
    fmt::print(stderr, "iol: error: {} (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "iol: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
