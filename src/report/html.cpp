#include "lowbit/report/html.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/report/plot.hpp"
#include "lowbit/report/xml.hpp"

namespace lowbit::report {

// The page template (src/report/report_page.html), compiled in by CMake.
extern const char* const kReportPageTemplate;

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json scale_json(const AxisScale& s) {
  nlohmann::json ticks = nlohmann::json::array();
  for (const Tick& t : s.ticks) ticks.push_back({t.value, t.label});
  return {{"lo", s.lo}, {"hi", s.hi}, {"log", s.log}, {"ticks", ticks}};
}

std::string_view shape_name(MarkerShape s) {
  switch (s) {
    case MarkerShape::Circle: return "circle";
    case MarkerShape::Square: return "square";
    case MarkerShape::Triangle: return "triangle";
    case MarkerShape::Diamond: return "diamond";
    case MarkerShape::Cross: return "cross";
  }
  return "circle";
}

// Fills each placeholder of the template once; values are never scanned for placeholders.
std::string fill_template(std::string_view text, const std::vector<std::pair<std::string_view, std::string>>& values) {
  std::vector<std::pair<size_t, size_t>> at;  // (position in text, index in values)
  for (size_t i = 0; i < values.size(); ++i) {
    const size_t pos = text.find(values[i].first);
    if (pos == std::string_view::npos) throw std::logic_error("report page template lacks " + std::string(values[i].first));
    at.emplace_back(pos, i);
  }
  std::sort(at.begin(), at.end());
  std::string out;
  size_t done = 0;
  for (const auto& [pos, i] : at) {
    out.append(text.substr(done, pos - done));
    out += values[i].second;
    done = pos + values[i].first.size();
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace

nlohmann::json report_page_data(const ReportData& data) {
  nlohmann::json families = nlohmann::json::array();
  nlohmann::json shapes = nlohmann::json::object();
  for (FormatFamily f : kFormatFamilies) {
    const FamilyStyle style = family_style(f);
    families.push_back({{"name", family_name(f)}, {"color", style.color.hex()}, {"shape", shape_name(style.shape)}});
    nlohmann::json outline = nlohmann::json::array();
    for (const Point2& p : marker_outline(style.shape, {0, 0}, 1)) outline.push_back({p.x, p.y});
    shapes[std::string(shape_name(style.shape))] = outline;
  }
  nlohmann::json axes = nlohmann::json::array();
  for (size_t a = 0; a < data.fronts.size(); ++a) {
    const ScatterPlot plot = scatter_plot(data, a);
    nlohmann::json front = nlohmann::json::array();
    for (size_t i : data.fronts[a].front) front.push_back(data.points[i].id);
    axes.push_back({{"name", plot.axis_name},
                    {"label", data.fronts[a].axis.label},
                    {"x_label", plot.x_label},
                    {"y_label", plot.y_label},
                    {"title", plot.title},
                    {"x", scale_json(plot.x)},
                    {"y", scale_json(plot.y)},
                    {"front", front}});
  }
  nlohmann::json points = nlohmann::json::array();
  for (size_t i = 0; i < data.points.size(); ++i) {
    const dse::PointResult& p = data.points[i];
    nlohmann::json cost = nlohmann::json::object(), on_front = nlohmann::json::object();
    for (const AxisFront& f : data.fronts) {
      cost[f.axis.name] = number(f.cost[i]);
      on_front[f.axis.name] = static_cast<bool>(f.on_front[i]);
    }
    points.push_back({{"id", p.id},
                      {"weight_format", p.weight_format},
                      {"activation_format", p.activation_format},
                      {"granularity", p.granularity},
                      {"technique", p.technique},
                      {"family", family_name(data.families[i])},
                      {"top1", number(p.top1)},
                      {"top5", number(p.top5)},
                      {"images", p.images},
                      {"macs", number(p.macs)},
                      {"bit_ops", number(p.bit_ops)},
                      {"weight_bits", number(p.weight_bits)},
                      {"activation_bits", number(p.activation_bits)},
                      {"lut", number(p.lut)},
                      {"ff", number(p.ff)},
                      {"carry", number(p.carry)},
                      {"dsp", number(p.dsp)},
                      {"quantize_seconds", number(p.quantize_seconds)},
                      {"eval_seconds", number(p.eval_seconds)},
                      {"finished_at", p.finished_at},
                      {"recipe", p.recipe.dump()},
                      {"cost", cost},
                      {"front", on_front}});
  }
  return {{"model", data.model},
          {"source", data.source},
          {"generated_at", data.generated_at},
          {"lowbit_version", data.lowbit_version},
          {"families", families},
          {"shapes", shapes},
          {"off_front", {{"fill", kOffFrontFill.hex()}, {"stroke", kOffFrontStroke.hex()}}},
          {"front_line", kFrontLineColor.hex()},
          {"axes", axes},
          {"points", points}};
}

std::string json_for_script(const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    // Outside strings JSON has none of these characters, so escaping them everywhere is safe.
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

std::string report_html(const ReportData& data) {
  return fill_template(kReportPageTemplate, {{"__LOWBIT_TITLE__", xml_escape("lowbit report: " + data.model)},
                                             {"__LOWBIT_REPORT_DATA__", json_for_script(report_page_data(data))}});
}

}  // namespace lowbit::report
