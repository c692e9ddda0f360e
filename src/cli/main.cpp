#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "src/cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lowbit: low-precision quantization of neural networks for FPGAs and CPUs"};
  app.set_version_flag("--version", std::string("lowbit ") + LOWBIT_VERSION);
  app.require_subcommand(1);
  lowbit::cli::add_format_command(app);
  lowbit::cli::add_sqnr_command(app);
  lowbit::cli::add_eval_command(app);
  lowbit::cli::add_run_command(app);
  lowbit::cli::add_bench_command(app);
  lowbit::cli::add_cost_command(app);
  lowbit::cli::add_llm_command(app);
  lowbit::cli::add_quantize_command(app);
  lowbit::cli::add_explore_command(app);
  lowbit::cli::add_report_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "lowbit: {}\n", e.what());
    return 1;
  }
  return 0;
}
