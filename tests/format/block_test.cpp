// Block-scaled formats: OCP MX shared-scale rule and its edges, NVFP4's two-level scale, scale
// rules, axes, checked on values worked out by hand from the specifications.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "lowbit/format/fake_quant.hpp"

namespace lowbit {
namespace {

std::vector<float> fq(const char* spec, std::vector<float> x, std::vector<int64_t> shape = {}) {
  std::vector<float> out(x.size()), ref(x.size());
  const Format f = Format::parse(spec);
  fake_quant(f, x, out, shape);
  fake_quant_reference(f, x, ref, shape);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_TRUE(std::memcmp(&out[i], &ref[i], 4) == 0 || (std::isnan(out[i]) && std::isnan(ref[i]))) << i;
  return out;
}

std::vector<float> block32(std::initializer_list<float> head) {
  std::vector<float> v(32, 0.0f);
  std::copy(head.begin(), head.end(), v.begin());
  return v;
}

TEST(BlockFormat, MxSharedScaleFloorRule) {
  // amax 12: shared exponent floor(log2 12) - emax(E2M1) = 3 - 2 = 1, scale 2.
  // Elements / 2 = 0.25 (tie between 0 and 0.5 -> even 0), 0.5, 3, 6.
  const auto y = fq("mxfp4", block32({0.5f, 1, 6, 12, -7}));
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], 1);
  EXPECT_EQ(y[2], 6);
  EXPECT_EQ(y[3], 12);
  EXPECT_EQ(y[4], -8);  // -3.5 ties to the even -4
}

TEST(BlockFormat, FloorRuleClipsCeilDoesNot) {
  // amax 7.9: floor rule gives scale 1 and 7.9 saturates to 6; ceil picks 2 and 7.9/2 -> 4 -> 8.
  EXPECT_EQ(fq("mxfp4", block32({7.9f}))[0], 6);
  EXPECT_EQ(fq("block(e2m1:specials=none,scale=e8m0,size=32,rule=ceil)", block32({7.9f}))[0], 8);
  // nearest: 7.9 / 6 = 1.32 -> scale 1 (nearer than 2)
  EXPECT_EQ(fq("block(e2m1:specials=none,scale=e8m0,size=32,rule=nearest)", block32({7.9f}))[0], 6);
}

TEST(BlockFormat, MxEdges) {
  // All zero: zeros. A NaN or inf makes only its own block NaN.
  std::vector<float> x(64, 0.0f);
  x[40] = 3.0f;
  x[5] = std::numeric_limits<float>::quiet_NaN();
  auto y = fq("mxfp8", x);
  for (int i = 0; i < 32; ++i) EXPECT_TRUE(std::isnan(y[i])) << i;
  EXPECT_EQ(y[40], 3.0f);
  EXPECT_EQ(y[41], 0.0f);
  x[5] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(fq("mxfp4", x)[0]));
  EXPECT_EQ(fq("mxfp4", std::vector<float>(32, 0.0f))[7], 0.0f);
  // Tiny block: the shared exponent clamps at -127; 2^-140 / 2^-127 = 2^-13 rounds to 0 in E2M1.
  EXPECT_EQ(fq("mxfp4", block32({0x1p-140f}))[0], 0.0f);
  // ... while MXFP8 E4M3 keeps it: 2^-13 is below E4M3's 2^-9 too -> 0; 2^-128 / 2^-127 = 0.5.
  EXPECT_EQ(fq("mxfp8", block32({0x1p-128f}))[0], 0x1p-128f);
  // Largest float32: exponent 127 - 8 = 119, in range.
  EXPECT_EQ(fq("mxfp8", block32({std::numeric_limits<float>::max()}))[0], 0x1.Cp127f);
}

TEST(BlockFormat, MxInt8) {
  // amax 2: exponent 1 - 0 = 1, scale 2; elements in 1/64 steps, symmetric (never -2 at scale 1).
  auto y = fq("mxint8", block32({2.0f, -2.0f, 0.01f}));
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 0.0f);  // 0.005 * 64 = 0.32 -> 0
  y = fq("mxint8", block32({1.99f, -1.99f, 0.5f + 1.0f / 128}));
  EXPECT_EQ(y[0], 127.0f / 64);  // 127.36 -> 127
  EXPECT_EQ(y[1], -127.0f / 64);
  EXPECT_EQ(y[2], 0.5f);  // 32.5 ties to even 32
}

