#pragma once
// A ScatterPlot as an SVG document and as a PNG file (cairo).
#include <string>

#include "lowbit/report/plot.hpp"

namespace lowbit::report {

std::string scatter_svg(const ScatterPlot& plot);
// The PNG is plot.width x plot.height pixels times `scale`. Throws naming the file on failure.
void write_scatter_png(const ScatterPlot& plot, const std::string& path, double scale = 2);

}  // namespace lowbit::report
