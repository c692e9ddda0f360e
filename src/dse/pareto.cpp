#include "lowbit/dse/pareto.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::dse {

const std::vector<CostAxis>& cost_axes() {
  static const std::vector<CostAxis> axes = {
      {"lut", "LUTs", [](const PointResult& p) { return p.lut; }},
      {"bit_ops", "bit-operations", [](const PointResult& p) { return p.bit_ops; }},
      {"memory", "weight memory (bits)", [](const PointResult& p) { return p.weight_bits; }},
  };
  return axes;
}

const CostAxis& cost_axis(const std::string& name) {
  for (const CostAxis& a : cost_axes())
    if (a.name == name) return a;
  throw std::invalid_argument(fmt::format("unknown cost axis '{}' (lut, bit_ops, memory)", name));
}

std::vector<bool> pareto_front(const std::vector<PointResult>& points, const CostAxis& axis) {
  std::vector<size_t> order;
  for (size_t i = 0; i < points.size(); ++i)
    if (!std::isnan(points[i].top1) && !std::isnan(axis.value(points[i]))) order.push_back(i);
  // Cheapest first, most accurate first among equal costs: a point is on the front when it is more
  // accurate than everything cheaper, or ties the best point of its own cost.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    double ca = axis.value(points[a]), cb = axis.value(points[b]);
    if (ca != cb) return ca < cb;
    return points[a].top1 > points[b].top1;
  });
  std::vector<bool> on_front(points.size(), false);
  double best_cheaper = -INFINITY;  // best top-1 of strictly cheaper points
  for (size_t k = 0; k < order.size();) {
    size_t end = k;
    double cost = axis.value(points[order[k]]);
    while (end < order.size() && axis.value(points[order[end]]) == cost) ++end;
    double best_here = points[order[k]].top1;
    if (best_here > best_cheaper)
      for (size_t j = k; j < end && points[order[j]].top1 == best_here; ++j) on_front[order[j]] = true;
    best_cheaper = std::max(best_cheaper, best_here);
    k = end;
  }
  return on_front;
}

}  // namespace lowbit::dse
