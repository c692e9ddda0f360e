// Accumulator widths: exact (checked against a brute-force bound from lowbit's decode) and the
// issue's formulas, which are exact for some pairs and conservative for others.
#include "lowbit/hw/mac_config.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "lowbit/hw/emulation.hpp"

namespace lowbit::hw {
namespace {

std::vector<std::string> integer_formats() {
  std::vector<std::string> out;
  for (int b = 2; b <= 8; ++b) out.push_back(fmt::format("int{}", b)), out.push_back(fmt::format("uint{}", b));
  return out;
}

std::vector<std::string> minifloat_formats(const std::string& options) {
  std::vector<std::string> out;
  for (int total = 2; total <= 8; ++total)
    for (int e = 1; e <= total - 1; ++e) out.push_back(fmt::format("e{}m{}{}", e, total - 1 - e, options));
  return out;
}

// The smallest register (two's complement, or unsigned when no sum is negative) holding n times
// the extreme products, computed from decoded doubles: independent of the plan's arithmetic.
int brute_force_width(const MacConfig& c, int lsb_exponent) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (uint32_t w = 0; w < c.weight.code_count(); ++w)
    for (uint32_t a = 0; a < c.activation.code_count(); ++a) {
      const double p = c.weight.decode(w) * c.activation.decode(a);
      if (!std::isfinite(p)) continue;
      lo = std::min(lo, p), hi = std::max(hi, p);
    }
  const double n = static_cast<double>(c.n);
  const double max_sum = std::ldexp(hi * n, -lsb_exponent), min_sum = std::ldexp(lo * n, -lsb_exponent);
  for (int width = 1;; ++width) {
    const bool fits = min_sum >= 0 ? max_sum <= std::ldexp(1.0, width) - 1
                                   : min_sum >= -std::ldexp(1.0, width - 1) && max_sum <= std::ldexp(1.0, width - 1) - 1;
    if (fits) return width;
  }
}

TEST(Accumulator, ExactWidthMatchesBruteForceForEveryIntegerPair) {
  for (const auto& w : integer_formats())
    for (const auto& a : integer_formats())
      for (uint64_t n : {1u, 3u, 64u, 100u, 4096u}) {
        const MacConfig c = make_mac_config(w, a, n);
        const AccumulatorPlan p = plan_accumulator(c);
        ASSERT_EQ(p.exact_bits, brute_force_width(c, p.product_lsb_exponent)) << c.to_string();
      }
}

// r_a + r_b + ceil(log2 n) + 1 is conservative: for signed x signed the exact width is
// r_a + r_b + floor(log2 n) (the largest sum is n * (-2^(r_a-1)) * (-2^(r_b-1)) = n * 2^(r_a+r_b-2)),
// one bit less than the formula when n is a power of two and two bits less otherwise.
TEST(Accumulator, IntegerFormulaIsOneOrTwoBitsConservativeForSignedPairs) {
  for (int ra = 2; ra <= 8; ++ra)
    for (int rb = 2; rb <= 8; ++rb)
      for (uint64_t n : {1u, 2u, 3u, 64u, 100u, 512u, 1000u}) {
        const AccumulatorPlan p = plan_accumulator(make_mac_config(fmt::format("int{}", ra), fmt::format("int{}", rb), n));
        const int floor_log2 = static_cast<int>(std::floor(std::log2(static_cast<double>(n))));
        EXPECT_EQ(p.exact_bits, ra + rb + floor_log2);
        EXPECT_EQ(p.formula_bits, ra + rb + ceil_log2(n) + 1);
        EXPECT_EQ(p.formula_bits - p.exact_bits, (n & (n - 1)) == 0 ? 1 : 2) << ra << " " << rb << " " << n;
      }
  // Unsigned x unsigned needs no sign bit: r_a + r_b + ceil(log2 n) at most.
  const AccumulatorPlan u = plan_accumulator(make_mac_config("uint8", "uint8", 64));
  EXPECT_FALSE(u.is_signed);
  EXPECT_EQ(u.exact_bits, 22);  // 64 * 255^2 < 2^22
}

// 2^E_a + M_a + 2^E_b + M_b + ceil(log2 n) - 1 assumes the largest significands (M + 1 bits,
// all ones) in the top binade 2^E - 1. It is exact (n a power of two) when the top binade is finite
// and the product of the largest significands reaches 2^(M_a + M_b + 1); otherwise conservative:
// with M = 0 (1 x 1 = 1), with fn's NaN taking the all-ones significand (largest 2^(M+1) - 2), and
// for IEEE-like formats whose top binade holds inf / NaN.
TEST(Accumulator, KulischFormulaIsExactWhenTheLargestProductReachesTheTopBit) {
  for (const std::string options : {":specials=none", ":specials=fn"}) {
    const bool fn = options == ":specials=fn";
    for (const auto& w : minifloat_formats(options))
      for (const auto& a : minifloat_formats(options)) {
        if (w.starts_with("e1m0:specials=fn") || a.starts_with("e1m0:specials=fn")) continue;  // only zeros and NaN: not a format
        const MacConfig c = make_mac_config(w, a, 64);
        const AccumulatorPlan p = plan_accumulator(c);
        const int ma = c.weight.minifloat_params().mantissa_bits, mb = c.activation.minifloat_params().mantissa_bits;
        auto largest = [&](int m) { return (1 << (m + 1)) - 1 - (fn ? 1 : 0); };
        const bool reaches = ma > 0 && mb > 0 && largest(ma) * largest(mb) >= (1 << (ma + mb + 1));
        if (reaches) ASSERT_EQ(p.exact_bits, p.formula_bits) << c.to_string();
        else ASSERT_LT(p.exact_bits, p.formula_bits) << c.to_string();
      }
  }
  EXPECT_EQ(plan_accumulator(make_mac_config("float8_e4m3fn", "float8_e4m3fn", 64)).exact_bits, 43);  // = formula
  const AccumulatorPlan ieee = plan_accumulator(make_mac_config("e4m3", "e4m3", 64));
  EXPECT_EQ(ieee.formula_bits - ieee.exact_bits, 2);  // one binade per operand holds inf / NaN
}

TEST(Accumulator, ExactWidthMatchesBruteForceForMinifloatAndFixedPairs) {
  std::vector<std::string> formats = {"float4_e2m1fn", "float6_e3m2fn", "float6_e2m3fn", "float8_e4m3fn", "float8_e5m2", "e4m3:bias=8,specials=fnuz",
                                      "e3m2:subnormals=off", "ue4m4", "fixed<6,2>", "ufixed<5,-1>", "int8n", "int4", "uint3"};
  for (const auto& w : formats)
    for (const auto& a : formats) {
      const MacConfig c = make_mac_config(w, a, 100);
      const AccumulatorPlan p = plan_accumulator(c);
      ASSERT_EQ(p.exact_bits, brute_force_width(c, p.product_lsb_exponent)) << c.to_string();
    }
  // Fixed point tracks the binary point: fixed<6,2> has 4 fraction bits, int4 none.
  EXPECT_EQ(plan_accumulator(make_mac_config("fixed<6,2>", "int4", 64)).lsb_exponent, -4);
  EXPECT_EQ(plan_accumulator(make_mac_config("fixed<6,2>", "fixed<8,3>", 64)).lsb_exponent, -9);
}

TEST(Accumulator, NarrowerRegisterDropsLowBitsAndStillHoldsTheSum) {
  const MacConfig exact = make_mac_config("float8_e4m3fn", "float8_e4m3fn", 64);
  const AccumulatorPlan full = plan_accumulator(exact);
  EXPECT_EQ(full.exact_bits, 2 * 16 + 2 * 3 + 6 - 1);
  const MacConfig narrow = make_mac_config("float8_e4m3fn", "float8_e4m3fn", 64, 24);
  const AccumulatorPlan p = plan_accumulator(narrow);
  EXPECT_EQ(p.bits, 24);
  EXPECT_EQ(p.dropped_lsbs, full.exact_bits - 24);
  EXPECT_EQ(p.lsb_exponent, full.lsb_exponent + p.dropped_lsbs);
  // The narrowed emulation is the exact one truncated product by product: toward zero for the
  // sign-magnitude products of minifloats, by floor for two's complement integer products.
  EXPECT_TRUE(p.sign_magnitude);
  MacEmulator a(exact), b(narrow);
  for (uint32_t k = 0; k < 64; ++k) {
    a.reset(), b.reset();
    a.step(0xfe - k, 0x35 + k);  // negative products
    b.step(0xfe - k, 0x35 + k);
    ASSERT_TRUE(a.accumulator().negative());
    EXPECT_EQ(b.accumulator(), -((-a.accumulator()).shifted_right(p.dropped_lsbs)));
  }
  const MacConfig ints = make_mac_config("int8", "int8", 64, 16);
  const AccumulatorPlan q = plan_accumulator(ints);
  EXPECT_FALSE(q.sign_magnitude);
  MacEmulator c(make_mac_config("int8", "int8", 64)), d(ints);
  c.step(0x81, 0x7f), d.step(0x81, 0x7f);  // -127 * 127
  EXPECT_EQ(d.accumulator(), c.accumulator().shifted_right(q.dropped_lsbs));
}

TEST(Accumulator, RefusesWhatAMacCannotTake) {
  EXPECT_THROW(make_mac_config("mxfp4", "int8", 64), std::invalid_argument);
  EXPECT_THROW(make_mac_config("binary", "int8", 64), std::invalid_argument);
  EXPECT_THROW(make_mac_config("int8", "int8", 0), std::invalid_argument);
  EXPECT_THROW(make_mac_config("int9x", "int8", 64), FormatError);
  EXPECT_THROW(plan_accumulator(make_mac_config("int8", "int8", 64, 3)), std::invalid_argument);
}

TEST(Emulation, ProductsComeFromTheFormatDecode) {
  const MacConfig c = make_mac_config("float4_e2m1fn", "int4", 8);
  MacEmulator e(c);
  // e2m1: code 0x7 = 6.0, code 0xF = -6.0; int4 code 0x8 = -8.
  e.step(0x7, 0x8);
  EXPECT_DOUBLE_EQ(e.value(), -48.0);
  e.step(0xF, 0x8);
  EXPECT_DOUBLE_EQ(e.value(), 0.0);
  e.step(0x1, 0x3);  // 0.5 * 3 (a subnormal)
  EXPECT_DOUBLE_EQ(e.value(), 1.5);
  // IEEE-like e3m2: inf and NaN codes add nothing.
  MacEmulator f(make_mac_config("e3m2", "int4", 8));
  f.step(0x1C, 0x1);  // +inf
  f.step(0x1D, 0x1);  // NaN
  EXPECT_DOUBLE_EQ(f.value(), 0.0);
}

}  // namespace
}  // namespace lowbit::hw
