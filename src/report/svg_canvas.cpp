// scatter_svg(): the plot as SVG text. Markers carry class "point" ("point pareto" on the front)
// and data-id, so the file can be checked and styled.
#include <string>

#include <fmt/format.h>

#include "lowbit/report/plot_files.hpp"
#include "lowbit/report/xml.hpp"

namespace lowbit::report {
namespace {

class SvgCanvas final : public Canvas {
 public:
  explicit SvgCanvas(std::string& out) : out_(out) {}

  void rect(double x, double y, double width, double height, const Color& fill) override {
    out_ += fmt::format(R"svg(<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}"/>)svg", x, y, width, height, fill.hex()) + "\n";
  }

  void polyline(const std::vector<Point2>& points, const LineStyle& style, std::string_view css_class) override {
    std::string coords;
    for (const Point2& p : points) coords += fmt::format("{}{:.2f},{:.2f}", coords.empty() ? "" : " ", p.x, p.y);
    out_ += fmt::format(R"svg(<polyline class="{}" points="{}" fill="none" stroke="{}" stroke-width="{}"{}/>)svg", xml_escape(css_class), coords,
                        style.color.hex(), style.width, style.dashed ? R"svg( stroke-dasharray="4 3")svg" : "") +
            "\n";
  }

  void marker(const Marker& m) override {
    std::string attributes = fmt::format(R"svg(class="{}")svg", xml_escape(m.css_class));
    for (const auto& [name, value] : m.data) attributes += fmt::format(R"svg( data-{}="{}")svg", name, xml_escape(value));
    const std::string paint = m.shape == MarkerShape::Cross
                                  ? fmt::format(R"svg(fill="none" stroke="{}" stroke-width="{}")svg", m.stroke.hex(), 1.6)
                                  : fmt::format(R"svg(fill="{}" stroke="{}" stroke-width="{}")svg", m.fill.hex(), m.stroke.hex(), m.stroke_width);
    if (m.shape == MarkerShape::Circle) {
      out_ += fmt::format(R"svg(<circle {} cx="{:.2f}" cy="{:.2f}" r="{:.2f}" {}/>)svg", attributes, m.at.x, m.at.y, m.radius, paint) + "\n";
      return;
    }
    const std::vector<Point2> outline = marker_outline(m.shape, m.at, m.radius);
    std::string d;
    if (m.shape == MarkerShape::Cross) {
      d = fmt::format("M{:.2f},{:.2f}L{:.2f},{:.2f}M{:.2f},{:.2f}L{:.2f},{:.2f}", outline[0].x, outline[0].y, outline[1].x, outline[1].y,
                      outline[2].x, outline[2].y, outline[3].x, outline[3].y);
    } else {
      for (const Point2& p : outline) d += fmt::format("{}{:.2f},{:.2f}", d.empty() ? "M" : "L", p.x, p.y);
      d += "Z";
    }
    out_ += fmt::format(R"svg(<path {} d="{}" {}/>)svg", attributes, d, paint) + "\n";
  }

  void text(Point2 at, std::string_view text, const TextStyle& style) override {
    static constexpr const char* kAnchors[] = {"start", "middle", "end"};
    std::string transform;
    if (style.rotate_degrees != 0) transform = fmt::format(R"svg( transform="rotate({} {:.2f} {:.2f})")svg", style.rotate_degrees, at.x, at.y);
    out_ += fmt::format(R"svg(<text x="{:.2f}" y="{:.2f}" font-size="{}" fill="{}" text-anchor="{}"{}{}>{}</text>)svg", at.x, at.y, style.size,
                        style.color.hex(), kAnchors[static_cast<int>(style.anchor)], style.bold ? R"svg( font-weight="bold")svg" : "",
                        transform, xml_escape(text)) +
            "\n";
  }

 private:
  std::string& out_;
};

}  // namespace

std::string scatter_svg(const ScatterPlot& plot) {
  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )svg"
      R"svg(font-family="DejaVu Sans, Verdana, Arial, sans-serif" data-axis="{2}">)svg"
      "\n<title>{3}</title>\n",
      plot.width, plot.height, xml_escape(plot.axis_name), xml_escape(plot.title));
  SvgCanvas canvas(svg);
  draw_scatter(plot, canvas);
  svg += "</svg>\n";
  return svg;
}

}  // namespace lowbit::report
