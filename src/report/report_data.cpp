#include "lowbit/report/report_data.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/util/utc_time.hpp"

namespace lowbit::report {
namespace {

// "resnet20_cifar10" for "../shared/data/models/resnet20_cifar10.onnx"; several models joined.
std::string model_names(const std::vector<dse::PointResult>& points) {
  std::vector<std::string> names;
  for (const dse::PointResult& p : points) {
    std::string name = std::filesystem::path(p.model).stem().string();
    if (name.empty()) name = p.model;
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  std::string joined;
  for (const std::string& n : names) joined += (joined.empty() ? "" : ", ") + n;
  return joined.empty() ? "unnamed model" : joined;
}

}  // namespace

ReportData make_report_data(std::vector<dse::PointResult> points, std::string source, std::string generated_at) {
  ReportData d;
  d.points = std::move(points);
  d.source = std::move(source);
  d.generated_at = std::move(generated_at);
  d.lowbit_version = LOWBIT_VERSION;
  d.model = model_names(d.points);
  for (const dse::PointResult& p : d.points) d.families.push_back(format_family(p.weight_format));
  for (const dse::CostAxis& axis : dse::cost_axes()) {
    AxisFront f{axis, dse::pareto_front(d.points, axis), {}, {}};
    for (size_t i = 0; i < d.points.size(); ++i) {
      f.cost.push_back(axis.value(d.points[i]));
      if (f.on_front[i]) f.front.push_back(i);
    }
    std::sort(f.front.begin(), f.front.end(), [&](size_t a, size_t b) {
      if (f.cost[a] != f.cost[b]) return f.cost[a] < f.cost[b];
      if (d.points[a].top1 != d.points[b].top1) return d.points[a].top1 < d.points[b].top1;
      return a < b;
    });
    d.fronts.push_back(std::move(f));
  }
  return d;
}

ReportData load_report_data(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error(fmt::format("{}: no such file", path));
  const dse::ResultStore store = dse::ResultStore::open_read_only(path);
  std::vector<dse::PointResult> points = store.points();
  if (points.empty())
    throw std::runtime_error(fmt::format("{}: the store holds no points yet (run `lowbit explore` first, or wait for it to finish a point)", path));
  return make_report_data(std::move(points), path, utc_now_iso8601());
}

}  // namespace lowbit::report
