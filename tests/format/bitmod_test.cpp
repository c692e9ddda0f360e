#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lowbit/format/fake_quant.hpp"

namespace lowbit {
namespace {

TEST(Bitmod, CandidateGrids) {
  const BitmodFormat fp4 = *Format::parse("bitmod_fp4").bitmod();
  ASSERT_EQ(fp4.grids().size(), 4u);
  const double extras[] = {10, -10, 16, -16};
  for (size_t c = 0; c < 4; ++c) {
    const auto& g = fp4.grids()[c];
    EXPECT_EQ(g.size(), 16u);
    for (double base : {0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0, 12.0, -12.0})
      EXPECT_TRUE(std::count(g.begin(), g.end(), base)) << base;
    EXPECT_TRUE(std::count(g.begin(), g.end(), extras[c]));
  }
  const BitmodFormat fp3 = *Format::parse("bitmod_fp3").bitmod();
  EXPECT_EQ(fp3.grids()[0], (std::vector<double>{-4, -2, -1, 0, 1, 2, 3, 4}));
  EXPECT_EQ(fp3.grids()[3], (std::vector<double>{-6, -4, -2, -1, 0, 1, 2, 4}));
}

TEST(Bitmod, PicksTheGridThatFitsExactly) {
  const BitmodFormat f = *Format::parse("bitmod_fp4").bitmod();
  // A group made of the extended-asymmetry grid (+16) itself is reproduced exactly with grid 2.
  std::vector<float> x(128);
  const double g[] = {-12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12, 16};
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(g[i % 16] * 0.25);
  std::vector<float> y(x.size());
  std::vector<BitmodFormat::GroupChoice> choice;
  f.quantize_reference(x, y, &choice);
  ASSERT_EQ(choice.size(), 1u);
  EXPECT_EQ(choice[0].grid, 2);
  EXPECT_EQ(choice[0].scale, 0.25f);
  EXPECT_EQ(x, y);
}

TEST(Bitmod, Fp3PicksTheExtraResolutionGrid) {
  // FP3 with the extra value -3: {-4, -3, -2, -1, 0, 1, 2, 4} x 0.5, exact with grid 1; ties of
  // values between grid points go to the lower neighbour.
  const BitmodFormat f = *Format::parse("bitmod_fp3(group=16)").bitmod();
  std::vector<float> x{-2, -1.5f, -1, -0.5f, 0, 0.5f, 1, 2, -2, -1.5f, -1, -0.5f, 0, 0.5f, 1, 2};
  std::vector<float> y(x.size());
  std::vector<BitmodFormat::GroupChoice> choice;
  f.quantize_reference(x, y, &choice);
  ASSERT_EQ(choice.size(), 1u);
  EXPECT_EQ(choice[0].grid, 1);
  EXPECT_EQ(choice[0].scale, 0.5f);
  EXPECT_EQ(x, y);
  // {4, 2.5, 3.6}: the +3 grid (scale 1) errs 0.25 + 0.16 (2.5 is a tie and goes down to 2);
  // the +6 grid (scale fp16(4/6)) errs less, so it is chosen: 4 -> 6s, 2.5 -> 4s, 3.6 -> 6s.
  x = std::vector<float>(16, 0.0f);
  x[0] = 4;
  x[1] = 2.5f;
  x[2] = 3.6f;
  f.quantize_reference(x, y, &choice);
  const float s = static_cast<float>(Format::parse("float16").scalar()->quantize(4.0 / 6.0));
  EXPECT_EQ(choice[0].grid, 2);
  EXPECT_EQ(choice[0].scale, s);
  EXPECT_EQ(y[0], 6 * s);
  EXPECT_EQ(y[1], 4 * s);
  EXPECT_EQ(y[2], 6 * s);
  // With only {4, 2.5}, the +3 grid is exact on 4 and errs 0.25 on the tie; +6 errs (2.5 - 4s)^2.
  x[2] = 0;
  f.quantize_reference(x, y, &choice);
  const double err_er = 0.25, err_ea = (2.5 - 4.0 * s) * (2.5 - 4.0 * s) + (4.0 - 6.0 * s) * (4.0 - 6.0 * s);
  EXPECT_EQ(choice[0].grid, err_er < err_ea ? 0 : 2);
}

TEST(Bitmod, NeverWorseThanPlainFp4) {
  // The extra-resolution grids contain the FP4 grid and share its scale, so every group's error
  // is at most FP4's with the same absmax scale.
  std::mt19937 rng(5);
  std::student_t_distribution<float> t(4);
  std::vector<float> x(128 * 64), y(x.size());
  for (float& v : x) v = t(rng);
  fake_quant(Format::parse("bitmod_fp4"), x, y);
  const ScalarFormat e2m1 = *Format::parse("float4_e2m1fn").scalar();
  const ScalarFormat f16 = *Format::parse("float16").scalar();
  for (size_t g0 = 0; g0 < x.size(); g0 += 128) {
    double amax = 0;
    for (size_t k = 0; k < 128; ++k) amax = std::max(amax, static_cast<double>(std::fabs(x[g0 + k])));
    const float s = static_cast<float>(f16.quantize(amax / 12)) * 2;  // E2M1 max 6 = 12 / 2
    double err_fp4 = 0, err_bitmod = 0;
    for (size_t k = 0; k < 128; ++k) {
      const float q = static_cast<float>(e2m1.quantize(x[g0 + k] / s)) * s;
      err_fp4 += (x[g0 + k] - q) * (x[g0 + k] - q);
      err_bitmod += (x[g0 + k] - y[g0 + k]) * (x[g0 + k] - y[g0 + k]);
    }
    EXPECT_LE(err_bitmod, err_fp4 * (1 + 1e-9)) << "group " << g0 / 128;
  }
}

}  // namespace
}  // namespace lowbit
