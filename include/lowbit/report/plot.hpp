#pragma once
// The Pareto scatter of one cost axis: top-1 (y) against cost (x, log scale). The plot is described
// once (ScatterPlot + draw_scatter) and drawn on any Canvas: SVG text or a PNG through cairo.
//
// Every point of the store is drawn. Points whose cost is NaN or not positive (no MAC model for the
// format) sit in an "n/a" column right of the plot area; points whose top-1 is NaN in an "n/a" row
// below it. Pareto points are coloured by weight-format family and joined by a step line; the
// others are grey. Shapes follow the family.
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/report/canvas.hpp"
#include "lowbit/report/family.hpp"
#include "lowbit/report/report_data.hpp"
#include "lowbit/report/ticks.hpp"

namespace lowbit::report {

struct FamilyStyle {
  Color color;
  MarkerShape shape;
};
FamilyStyle family_style(FormatFamily f);
inline constexpr Color kOffFrontFill{200, 200, 200}, kOffFrontStroke{140, 140, 140}, kFrontLineColor{214, 39, 40};

struct PlotPoint {
  int64_t id = 0;  // the store's row id
  double cost = 0, top1 = 0;
  FormatFamily family = FormatFamily::Other;
  bool on_front = false;
  bool cost_known() const;   // finite and > 0: on the log axis
  bool top1_known() const;   // finite
};

struct ScatterPlot {
  double width = 900, height = 560;
  std::string axis_name, title, subtitle, x_label, y_label;
  AxisScale x, y;
  std::vector<PlotPoint> points;  // in the store's order
  std::vector<size_t> front;      // indices into points, by increasing cost
};

ScatterPlot scatter_plot(const ReportData& data, size_t axis_index);

// Where things go on the canvas.
struct PlotLayout {
  double left = 0, top = 0, right = 0, bottom = 0;  // the plot area
  bool na_column = false, na_row = false;
  double na_x = 0, na_y = 0;  // centre of the n/a column / row
  double legend_x = 0;
  Point2 position(const PlotPoint& p) const;
  const ScatterPlot* plot = nullptr;
};
PlotLayout plot_layout(const ScatterPlot& plot);

void draw_scatter(const ScatterPlot& plot, Canvas& canvas);

}  // namespace lowbit::report
