#include "lowbit/report/plot.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace lowbit::report {
namespace {

constexpr double kLegendWidth = 170, kNaBand = 44, kMarginLeft = 78, kMarginTop = 60, kMarginBottom = 58;
constexpr Color kInk{34, 34, 34}, kMuted{90, 90, 90}, kGrid{232, 232, 232}, kFrame{150, 150, 150};

}  // namespace

FamilyStyle family_style(FormatFamily f) {
  switch (f) {
    case FormatFamily::Integer: return {{31, 119, 180}, MarkerShape::Circle};
    case FormatFamily::Minifloat: return {{255, 127, 14}, MarkerShape::Square};
    case FormatFamily::Fixed: return {{44, 160, 44}, MarkerShape::Triangle};
    case FormatFamily::Block: return {{148, 103, 189}, MarkerShape::Diamond};
    case FormatFamily::Other: break;
  }
  return {{100, 100, 100}, MarkerShape::Cross};
}

bool PlotPoint::cost_known() const { return std::isfinite(cost) && cost > 0; }
bool PlotPoint::top1_known() const { return std::isfinite(top1); }

ScatterPlot scatter_plot(const ReportData& data, size_t axis_index) {
  const AxisFront& f = data.fronts.at(axis_index);
  ScatterPlot plot;
  plot.axis_name = f.axis.name;
  plot.x_label = f.axis.label + " (log scale)";
  plot.y_label = "top-1 (%)";
  plot.title = fmt::format("{}: top-1 against {}", data.model, f.axis.label);
  double cost_min = INFINITY, cost_max = -INFINITY, top1_min = INFINITY, top1_max = -INFINITY;
  for (size_t i = 0; i < data.points.size(); ++i) {
    PlotPoint p{data.points[i].id, f.cost[i], data.points[i].top1, data.families[i], static_cast<bool>(f.on_front[i])};
    if (p.cost_known()) cost_min = std::min(cost_min, p.cost), cost_max = std::max(cost_max, p.cost);
    if (p.top1_known()) top1_min = std::min(top1_min, p.top1), top1_max = std::max(top1_max, p.top1);
    plot.points.push_back(p);
  }
  plot.x = cost_min <= cost_max ? log_scale(cost_min, cost_max) : log_scale(1, 10);
  plot.y = top1_min <= top1_max ? linear_scale(top1_min, top1_max) : linear_scale(0, 100);
  for (size_t i : f.front)
    if (plot.points[i].cost_known()) plot.front.push_back(i);
  plot.subtitle = fmt::format("{} points, {} Pareto-optimal (highest top-1 for the least {})", plot.points.size(), f.front.size(),
                              f.axis.label);
  return plot;
}

Point2 PlotLayout::position(const PlotPoint& p) const {
  const double x = p.cost_known() ? left + (right - left) * plot->x.fraction(p.cost) : na_x;
  const double y = p.top1_known() ? bottom - (bottom - top) * plot->y.fraction(p.top1) : na_y;
  return {x, y};
}

PlotLayout plot_layout(const ScatterPlot& plot) {
  PlotLayout l;
  l.plot = &plot;
  l.na_column = std::any_of(plot.points.begin(), plot.points.end(), [](const PlotPoint& p) { return !p.cost_known(); });
  l.na_row = std::any_of(plot.points.begin(), plot.points.end(), [](const PlotPoint& p) { return !p.top1_known(); });
  l.left = kMarginLeft;
  l.top = kMarginTop;
  l.legend_x = plot.width - kLegendWidth + 14;
  l.right = plot.width - kLegendWidth - (l.na_column ? kNaBand : 0);
  l.bottom = plot.height - kMarginBottom - (l.na_row ? kNaBand * 0.7 : 0);
  l.na_x = l.right + kNaBand / 2;
  l.na_y = l.bottom + kNaBand * 0.35;
  return l;
}

