#pragma once
// points.csv: one row per point, every field of dse::PointResult (the recipe as compact JSON),
// then on_front_<axis> (0 / 1) for each cost axis. RFC 4180: fields holding a comma, a quote or a
// line break are quoted, quotes doubled; lines end with CRLF. A NaN number is an empty field.
#include <ostream>
#include <string>
#include <string_view>

#include "lowbit/report/report_data.hpp"

namespace lowbit::report {

std::string csv_field(std::string_view text);
// Shortest text that reads back to the same double; empty for NaN.
std::string csv_number(double v);

void write_points_csv(std::ostream& out, const ReportData& data);

}  // namespace lowbit::report
