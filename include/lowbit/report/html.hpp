#pragma once
// report.html: one self-contained page (inline CSS and JavaScript, the data embedded as JSON, no
// network access, no external fonts). An interactive scatter with an axis selector, hover details,
// rectangle selection that filters the table, and a sortable table of every point.
#include <string>

#include <nlohmann/json.hpp>

#include "lowbit/report/report_data.hpp"

namespace lowbit::report {

// The data the page's script draws from: points, fronts, axis scales and ticks, family styles.
nlohmann::json report_page_data(const ReportData& data);

std::string report_html(const ReportData& data);

// JSON text that is safe inside an HTML <script> element: '<', '>' and '&' written as \u escapes.
std::string json_for_script(const nlohmann::json& j);

}  // namespace lowbit::report
