// Published values of the named formats (OCP, ml_dtypes, IEEE, Brevitas) and AMD UG1399's
// ap_fixed examples, plus the double-rounding trap.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "lowbit/format/format.hpp"

namespace lowbit {
namespace {

ScalarFormat sf(const char* spec) { return *Format::parse(spec).scalar(); }

struct Published {
  const char* name;
  double max, min_normal, min_subnormal;
  uint64_t finite_values;
  bool nan, inf, negative_zero;
};

TEST(PublishedValues, NamedMinifloats) {
  const Published table[] = {
      {"float8_e4m3fn", 448, 0x1p-6, 0x1p-9, 253, true, false, true},
      {"float8_e4m3fnuz", 240, 0x1p-7, 0x1p-10, 255, true, false, false},
      {"float8_e4m3b11fnuz", 30, 0x1p-10, 0x1p-13, 255, true, false, false},
      {"float8_e4m3", 240, 0x1p-6, 0x1p-9, 239, true, true, true},
      {"float8_e5m2", 57344, 0x1p-14, 0x1p-16, 247, true, true, true},
      {"float8_e5m2fnuz", 57344, 0x1p-15, 0x1p-17, 255, true, false, false},
      {"float8_e3m4", 15.5, 0.25, 0x1p-6, 223, true, true, true},
      {"float6_e2m3fn", 7.5, 1, 0.125, 63, false, false, true},
      {"float6_e3m2fn", 28, 0.25, 0.0625, 63, false, false, true},
      {"float4_e2m1fn", 6, 1, 0.5, 15, false, false, true},
      {"float8_e8m0fnu", 0x1p127, 0x1p-127, 0x1p-127, 255, true, false, false},
      {"float16", 65504, 0x1p-14, 0x1p-24, 63487, true, true, true},
      {"bfloat16", 0x1.FEp127, 0x1p-126, 0x1p-133, 65279, true, true, true},
  };
  for (const Published& p : table) {
    SCOPED_TRACE(p.name);
    const ScalarFormat f = sf(p.name);
    EXPECT_EQ(f.max(), p.max);
    EXPECT_EQ(f.min_normal(), p.min_normal);
    EXPECT_EQ(f.min_subnormal(), p.min_subnormal);
    EXPECT_EQ(f.finite_values(), p.finite_values);
    EXPECT_EQ(f.has_nan(), p.nan);
    EXPECT_EQ(f.has_inf(), p.inf);
    EXPECT_EQ(f.has_negative_zero(), p.negative_zero);
  }
}

TEST(PublishedValues, Fp4ValueSet) {
  const ScalarFormat f = sf("float4_e2m1fn");
  std::set<double> positive;
  for (uint32_t c = 0; c < 8; ++c) positive.insert(f.decode(c));
  EXPECT_EQ(positive, (std::set<double>{0, 0.5, 1, 1.5, 2, 3, 4, 6}));
  EXPECT_EQ(f.decode(0xF), -6.0);
}

TEST(PublishedValues, NanCodes) {
  EXPECT_TRUE(std::isnan(sf("float8_e4m3fn").decode(0x7F)));
  EXPECT_TRUE(std::isnan(sf("float8_e4m3fn").decode(0xFF)));
  EXPECT_EQ(sf("float8_e4m3fn").decode(0x7E), 448);
  EXPECT_TRUE(std::isnan(sf("float8_e4m3fnuz").decode(0x80)));
  EXPECT_EQ(sf("float8_e4m3fnuz").decode(0x7F), 240);
  EXPECT_TRUE(std::isinf(sf("float8_e5m2").decode(0x7C)));
  EXPECT_TRUE(std::isnan(sf("float8_e5m2").decode(0x7D)));
  EXPECT_TRUE(std::isnan(sf("float8_e8m0fnu").decode(0xFF)));
  EXPECT_EQ(sf("float8_e8m0fnu").decode(0x00), 0x1p-127);
  EXPECT_EQ(sf("float8_e8m0fnu").decode(0x7F), 1.0);
  EXPECT_EQ(sf("float8_e8m0fnu").decode(0xFE), 0x1p127);
}

TEST(PublishedValues, BrevitasNoSpecials) {
  EXPECT_EQ(sf("e4m3:specials=none").max(), 480);
  EXPECT_EQ(sf("e5m2:specials=none").max(), 114688);
}

TEST(PublishedValues, OverflowPolicies) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(sf("float8_e4m3fn").quantize(1e6), 448);                       // saturating by default
  EXPECT_TRUE(std::isnan(sf("e4m3:specials=fn,saturate=no").quantize(1e6)));  // non-saturating: NaN
  EXPECT_EQ(sf("e4m3:specials=fn,saturate=no").quantize(464), 448);        // tie to the even 448
  EXPECT_TRUE(std::isnan(sf("e4m3:specials=fn,saturate=no").quantize(464.5)));
  EXPECT_EQ(sf("e5m2:saturate=no").quantize(1e6), inf);
  EXPECT_EQ(sf("e5m2:saturate=no").quantize(61439), 57344);
  EXPECT_EQ(sf("e5m2:saturate=no").quantize(61440), inf);  // tie: 57344 is odd
  EXPECT_EQ(sf("e5m2:saturate=no").quantize(1e6, Rounding::TowardZero), 57344);
  EXPECT_EQ(sf("e5m2").quantize(inf), 57344);
  EXPECT_EQ(sf("e5m2:saturate=no").quantize(-inf), -inf);
}

TEST(PublishedValues, DoubleRoundingTrap) {
  const ScalarFormat f = sf("float8_e4m3fn");
  const double x = -431.99999999999994;
  EXPECT_EQ(f.quantize(x), -416);
  // Through float32 first the value becomes the tie -432, which goes to the even -448.
  EXPECT_EQ(f.quantize(static_cast<double>(static_cast<float>(x))), -448);
}

TEST(PublishedValues, Ug1399ApFixedExamples) {
  struct Case {
    const char* spec;
    double in, out;
  };
  const Case cases[] = {
      {"fixed<3,2,AP_RND,AP_WRAP>", 1.25, 1.5},          {"fixed<3,2,AP_RND,AP_WRAP>", -1.25, -1.0},
      {"fixed<3,2,AP_RND_ZERO,AP_WRAP>", 1.25, 1.0},     {"fixed<3,2,AP_RND_ZERO,AP_WRAP>", -1.25, -1.0},
      {"fixed<3,2,AP_RND_MIN_INF,AP_WRAP>", 1.25, 1.0},  {"fixed<3,2,AP_RND_MIN_INF,AP_WRAP>", -1.25, -1.5},
      {"fixed<3,2,AP_RND_INF,AP_WRAP>", 1.25, 1.5},      {"fixed<3,2,AP_RND_INF,AP_WRAP>", -1.25, -1.5},
      {"fixed<3,2,AP_RND_CONV,AP_WRAP>", 0.75, 1.0},     {"fixed<3,2,AP_RND_CONV,AP_WRAP>", -1.25, -1.0},
      {"fixed<3,2,AP_TRN,AP_WRAP>", 1.25, 1.0},          {"fixed<3,2,AP_TRN,AP_WRAP>", -1.25, -1.5},
      {"fixed<3,2,AP_TRN_ZERO,AP_WRAP>", 1.25, 1.0},     {"fixed<3,2,AP_TRN_ZERO,AP_WRAP>", -1.25, -1.0},
      {"fixed<4,4,AP_RND,AP_SAT>", 19, 7},               {"fixed<4,4,AP_RND,AP_SAT>", -19, -8},
      {"fixed<4,4,AP_RND,AP_SAT_ZERO>", 19, 0},          {"fixed<4,4,AP_RND,AP_SAT_ZERO>", -19, 0},
      {"fixed<4,4,AP_RND,AP_SAT_SYM>", 19, 7},           {"fixed<4,4,AP_RND,AP_SAT_SYM>", -19, -7},
      {"fixed<4,4,AP_RND,AP_WRAP>", -19, -3},            {"fixed<4,4,AP_RND,AP_WRAP>", 19, 3},
      {"ufixed<4,4,AP_RND,AP_WRAP>", 19, 3},             {"ufixed<4,4,AP_RND,AP_WRAP>", -19, 13},
      {"fixed<4,4,AP_RND,AP_SAT_SYM>", -8, -7},          // the most negative code is an underflow too
      {"fixed<4,4,AP_RND,AP_SAT>", 7.5, 7},              // rounding carries into overflow
      {"fixed<4,4,AP_RND,AP_WRAP>", 7.5, -8},
  };
  for (const Case& c : cases) EXPECT_EQ(sf(c.spec).quantize(c.in), c.out) << c.spec << " on " << c.in;
}

TEST(PublishedValues, RoundingVocabulary) {
  const ScalarFormat i8 = sf("int8");
  EXPECT_EQ(i8.quantize(2.5, Rounding::NearestEven), 2);
  EXPECT_EQ(i8.quantize(3.5, Rounding::NearestEven), 4);
  EXPECT_EQ(i8.quantize(2.5, Rounding::NearestAway), 3);
  EXPECT_EQ(i8.quantize(-2.5, Rounding::NearestAway), -3);
  EXPECT_EQ(i8.quantize(-2.5, Rounding::NearestUp), -2);
  EXPECT_EQ(i8.quantize(-2.5, Rounding::NearestDown), -3);
  EXPECT_EQ(i8.quantize(-2.5, Rounding::NearestZero), -2);
  EXPECT_EQ(i8.quantize(-2.7, Rounding::TowardZero), -2);
  EXPECT_EQ(i8.quantize(-2.2, Rounding::Down), -3);
  EXPECT_EQ(i8.quantize(2.2, Rounding::Up), 3);
  EXPECT_EQ(i8.quantize(300), 127);
  EXPECT_EQ(i8.quantize(-300), -128);
  EXPECT_EQ(sf("int8n").quantize(-300), -127);
  EXPECT_EQ(sf("uint4").quantize(-3), 0);
  EXPECT_EQ(sf("ternary").quantize(0.4), 0);
  EXPECT_EQ(sf("ternary").quantize(0.6), 1);
  EXPECT_EQ(sf("binary").quantize(0.0), 1);
  EXPECT_EQ(sf("binary").quantize(-0.2), -1);
  // Stochastic rounding: the probability of rounding up is the distance to the lower value.
  int up = 0;
  for (uint32_t i = 0; i < 100000; ++i) up += i8.quantize(0.25, Rounding::Stochastic, stochastic_bits(7, i)) == 1;
  EXPECT_NEAR(up / 100000.0, 0.25, 0.005);
}

}  // namespace
}  // namespace lowbit
