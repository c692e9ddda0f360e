#pragma once
// `lowbit report RESULTS.db -o DIR`: everything the report writes, from one ReportData.
//   DIR/points.csv            every point, every field, on_front_<axis> per cost axis
//   DIR/pareto_<axis>.svg/png the scatter of each cost axis
//   DIR/report.html           the interactive page
#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/report/report_data.hpp"

namespace lowbit::report {

struct ReportFiles {
  std::filesystem::path dir, csv, html;
  std::vector<std::filesystem::path> svgs, pngs;  // one per cost axis
};

// Creates `dir` when missing and writes every file; throws naming the file that cannot be written.
ReportFiles write_report(const ReportData& data, const std::filesystem::path& dir);

// The Pareto-optimal points of each axis, one line each: formats, technique, top-1, cost.
std::string format_fronts(const ReportData& data);

}  // namespace lowbit::report
