#include "lowbit/report/report.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/report/csv.hpp"
#include "lowbit/report/html.hpp"
#include "lowbit/report/plot_files.hpp"
#include "lowbit/report/ticks.hpp"

namespace lowbit::report {
namespace {

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
}

}  // namespace

ReportFiles write_report(const ReportData& data, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) throw std::runtime_error(fmt::format("cannot make the folder {}: {}", dir.string(), ec.message()));
  ReportFiles files;
  files.dir = dir;
  files.csv = dir / "points.csv";
  std::ostringstream csv;
  write_points_csv(csv, data);
  write_text(files.csv, csv.str());
  for (size_t a = 0; a < data.fronts.size(); ++a) {
    const ScatterPlot plot = scatter_plot(data, a);
    files.svgs.push_back(dir / ("pareto_" + plot.axis_name + ".svg"));
    write_text(files.svgs.back(), scatter_svg(plot));
    files.pngs.push_back(dir / ("pareto_" + plot.axis_name + ".png"));
    write_scatter_png(plot, files.pngs.back().string());
  }
  files.html = dir / "report.html";
  write_text(files.html, report_html(data));
  return files;
}

std::string format_fronts(const ReportData& data) {
  std::string out;
  for (const AxisFront& f : data.fronts) {
    out += fmt::format("Pareto front, top-1 against {} ({} of {} points):\n", f.axis.label, f.front.size(), data.points.size());
    for (size_t i : f.front) {
      const dse::PointResult& p = data.points[i];
      out += fmt::format("  W {:<14} A {:<14} {:<12} top-1 {:6.2f} %  {} {}\n", p.weight_format, p.activation_format, p.technique, p.top1,
                         f.axis.label, si_label(f.cost[i]));
    }
  }
  return out;
}

}  // namespace lowbit::report
