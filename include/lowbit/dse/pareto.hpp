#pragma once
// Pareto fronts of explored points: highest accuracy (top-1) for the least cost.
#include <string>
#include <vector>

#include "lowbit/dse/store.hpp"

namespace lowbit::dse {

// A cost axis of the fronts.
struct CostAxis {
  std::string name;   // "lut", "bit_ops", "memory"
  std::string label;  // for plots: "LUTs", "bit-operations", "weight memory (bits)"
  double (*value)(const PointResult&);
};
// The three axes of the reports: LUTs, bit-operations, weight memory.
const std::vector<CostAxis>& cost_axes();
const CostAxis& cost_axis(const std::string& name);  // throws std::invalid_argument

// on_front[i] is true when no other point has top-1 >= and cost <= with one of them strictly
// better. Points whose top-1 or cost is NaN are never on the front. Equal points are all on it.
std::vector<bool> pareto_front(const std::vector<PointResult>& points, const CostAxis& axis);

}  // namespace lowbit::dse
