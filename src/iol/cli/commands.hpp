// The iol subcommands: each registers its options on the CLI11 app and returns its runner.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace iol::cli {

using CommandRunner = std::function<void()>;

void add_generate_command(CLI::App& app, CommandRunner& runner);
void add_model_command(CLI::App& app, CommandRunner& runner);
void add_bench_command(CLI::App& app, CommandRunner& runner);
void add_report_command(CLI::App& app, CommandRunner& runner);
void add_tokenize_command(CLI::App& app, CommandRunner& runner);
void add_kv_command(CLI::App& app, CommandRunner& runner);
void add_cost_command(CLI::App& app, CommandRunner& runner);
void add_serve_command(CLI::App& app, CommandRunner& runner);
void add_eval_command(CLI::App& app, CommandRunner& runner);

}  // namespace iol::cli
