#pragma once
// What every output of `lowbit report` is drawn from: the store's points, their format families and
// their Pareto front on each cost axis. The report is a pure function of this.
#include <string>
#include <vector>

#include "lowbit/dse/pareto.hpp"
#include "lowbit/dse/store.hpp"
#include "lowbit/report/family.hpp"

namespace lowbit::report {

struct AxisFront {
  dse::CostAxis axis;
  std::vector<bool> on_front;     // per point
  std::vector<size_t> front;      // the front's points, by increasing cost (then top-1)
  std::vector<double> cost;       // per point, axis.value(point)
};

struct ReportData {
  std::vector<dse::PointResult> points;  // in the store's order
  std::vector<FormatFamily> families;    // of each point's weight format
  std::vector<AxisFront> fronts;         // one per dse::cost_axes(), in that order
  std::string model;                     // the models' file names, for titles
  std::string source;                    // the store the points come from
  std::string generated_at;              // UTC, ISO 8601
  std::string lowbit_version;            // of the lowbit writing the report
};

ReportData make_report_data(std::vector<dse::PointResult> points, std::string source, std::string generated_at);

// Reads every point of the store at `path` (refused when missing, not a store, or written by a
// newer schema; an empty store is refused with a message saying so).
ReportData load_report_data(const std::string& path);

}  // namespace lowbit::report
