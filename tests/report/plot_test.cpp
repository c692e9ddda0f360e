#include "lowbit/report/plot.hpp"

#include <filesystem>
#include <memory>

#include <cairo.h>
#include <gtest/gtest.h>

#include "lowbit/report/plot_files.hpp"
#include "tests/report/test_points.hpp"
#include "tests/report/xml_check.hpp"

namespace lowbit::report {
namespace {

ReportData sample_data() { return make_report_data(testing::sample_points(), "test.db", "2025-01-01T00:00:00Z"); }

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// The data-id of every element whose attributes start with `prefix` (class="..." data-id="N").
std::vector<std::string> ids_after(const std::string& text, const std::string& prefix) {
  std::vector<std::string> ids;
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    const size_t begin = at + prefix.size();
    ids.push_back(text.substr(begin, text.find('"', begin) - begin));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(ReportPlot, XmlCheckerCatchesBrokenDocuments) {
  EXPECT_EQ(testing::xml_problem("<svg><g a=\"1\"/></svg>"), "");
  EXPECT_NE(testing::xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(testing::xml_problem("<svg a=\"1\" a=\"2\"/>"), "");
  EXPECT_NE(testing::xml_problem("<svg>a & b</svg>"), "");
  EXPECT_NE(testing::xml_problem("<svg/><svg/>"), "");
}

TEST(ReportPlot, SvgIsWellFormedWithOneMarkerPerPoint) {
  const ReportData data = sample_data();
  for (size_t a = 0; a < data.fronts.size(); ++a) {
    const std::string svg = scatter_svg(scatter_plot(data, a));
    EXPECT_EQ(testing::xml_problem(svg), "") << data.fronts[a].axis.name;
    EXPECT_EQ(count(svg, R"(class="point")") + count(svg, R"(class="point pareto")"), data.points.size());
    std::vector<std::string> front;
    for (size_t i : data.fronts[a].front) front.push_back(std::to_string(data.points[i].id));
    std::sort(front.begin(), front.end());
    EXPECT_EQ(ids_after(svg, R"(class="point pareto" data-id=")"), front);
    EXPECT_EQ(count(svg, R"(class="front-line")"), 1u);
    EXPECT_NE(svg.find("resnet20_cifar10: top-1 against " + data.fronts[a].axis.label), std::string::npos);
    EXPECT_NE(svg.find(">n/a</text>"), std::string::npos);  // the block format has no cost, id 9 no top-1
  }
  const std::string lut = scatter_svg(scatter_plot(data, 0));
  for (const char* family : {"integer", "minifloat", "fixed", "block"})
    EXPECT_NE(lut.find(std::string("class=\"legend-marker\" data-family=\"") + family + "\""), std::string::npos) << family;
  for (const char* tick : {">20k<", ">50k<", ">100k<"}) EXPECT_NE(lut.find(tick), std::string::npos) << tick;
}

TEST(ReportPlot, FrontIsAStaircaseThroughTheParetoPoints) {
  const ReportData data = sample_data();
  const ScatterPlot plot = scatter_plot(data, 0);
  ASSERT_EQ(plot.front.size(), 3u);
  const PlotLayout l = plot_layout(plot);
  std::vector<Point2> at;
  for (size_t i : plot.front) at.push_back(l.position(plot.points[i]));
  for (size_t k = 1; k < at.size(); ++k) {
    EXPECT_GT(at[k].x, at[k - 1].x);  // costlier
    EXPECT_LT(at[k].y, at[k - 1].y);  // more accurate: higher on the page
  }
  const PlotPoint& no_cost = plot.points[7];
  EXPECT_FALSE(no_cost.cost_known());
  EXPECT_GT(l.position(no_cost).x, l.right);
  const PlotPoint& no_top1 = plot.points[8];
  EXPECT_GT(l.position(no_top1).y, l.bottom);
}

TEST(ReportPlot, PngHasThePlotsSizeAndItsColours) {
  const ReportData data = sample_data();
  const ScatterPlot plot = scatter_plot(data, 1);
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("lowbit_report_plot_" + std::to_string(::getpid()) + ".png");
  write_scatter_png(plot, path.string(), 1.5);
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> png(cairo_image_surface_create_from_png(path.c_str()),
                                                                         cairo_surface_destroy);
  ASSERT_EQ(cairo_surface_status(png.get()), CAIRO_STATUS_SUCCESS);
  EXPECT_EQ(cairo_image_surface_get_width(png.get()), 1350);
  EXPECT_EQ(cairo_image_surface_get_height(png.get()), 840);
  // The front line's red and the integer family's blue are painted somewhere.
  cairo_surface_flush(png.get());
  const unsigned char* pixels = cairo_image_surface_get_data(png.get());
  const int stride = cairo_image_surface_get_stride(png.get());
  size_t red = 0, blue = 0;
  for (int y = 0; y < 840; ++y)
    for (int x = 0; x < 1350; ++x) {
      const uint32_t argb = *reinterpret_cast<const uint32_t*>(pixels + y * stride + x * 4);
      const uint32_t rgb = argb & 0xffffff;
      red += rgb == 0xd62728;
      blue += rgb == 0x1f77b4;
    }
  EXPECT_GT(red, 50u);
  EXPECT_GT(blue, 50u);
  std::filesystem::remove(path);
  EXPECT_THROW(write_scatter_png(plot, "/nonexistent-dir/x.png"), std::runtime_error);
}

}  // namespace
}  // namespace lowbit::report
