#pragma once
#include <CLI/CLI.hpp>

namespace lowbit::cli {

// Each verb registers its subcommand and returns nothing; the callback runs it.
void add_format_command(CLI::App& app);
void add_sqnr_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_cost_command(CLI::App& app);
void add_llm_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_explore_command(CLI::App& app);
void add_report_command(CLI::App& app);

}  // namespace lowbit::cli
