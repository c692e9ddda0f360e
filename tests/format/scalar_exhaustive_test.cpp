// Every scalar format of 8 bits or fewer against the specification oracle: decode of every code,
// the properties, and quantize / encode on every value, midpoint and neighbouring float32, on
// NaN, +-inf, +-0 and out-of-range inputs, under every rounding mode.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <string>

#include "tests/format/fmt_double.hpp"
#include "tests/format/oracle.hpp"
#include "tests/format/test_formats.hpp"

namespace lowbit::test {
namespace {

bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

const Rounding kModes[] = {Rounding::NearestEven, Rounding::NearestAway, Rounding::NearestUp,
                           Rounding::NearestDown, Rounding::NearestZero, Rounding::TowardZero,
                           Rounding::Down,        Rounding::Up,          Rounding::Stochastic};
const uint32_t kRandom[] = {0u, 1u, 0x7FFFFFu, 0x800000u, 0xFFFFFFu, 0x123456u};

// Checks one format; returns the number of failures (reporting the first few).
int check_format(const ScalarFormat& f, bool all_modes) {
  const Oracle o(f);
  int failures = 0;
  auto fail = [&](const std::string& what) {
    if (++failures <= 5) ADD_FAILURE() << f.to_string() << ": " << what;
  };
  for (uint64_t c = 0; c < f.code_count(); ++c) {
    const uint32_t code = static_cast<uint32_t>(c);
    const double want = o.decode(code), got = f.decode(code);
    if (!same(want, got)) fail("decode(" + std::to_string(code) + ") = " + std::to_string(got) + ", spec " + std::to_string(want));
    if (!std::isnan(got) && !same(f.decode(f.code_of(got)), got)) fail("code_of(decode(" + std::to_string(code) + ")) round trip");
  }
  if (f.max() != o.max()) fail("max " + std::to_string(f.max()) + " vs " + std::to_string(o.max()));
  if (f.lowest() != o.lowest()) fail("lowest");
  if (f.finite_values() != o.values().size()) fail("finite_values");
  if (f.has_nan() != o.has_nan()) fail("has_nan");
  const auto pos = std::upper_bound(o.values().begin(), o.values().end(), 0.0);
  if (pos != o.values().end() && f.min_subnormal() != *pos) fail("min_subnormal");

  const std::vector<double> inputs = probe_inputs(o.values());
  for (Rounding r : kModes) {
    if (!all_modes && r != f.default_rounding()) continue;
    for (uint32_t rnd : kRandom) {
      if (r != Rounding::Stochastic && rnd != 0) continue;
      for (double x : inputs) {
        const double want = o.quantize(x, r, rnd);
        const double got = f.quantize(x, r, rnd);
        if (!same(want, got)) {
          fail("quantize(" + fmt_double(x) + ", " + std::string(to_string(r)) + ", rnd " + std::to_string(rnd) +
               ") = " + fmt_double(got) + ", spec " + fmt_double(want));
          continue;
        }
        if (!same(f.decode(f.encode(x, r, rnd)), got)) fail("decode(encode(" + fmt_double(x) + ")) != quantize");
      }
    }
  }
  return failures;
}

TEST(ScalarExhaustive, IntegersAndBinary) {
  const auto formats = small_integer_formats();
  EXPECT_EQ(formats.size(), 24u);
  for (const ScalarFormat& f : formats) check_format(f, true);
}

TEST(ScalarExhaustive, Minifloats) {
  const auto formats = small_minifloat_formats();
  EXPECT_GT(formats.size(), 800u);
  for (const ScalarFormat& f : formats) check_format(f, true);
}

TEST(ScalarExhaustive, FixedPointInItsOwnModes) {
  const auto formats = small_fixed_formats();
  EXPECT_GT(formats.size(), 5000u);
  for (const ScalarFormat& f : formats) check_format(f, false);
}

TEST(ScalarExhaustive, FixedPointUnderEveryRounding) {
  // The rounding vocabulary applies to fixed point too (quantize with an explicit mode).
  for (int W : {3, 6})
    for (FixedOverflow ov : {FixedOverflow::Sat, FixedOverflow::Wrap})
      check_format(ScalarFormat::fixed({W, 2, true, Rounding::NearestEven, ov, 0}), true);
}

}  // namespace
}  // namespace lowbit::test
