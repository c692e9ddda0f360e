// write_scatter_png(): the plot painted by cairo into an image surface.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include <cairo.h>
#include <fmt/format.h>

#include "lowbit/report/plot_files.hpp"

namespace lowbit::report {
namespace {

constexpr const char* kFontFamily = "DejaVu Sans";

class CairoCanvas final : public Canvas {
 public:
  explicit CairoCanvas(cairo_t* cr) : cr_(cr) {}

  void rect(double x, double y, double width, double height, const Color& fill) override {
    set_color(fill);
    cairo_rectangle(cr_, x, y, width, height);
    cairo_fill(cr_);
  }

  void polyline(const std::vector<Point2>& points, const LineStyle& style, std::string_view) override {
    if (points.empty()) return;
    cairo_move_to(cr_, points[0].x, points[0].y);
    for (size_t i = 1; i < points.size(); ++i) cairo_line_to(cr_, points[i].x, points[i].y);
    const double dashes[] = {4, 3};
    cairo_set_dash(cr_, dashes, style.dashed ? 2 : 0, 0);
    cairo_set_line_width(cr_, style.width);
    set_color(style.color);
    cairo_stroke(cr_);
    cairo_set_dash(cr_, nullptr, 0, 0);
  }

  void marker(const Marker& m) override {
    const std::vector<Point2> outline = marker_outline(m.shape, m.at, m.radius);
    if (m.shape == MarkerShape::Cross) {
      cairo_move_to(cr_, outline[0].x, outline[0].y);
      cairo_line_to(cr_, outline[1].x, outline[1].y);
      cairo_move_to(cr_, outline[2].x, outline[2].y);
      cairo_line_to(cr_, outline[3].x, outline[3].y);
      cairo_set_line_width(cr_, 1.6);
      set_color(m.stroke);
      cairo_stroke(cr_);
      return;
    }
    if (m.shape == MarkerShape::Circle) {
      cairo_new_sub_path(cr_);
      cairo_arc(cr_, m.at.x, m.at.y, m.radius, 0, 2 * M_PI);
    } else {
      cairo_move_to(cr_, outline[0].x, outline[0].y);
      for (size_t i = 1; i < outline.size(); ++i) cairo_line_to(cr_, outline[i].x, outline[i].y);
      cairo_close_path(cr_);
    }
    set_color(m.fill);
    cairo_fill_preserve(cr_);
    cairo_set_line_width(cr_, m.stroke_width);
    set_color(m.stroke);
    cairo_stroke(cr_);
  }

  void text(Point2 at, std::string_view text, const TextStyle& style) override {
    const std::string s(text);
    cairo_select_font_face(cr_, kFontFamily, CAIRO_FONT_SLANT_NORMAL, style.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, style.size);
    cairo_text_extents_t extents;
    cairo_text_extents(cr_, s.c_str(), &extents);
    const double shift = style.anchor == TextAnchor::Start ? 0 : style.anchor == TextAnchor::Middle ? extents.x_advance / 2 : extents.x_advance;
    cairo_save(cr_);
    cairo_translate(cr_, at.x, at.y);
    cairo_rotate(cr_, style.rotate_degrees * M_PI / 180);
    cairo_move_to(cr_, -shift, 0);
    set_color(style.color);
    cairo_show_text(cr_, s.c_str());
    cairo_restore(cr_);
  }

 private:
  void set_color(const Color& c) { cairo_set_source_rgb(cr_, c.r / 255.0, c.g / 255.0, c.b / 255.0); }
  cairo_t* cr_;
};

}  // namespace

void write_scatter_png(const ScatterPlot& plot, const std::string& path, double scale) {
  if (!(scale > 0)) throw std::invalid_argument(fmt::format("PNG scale must be positive, got {}", scale));
  const int width = static_cast<int>(std::lround(plot.width * scale)), height = static_cast<int>(std::lround(plot.height * scale));
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height),
                                                                             cairo_surface_destroy);
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(fmt::format("{}: cannot make a {}x{} image: {}", path, width, height,
                                         cairo_status_to_string(cairo_surface_status(surface.get()))));
  {
    std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
    cairo_scale(cr.get(), scale, scale);
    CairoCanvas canvas(cr.get());
    draw_scatter(plot, canvas);
    if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS)
      throw std::runtime_error(fmt::format("{}: drawing failed: {}", path, cairo_status_to_string(cairo_status(cr.get()))));
  }
  const cairo_status_t written = cairo_surface_write_to_png(surface.get(), path.c_str());
  if (written != CAIRO_STATUS_SUCCESS) throw std::runtime_error(fmt::format("cannot write {}: {}", path, cairo_status_to_string(written)));
}

}  // namespace lowbit::report
