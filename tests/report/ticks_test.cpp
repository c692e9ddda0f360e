#include "lowbit/report/ticks.hpp"

#include <cmath>

#include <gtest/gtest.h>

namespace lowbit::report {
namespace {

std::vector<std::string> labels(const AxisScale& s) {
  std::vector<std::string> out;
  for (const Tick& t : s.ticks) out.push_back(t.label);
  return out;
}

TEST(ReportTicks, SiLabels) {
  EXPECT_EQ(si_label(1), "1");
  EXPECT_EQ(si_label(950), "950");
  EXPECT_EQ(si_label(1000), "1k");
  EXPECT_EQ(si_label(2500), "2.5k");
  EXPECT_EQ(si_label(10000), "10k");
  EXPECT_EQ(si_label(1e6), "1M");
  EXPECT_EQ(si_label(1234567), "1.23M");
  EXPECT_EQ(si_label(999999.9999), "1M");
  EXPECT_EQ(si_label(2.6e9), "2.6G");
  EXPECT_EQ(si_label(3e12), "3T");
  EXPECT_EQ(si_label(0.5), "0.5");
}

TEST(ReportTicks, LogScaleOverDecadesLabelsDecades) {
  const AxisScale s = log_scale(1500, 2e6);
  EXPECT_TRUE(s.log);
  EXPECT_LT(s.lo, 1500);
  EXPECT_GT(s.hi, 2e6);
  EXPECT_EQ(labels(s), (std::vector<std::string>{"1k", "10k", "100k", "1M"}));
  EXPECT_NEAR(s.fraction(1500), 1 - s.fraction(2e6), 1e-12);  // padded evenly
}

TEST(ReportTicks, NarrowLogScaleStillHasThreeTicksInside) {
  for (auto [lo, hi] : {std::pair{20000.0, 90000.0}, {6.1e8, 2.6e9}, {1.04e6, 1.1e6}, {5e5, 5e5}}) {
    const AxisScale s = log_scale(lo, hi);
    ASSERT_GE(s.ticks.size(), 3u) << lo << " " << hi;
    for (const Tick& t : s.ticks) {
      EXPECT_GE(t.value, s.lo);
      EXPECT_LE(t.value, s.hi);
    }
    EXPECT_LE(s.lo, lo);
    EXPECT_GE(s.hi, hi);
  }
  // Under a decade: 1-2-5 gives two ticks only, so every mantissa is used.
  EXPECT_EQ(labels(log_scale(20000, 90000)), (std::vector<std::string>{"20k", "30k", "40k", "50k", "60k", "70k", "80k", "90k"}));
}

TEST(ReportTicks, LinearScaleSteps) {
  const AxisScale s = linear_scale(55, 80.25, 6);
  EXPECT_FALSE(s.log);
  EXPECT_EQ(labels(s), (std::vector<std::string>{"55", "60", "65", "70", "75", "80"}));
  const AxisScale small = linear_scale(0.91, 0.93, 4);
  for (const Tick& t : small.ticks) EXPECT_EQ(t.label.substr(0, 2), "0.");
  EXPECT_THROW(log_scale(0, 10), std::invalid_argument);
  EXPECT_THROW(linear_scale(NAN, 1), std::invalid_argument);
}

}  // namespace
}  // namespace lowbit::report
