// `lowbit report RESULTS.db -o DIR`: CSV, SVG / PNG plots of each Pareto front and an interactive
// HTML page from an exploration's results store; prints the Pareto-optimal points.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "lowbit/report/report.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {

void add_report_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "report of an exploration: points.csv, Pareto plots (SVG, PNG) and an interactive report.html");
  auto store = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  cmd->add_option("store", *store, "results store written by `lowbit explore` (SQLite)")->required();
  cmd->add_option("-o,--output", *dir, "folder for the report (created when missing)")->required();
  cmd->callback([store, dir] {
    const report::ReportData data = report::load_report_data(*store);
    const report::ReportFiles files = report::write_report(data, *dir);
    std::fputs(report::format_fronts(data).c_str(), stdout);
    fmt::print("report of {} points written to {}: report.html, points.csv, pareto_*.svg, pareto_*.png\n", data.points.size(),
               files.dir.string());
    fmt::print("open {}\n", std::filesystem::absolute(files.html).string());
  });
}

}  // namespace lowbit::cli
