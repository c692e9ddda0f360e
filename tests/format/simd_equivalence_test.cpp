// The fast fake-quant path (every SIMD target this CPU has, 1 and 2 threads) must equal the scalar
// reference bit for bit: at least 10^7 random inputs per format family, specials included.
// LOWBIT_TEST_SCALE (a fraction, default 1) shrinks the counts for sanitizer builds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/format/fake_quant.hpp"
#include "tests/format/test_formats.hpp"

namespace lowbit {
namespace {

double scale_factor() {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  return s ? std::atof(s) : 1.0;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

bool same(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return bits_of(a) == bits_of(b);
}

// Random inputs that hit a format where it is hard: its grid points, midpoints and the float32
// neighbours of both, every float32 bit pattern (NaN, inf, subnormals), and smooth values.
std::vector<float> hard_inputs(std::mt19937& rng, size_t n, const std::vector<double>& grid, double span) {
  std::vector<float> v(n);
  std::uniform_int_distribution<uint32_t> any;
  std::normal_distribution<double> normal(0.0, span);
  std::uniform_int_distribution<size_t> pick(0, grid.empty() ? 0 : grid.size() - 1);
  for (float& x : v) {
    const uint32_t kind = any(rng) % 8;
    if (kind == 0 || grid.size() < 2) {
      const uint32_t b = any(rng);
      std::memcpy(&x, &b, 4);
    } else if (kind <= 4) {
      const size_t i = pick(rng);
      double g = grid[i];
      if (kind >= 3 && i + 1 < grid.size()) g = (grid[i] + grid[i + 1]) / 2;  // midpoint
      x = static_cast<float>(g);
      const int step = static_cast<int>(any(rng) % 3) - 1;  // one float32 ulp either side
      if (step) x = std::nextafter(x, step > 0 ? INFINITY : -INFINITY);
    } else {
      x = static_cast<float>(normal(rng));
    }
  }
  return v;
}

std::vector<double> grid_of(const ScalarFormat& f) {
  std::vector<double> g;
  if (f.bits() > 16) return g;
  for (uint64_t c = 0; c < f.code_count(); ++c) {
    const double v = f.decode(static_cast<uint32_t>(c));
    if (std::isfinite(v)) g.push_back(v);
  }
  std::sort(g.begin(), g.end());
  return g;
}

std::vector<std::string> targets() {
  return available_simd_targets();
}

const Rounding kModes[] = {Rounding::NearestEven, Rounding::NearestAway, Rounding::NearestUp,
                           Rounding::NearestDown, Rounding::NearestZero, Rounding::TowardZero,
                           Rounding::Down,        Rounding::Up,          Rounding::Stochastic};

// Compares the fast path with the reference on `in` for every target and thread count.
// Returns the number of elements compared (per target).
size_t compare(const Format& f, const std::vector<float>& in, std::span<const int64_t> shape, FakeQuantOptions opt) {
  std::vector<float> want(in.size()), got(in.size());
  fake_quant_reference(f, in, want, shape, opt);
  for (const std::string& t : targets()) {
    restrict_simd_target(t);
    for (int threads : {1, 2}) {
      opt.threads = threads;
      fake_quant(f, in, got, shape, opt);
      size_t bad = 0;
      for (size_t i = 0; i < in.size(); ++i) {
        if (!same(want[i], got[i]) && bad++ < 3)
          ADD_FAILURE() << f.to_string() << " target " << t << " threads " << threads << " rounding "
                        << to_string(opt.rounding.value_or(Rounding::NearestEven)) << ": x=" << std::hexfloat << in[i]
                        << " got " << got[i] << " want " << want[i];
      }
      if (bad) {
        restrict_simd_target("all");
        return in.size();
      }
    }
  }
  restrict_simd_target("all");
  return in.size();
}

size_t run_family(const std::vector<ScalarFormat>& formats, size_t total, bool all_modes, uint32_t seed) {
  std::mt19937 rng(seed);
  size_t done = 0;
  const size_t runs = formats.size() * (all_modes ? std::size(kModes) : 1);
  const size_t per = std::max<size_t>(257, total / runs + 1);
  for (const ScalarFormat& f : formats) {
    const std::vector<double> grid = grid_of(f);
    const double span = std::max(std::fabs(f.max()), std::fabs(f.lowest()));
    for (Rounding r : kModes) {
      if (!all_modes && r != Rounding::NearestEven) continue;
      const std::vector<float> in = hard_inputs(rng, per, grid, span);
      FakeQuantOptions opt;
      if (all_modes) opt.rounding = r;
      opt.seed = static_cast<uint32_t>(rng());
      done += compare(Format(f), in, {}, opt);
      if (::testing::Test::HasFailure()) return done;
    }
  }
  return done;
}

size_t target_count() { return std::max<size_t>(1, static_cast<size_t>(1e7 * scale_factor())); }

TEST(SimdEquivalence, ListsTargets) {
  const auto t = targets();
  ASSERT_FALSE(t.empty());
  std::string names;
  for (auto& n : t) names += n + " ";
  std::printf("SIMD targets checked: %s(best: %s)\n", names.c_str(), simd_target().c_str());
}

TEST(SimdEquivalence, Integers) {
  auto formats = test::small_integer_formats();
  for (int b : {12, 16}) formats.push_back(ScalarFormat::integer({b, true, false}));
  EXPECT_GE(run_family(formats, target_count(), true, 1), target_count());
}

TEST(SimdEquivalence, Minifloats) {
  auto formats = test::small_minifloat_formats();
  for (const char* s : {"float16", "bfloat16", "e5m10:saturate=no", "e8m3", "ue8m7", "e6m9", "e4m11", "ue5m11"})
    formats.push_back(*Format::parse(s).scalar());
  EXPECT_GE(run_family(formats, target_count(), true, 2), target_count());
}

TEST(SimdEquivalence, FixedPoint) {
  // Every small fixed format in its own mode, plus wider ones.
  auto formats = test::small_fixed_formats();
  for (const char* s : {"fixed<16,6,AP_RND_CONV,AP_SAT>", "fixed<24,-3,AP_TRN,AP_WRAP>", "ufixed<12,12,AP_RND,AP_SAT_SYM>",
                        "fixed<20,40,AP_RND_INF,AP_SAT_ZERO>", "fixed<18,4,AP_RND_MIN_INF,AP_WRAP_SM,3>"})
    formats.push_back(*Format::parse(s).scalar());
  std::mt19937 rng(3);
  size_t done = 0;
  const size_t per = std::max<size_t>(257, target_count() / formats.size() + 1);
  for (const ScalarFormat& f : formats) {
    const std::vector<double> grid = grid_of(f);
    const std::vector<float> in = hard_inputs(rng, per, grid, std::fabs(f.lowest()) * 1.5);
    done += compare(Format(f), in, {}, {});
    if (HasFailure()) break;
  }
  EXPECT_GE(done, target_count());
}

TEST(SimdEquivalence, BlockScaled) {
  const char* specs[] = {
      "mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "nvfp4",
      "block(e2m1:specials=none,scale=e8m0,size=32,rule=ceil)",
      "block(e2m1:specials=none,scale=e8m0,size=32,rule=nearest)",
      "block(int4,scale=fp32,size=20,rule=nearest)",
      "block(e3m2:specials=none,scale=pow2,size=16,rule=ceil)",
      "block(e4m3:specials=fn,scale=e4m3:specials=fn,size=64,rule=ceil,tensor_scale=fp32)",
      "block(e2m1:specials=none,scale=e8m0,size=8,rule=floor,axis=0)",
  };
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> exponent(-140, 120);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<uint32_t> any;
  size_t done = 0;
  const size_t per_format = target_count() / std::size(specs) + 1;
  for (const char* spec : specs) {
    const Format f = Format::parse(spec);
    const int64_t cols = 320, rows = static_cast<int64_t>(per_format / cols / 4 + 1);
    const std::vector<int64_t> shape{rows, cols};
    for (Rounding r : {Rounding::NearestEven, Rounding::NearestAway, Rounding::Down, Rounding::Stochastic}) {
      std::vector<float> in(static_cast<size_t>(rows * cols));
      for (size_t b = 0; b < in.size(); b += 16) {  // runs of 16 share a magnitude, spanning float32
        const float mag = std::ldexp(1.0f, exponent(rng));
        for (size_t k = b; k < std::min(in.size(), b + 16); ++k) {
          in[k] = normal(rng) * mag;
          if (any(rng) % 4096 == 0) {
            const uint32_t bits = any(rng);
            std::memcpy(&in[k], &bits, 4);
          }
        }
      }
      FakeQuantOptions opt;
      opt.rounding = r;
      opt.seed = 11;
      done += compare(f, in, shape, opt);
      if (HasFailure()) return;
    }
  }
  EXPECT_GE(done, target_count());
}

}  // namespace
}  // namespace lowbit