void draw_scatter(const ScatterPlot& plot, Canvas& canvas) {
  const PlotLayout l = plot_layout(plot);
  const double axis_bottom = l.na_row ? l.na_y + kNaBand * 0.35 : l.bottom;
  const double axis_right = l.na_column ? l.na_x + kNaBand / 2 : l.right;
  canvas.rect(0, 0, plot.width, plot.height, {255, 255, 255});

  TextStyle tick_text{11, kMuted, TextAnchor::Middle};
  for (const Tick& t : plot.x.ticks) {
    const double x = l.left + (l.right - l.left) * plot.x.fraction(t.value);
    canvas.polyline({{x, l.top}, {x, l.bottom}}, {kGrid, 1}, "grid");
    canvas.text({x, axis_bottom + 16}, t.label, tick_text);
  }
  tick_text.anchor = TextAnchor::End;
  for (const Tick& t : plot.y.ticks) {
    const double y = l.bottom - (l.bottom - l.top) * plot.y.fraction(t.value);
    canvas.polyline({{l.left, y}, {l.right, y}}, {kGrid, 1}, "grid");
    canvas.text({l.left - 7, y + 4}, t.label, tick_text);
  }
  canvas.polyline({{l.left, l.top}, {axis_right, l.top}, {axis_right, axis_bottom}, {l.left, axis_bottom}, {l.left, l.top}}, {kFrame, 1},
                  "frame");
  if (l.na_column) {
    canvas.polyline({{l.right, l.top}, {l.right, axis_bottom}}, {kFrame, 1, true}, "na");
    canvas.text({l.na_x, axis_bottom + 16}, "n/a", {11, kMuted, TextAnchor::Middle});
  }
  if (l.na_row) {
    canvas.polyline({{l.left, l.bottom}, {axis_right, l.bottom}}, {kFrame, 1, true}, "na");
    canvas.text({l.left - 7, l.na_y + 4}, "n/a", {11, kMuted, TextAnchor::End});
  }
  canvas.text({(l.left + l.right) / 2, plot.height - 16}, plot.x_label, {13, kInk, TextAnchor::Middle});
  canvas.text({22, (l.top + l.bottom) / 2}, plot.y_label, {13, kInk, TextAnchor::Middle, false, -90});
  canvas.text({l.left, 26}, plot.title, {16, kInk, TextAnchor::Start, true});
  canvas.text({l.left, 45}, plot.subtitle, {12, kMuted});

  std::vector<Point2> step;
  for (size_t i : plot.front) {
    const Point2 p = l.position(plot.points[i]);
    if (!step.empty()) step.push_back({p.x, step.back().y});
    step.push_back(p);
  }
  if (step.size() > 1) canvas.polyline(step, {kFrontLineColor, 1.6}, "front-line");

  const auto point_marker = [&](const PlotPoint& p) {
    const FamilyStyle style = family_style(p.family);
    Marker m{l.position(p), style.shape, p.on_front ? 5.5 : 4.2, p.on_front ? style.color : kOffFrontFill,
             p.on_front ? kInk : kOffFrontStroke, p.on_front ? 1.2 : 0.8, p.on_front ? "point pareto" : "point",
             {{"id", std::to_string(p.id)}, {"family", std::string(family_name(p.family))}}};
    if (style.shape == MarkerShape::Cross) m.stroke = p.on_front ? style.color : kOffFrontStroke;
    canvas.marker(m);
  };
  for (const PlotPoint& p : plot.points)
    if (!p.on_front) point_marker(p);
  for (const PlotPoint& p : plot.points)
    if (p.on_front) point_marker(p);

  // Legend: the families present, then what the colours and the line mean.
  double y = l.top + 4;
  canvas.text({l.legend_x, y}, "weight format", {12, kInk, TextAnchor::Start, true});
  for (FormatFamily f : kFormatFamilies) {
    if (std::none_of(plot.points.begin(), plot.points.end(), [f](const PlotPoint& p) { return p.family == f; })) continue;
    y += 20;
    const FamilyStyle style = family_style(f);
    Marker m{{l.legend_x + 6, y - 4}, style.shape, 5.5, style.color, kInk, 1.2, "legend-marker", {{"family", std::string(family_name(f))}}};
    if (style.shape == MarkerShape::Cross) m.stroke = style.color;
    canvas.marker(m);
    canvas.text({l.legend_x + 18, y}, family_name(f), {12, kInk});
  }
  y += 28;
  canvas.polyline({{l.legend_x, y - 4}, {l.legend_x + 12, y - 4}}, {kFrontLineColor, 1.6}, "legend-line");
  canvas.text({l.legend_x + 18, y}, "Pareto front", {12, kInk});
  y += 20;
  canvas.marker({{l.legend_x + 6, y - 4}, MarkerShape::Circle, 4.2, kOffFrontFill, kOffFrontStroke, 0.8, "legend-marker", {}});
  canvas.text({l.legend_x + 18, y}, "not on the front", {12, kInk});
  if (l.na_column) {
    y += 20;
    canvas.text({l.legend_x, y}, "n/a: no cost model", {11, kMuted});
  }
}

}  // namespace lowbit::report
