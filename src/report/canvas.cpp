#include "lowbit/report/canvas.hpp"

#include <cmath>

#include <fmt/format.h>

namespace lowbit::report {

std::string Color::hex() const { return fmt::format("#{:02x}{:02x}{:02x}", r, g, b); }

std::vector<Point2> marker_outline(MarkerShape shape, Point2 at, double radius) {
  const double x = at.x, y = at.y, r = radius;
  switch (shape) {
    case MarkerShape::Square: {
      const double h = r * 0.85;  // same area as the circle, roughly
      return {{x - h, y - h}, {x + h, y - h}, {x + h, y + h}, {x - h, y + h}};
    }
    case MarkerShape::Triangle: {
      const double t = r * 1.25;
      return {{x, y - t}, {x + t * std::sqrt(3.0) / 2, y + t / 2}, {x - t * std::sqrt(3.0) / 2, y + t / 2}};
    }
    case MarkerShape::Diamond: {
      const double d = r * 1.2;
      return {{x, y - d}, {x + d, y}, {x, y + d}, {x - d, y}};
    }
    case MarkerShape::Cross: return {{x - r, y - r}, {x + r, y + r}, {x - r, y + r}, {x + r, y - r}};
    case MarkerShape::Circle: break;
  }
  return {};
}

}  // namespace lowbit::report
