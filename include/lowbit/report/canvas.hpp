#pragma once
// The drawing primitives a plot is made of. draw_scatter() describes a plot once, in these terms;
// SvgCanvas writes it as SVG text and CairoCanvas paints it into a PNG.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::report {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
};

struct Point2 {
  double x = 0, y = 0;
};

enum class MarkerShape { Circle, Square, Triangle, Diamond, Cross };
enum class TextAnchor { Start, Middle, End };

struct Marker {
  Point2 at;
  MarkerShape shape = MarkerShape::Circle;
  double radius = 4;
  Color fill, stroke;
  double stroke_width = 1;
  // For the SVG: the element's class ("point", "point pareto", "legend-marker") and its data-*
  // attributes (id, family, ...) in order; the PNG ignores them.
  std::string css_class;
  std::vector<std::pair<std::string, std::string>> data;
};

struct TextStyle {
  double size = 12;
  Color color;
  TextAnchor anchor = TextAnchor::Start;
  bool bold = false;
  double rotate_degrees = 0;  // about the anchor point; -90 reads bottom to top
};

struct LineStyle {
  Color color;
  double width = 1;
  bool dashed = false;
};

class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void rect(double x, double y, double width, double height, const Color& fill) = 0;
  virtual void polyline(const std::vector<Point2>& points, const LineStyle& style, std::string_view css_class) = 0;
  virtual void marker(const Marker& m) = 0;
  virtual void text(Point2 at, std::string_view text, const TextStyle& style) = 0;
};

// The outline of a non-circular marker, clockwise; a Cross is two strokes (four points: a-b, c-d).
std::vector<Point2> marker_outline(MarkerShape shape, Point2 at, double radius);

}  // namespace lowbit::report