TEST(BlockFormat, Nvfp4TwoLevelScale) {
  // Tensor amax 2688 = 6 * 448: tensor scale 1. Block 1 amax 2688 -> E4M3 scale 448.
  // Block 2 amax 1: 1/6 = 0.1667 -> nearest E4M3 0.171875; 1 / 0.171875 = 5.8 -> 6 -> 1.03125.
  std::vector<float> x(32, 0.0f);
  x[0] = 2688;
  x[1] = 300;  // 300 / 448 = 0.67 -> 0.5 -> 224
  x[2] = 100;  // 0.22 -> 0
  x[16] = 1.0f;
  x[17] = -0.3f;  // -0.3 / 0.171875 = -1.745 -> -1.5 -> -0.2578125
  const auto y = fq("nvfp4", x);
  EXPECT_EQ(y[0], 2688);
  EXPECT_EQ(y[1], 224);
  EXPECT_EQ(y[2], 0);
  EXPECT_EQ(y[16], 1.03125f);
  EXPECT_EQ(y[17], -0.2578125f);
  EXPECT_DOUBLE_EQ(Format::parse("nvfp4").bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(Format::parse("mxfp4").bits_per_element(), 4.25);
}

TEST(BlockFormat, AxisZeroEqualsTransposedLastAxis) {
  const int64_t R = 64, C = 3;
  std::vector<float> x(R * C), xt(R * C);
  for (int64_t i = 0; i < R * C; ++i) x[i] = std::sin(0.37f * i) * std::exp2(static_cast<float>(i % 7));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) xt[c * R + r] = x[r * C + c];
  const auto y = fq("block(e2m1:specials=none,scale=e8m0,size=32,rule=floor,axis=0)", x, {R, C});
  const auto yt = fq("mxfp4", xt, {C, R});
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(y[r * C + c], yt[c * R + r]);
}

TEST(BlockFormat, ExactScaleRounding) {
  // round_ratio decides from the exact quotient, not its rounded double.
  const ScaleSpec fp32{ScaleKind::Float32, std::nullopt};
  EXPECT_EQ(fp32.round_ratio(1.0, 3.0, ScaleRule::Nearest), static_cast<double>(1.0f / 3.0f));
  // fl32(1/3) = 0x1.555556p-2 lies above 1/3, so it is also the ceiling; the floor is one below.
  EXPECT_EQ(fp32.round_ratio(1.0, 3.0, ScaleRule::Ceil), 0x1.555556p-2);
  EXPECT_EQ(fp32.round_ratio(1.0, 3.0, ScaleRule::Floor), 0x1.555554p-2);
  const ScaleSpec e4m3{ScaleKind::Format, *Format::parse("float8_e4m3fn").scalar()};
  EXPECT_EQ(e4m3.round_ratio(17, 1, ScaleRule::Nearest), 16);  // 17 ties between 16 (even) and 18
  EXPECT_EQ(e4m3.round_ratio(19, 1, ScaleRule::Nearest), 20);  // 19 ties between 18 (odd) and 20
  EXPECT_EQ(e4m3.round_ratio(1e6, 1, ScaleRule::Nearest), 448);
  EXPECT_EQ(e4m3.round_ratio(1e-9, 1, ScaleRule::Nearest), 0);
  const ScaleSpec e8m0{ScaleKind::Format, *Format::parse("e8m0").scalar()};
  EXPECT_EQ(e8m0.round_ratio(3, 1, ScaleRule::Nearest), 4);  // a tie between 2 and 4 goes up (M = 0)
  EXPECT_EQ(e8m0.round_ratio(2.9, 1, ScaleRule::Nearest), 2);
}

TEST(BlockFormat, ShapeErrors) {
  std::vector<float> x(10), y(10);
  EXPECT_THROW(fake_quant(Format::parse("mxfp4"), x, y, std::vector<int64_t>{3, 4}), FormatError);
  EXPECT_THROW(fake_quant(Format::parse("block(e2m1,scale=e8m0,size=4,rule=floor,axis=3)"), x, y,
                          std::vector<int64_t>{2, 5}),
               FormatError);
}

}  // namespace
}  // namespace lowbit
