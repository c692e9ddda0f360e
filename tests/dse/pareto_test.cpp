#include "lowbit/dse/pareto.hpp"

#include <random>

#include <gtest/gtest.h>

namespace lowbit::dse {
namespace {

PointResult point(double top1, double lut) {
  PointResult p;
  p.top1 = top1;
  p.lut = lut;
  return p;
}

// The definition itself: dominated when another point is no worse in both and better in one.
std::vector<bool> brute_force_front(const std::vector<PointResult>& ps) {
  std::vector<bool> front(ps.size(), false);
  for (size_t i = 0; i < ps.size(); ++i) {
    if (std::isnan(ps[i].top1) || std::isnan(ps[i].lut)) continue;
    bool dominated = false;
    for (size_t j = 0; j < ps.size() && !dominated; ++j) {
      if (std::isnan(ps[j].top1) || std::isnan(ps[j].lut)) continue;
      dominated = ps[j].top1 >= ps[i].top1 && ps[j].lut <= ps[i].lut && (ps[j].top1 > ps[i].top1 || ps[j].lut < ps[i].lut);
    }
    front[i] = !dominated;
  }
  return front;
}

TEST(Pareto, SmallCases) {
  const CostAxis& lut = cost_axis("lut");
  std::vector<PointResult> ps = {point(70, 100), point(80, 200), point(75, 300), point(80, 200), point(90, 1000),
                                 point(NAN, 10), point(99, NAN), point(60, 100)};
  std::vector<bool> expected = {true, true, false, true, true, false, false, false};
  EXPECT_EQ(pareto_front(ps, lut), expected);
  EXPECT_THROW(cost_axis("area"), std::invalid_argument);
}

TEST(Pareto, MatchesTheDefinitionOnRandomPoints) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<PointResult> ps;
    int n = 1 + trial % 40;
    // Few distinct values, so ties in cost, accuracy and both are common.
    std::uniform_int_distribution<int> value(0, 6);
    for (int i = 0; i < n; ++i) ps.push_back(point(50 + value(rng), 100 * (1 + value(rng))));
    EXPECT_EQ(pareto_front(ps, cost_axis("lut")), brute_force_front(ps)) << "trial " << trial;
  }
}

TEST(Pareto, AxesReadTheirColumn) {
  PointResult p = point(1, 2);
  p.bit_ops = 3;
  p.weight_bits = 4;
  EXPECT_EQ(cost_axis("lut").value(p), 2);
  EXPECT_EQ(cost_axis("bit_ops").value(p), 3);
  EXPECT_EQ(cost_axis("memory").value(p), 4);
  EXPECT_EQ(cost_axes().size(), 3u);
}

}  // namespace
}  // namespace lowbit::dse
