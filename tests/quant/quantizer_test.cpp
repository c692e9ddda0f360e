#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit {
namespace {

std::vector<float> laplace(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = (rng() & 1 ? 1.0f : -1.0f) * e(rng) * scale;
  return v;
}

TEST(Quantizer, PerChannelSymmetricInt8MatchesTheFormula) {
  const std::vector<int64_t> shape{4, 16};
  std::vector<float> w = laplace(64, 1);
  for (int64_t k = 0; k < 16; ++k) w[16 + k] *= 10;  // channel 1 is ten times wider
  QuantizerConfig c(Format::parse("int8"));
  c.granularity = Granularity::Channel;
  c.axis = 0;
  Quantizer q(c);
  q.observe(w, shape);
  const QuantParams p = q.compute_params();
  ASSERT_EQ(p.scale.size(), 4u);
  EXPECT_TRUE(p.zero_point.empty());
  std::vector<float> y(w.size());
  q.fake_quant(w, y, shape);
  for (int64_t ch = 0; ch < 4; ++ch) {
    float amax = 0;
    for (int64_t k = 0; k < 16; ++k) amax = std::max(amax, std::fabs(w[ch * 16 + k]));
    EXPECT_EQ(p.scale[ch], amax / 127.0f);
    for (int64_t k = 0; k < 16; ++k) {
      const float x = w[ch * 16 + k];
      const float want = std::clamp(std::nearbyint(x / p.scale[ch]), -128.0f, 127.0f) * p.scale[ch];
      EXPECT_EQ(y[ch * 16 + k], want);
    }
  }
}

TEST(Quantizer, GroupAndTokenSlices) {
  QuantizerConfig c(Format::parse("int4"));
  c.granularity = Granularity::Group;
  c.group_size = 4;
  c.axis = 1;
  EXPECT_EQ(Quantizer(c).slice_count(std::vector<int64_t>{2, 8}, 16), 4u);
  EXPECT_EQ(Quantizer(c).slice_count(std::vector<int64_t>{2, 10}, 20), 6u);  // a short last group
  c.axis = 0;
  EXPECT_EQ(Quantizer(c).slice_count(std::vector<int64_t>{8, 3}, 24), 6u);  // groups down columns
  c.granularity = Granularity::Token;
  EXPECT_EQ(Quantizer(c).slice_count(std::vector<int64_t>{3, 5, 7}, 105), 15u);
  // Group along axis 0: each column's groups get their own scale.
  c.granularity = Granularity::Group;
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[i] = (i % 3 == 0) ? 100.0f + i : 1.0f + 0.1f * i;
  Quantizer q(c);
  q.observe(x, std::vector<int64_t>{8, 3});
  std::vector<float> y(24);
  q.fake_quant(x, y, std::vector<int64_t>{8, 3});
  EXPECT_NEAR(y[1], x[1], 0.2);  // column 1 is not swamped by column 0's large values
}

TEST(Quantizer, AsymmetricUint8AsOnnx) {
  const std::vector<float> x{-1.0f, 0.5f, 2.0f, 3.0f, 1.25f};
  QuantizerConfig c(Format::parse("uint8"));
  c.symmetric = false;
  Quantizer q(c);
  q.observe(x, {});
  const QuantParams p = q.compute_params();
  EXPECT_EQ(p.scale[0], 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point[0], std::nearbyint(0.0f - (-1.0f) / (4.0f / 255.0f)));
  std::vector<int32_t> codes(x.size());
  q.quantize_to_integers(x, codes, {});
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[3], 255);
  std::vector<float> y(x.size());
  q.fake_quant(x, y, {});
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], p.scale[0] / 2 + 1e-7);
}

// The asymmetric fast path (SIMD, nearest-even) against ONNX's formula computed element by element:
// y = (clamp(round_half_even(fl32(x / s)) + z, lowest, max) - z) * s, NaN -> 0. Ties, values beyond
// the range, infinities and NaN included; 1 and 2 threads, lengths that leave SIMD tails.
TEST(Quantizer, AsymmetricFakeQuantMatchesTheFormulaBitForBit) {
  for (const char* spec : {"uint8", "int8", "int4", "uint3"}) {
    for (float zero : {0.0f, 3.0f, -2.0f}) {
      const Format f = Format::parse(spec);
      const double lowest = f.scalar()->lowest(), highest = f.scalar()->max();
      if (zero < lowest || zero > highest) continue;
      for (size_t n : {size_t{1}, size_t{17}, size_t{100003}}) {
        std::vector<float> x = laplace(n, static_cast<uint32_t>(n), 40.0f);
        const float s = 0.37f;
        for (size_t i = 0; i < n; i += 7) x[i] = (static_cast<float>(i % 300) - 150.0f + 0.5f) * s;  // ties (as far as fl32 allows)
        if (n > 20) {
          x[3] = NAN;
          x[5] = INFINITY;
          x[8] = -INFINITY;
          x[13] = -0.0f;
        }
        for (int threads : {1, 2}) {
          QuantizerConfig c(f);
          c.symmetric = false;
          c.threads = threads;
          Quantizer q(c);
          q.set_params({{s}, {zero}});
          std::vector<float> y(n);
          q.fake_quant(x, y, {});
          for (size_t i = 0; i < n; ++i) {
            const float v = x[i] / s;
            float want = 0.0f;
            if (!std::isnan(v)) {
              const double r = std::nearbyint(static_cast<double>(v));  // default rounding: half to even
              const double code = std::clamp(r + zero, lowest, highest);
              want = static_cast<float>(code - zero) * s;
            }
            ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want))
                << spec << " z=" << zero << " n=" << n << " i=" << i << " x=" << x[i];
          }
        }
      }
    }
  }
}

TEST(Quantizer, ObserversClipOutliers) {
  std::vector<float> x = laplace(100000, 2);
  x[17] = 1000.0f;  // one outlier
  // SQNR over everything (bulk = all but the outlier).
  auto sqnr_with = [&](ObserverKind o, bool bulk) {
    QuantizerConfig c(Format::parse("int4"));
    c.observer = o;
    c.percentile = 99.9;
    Quantizer q(c);
    q.observe(x, {});
    std::vector<float> y(x.size());
    q.fake_quant(x, y, {});
    if (!bulk) return sqnr_db(x, y);
    std::vector<float> xb(x), yb(y);
    xb.erase(xb.begin() + 17);
    yb.erase(yb.begin() + 17);
    return sqnr_db(xb, yb);
  };
  EXPECT_GT(sqnr_with(ObserverKind::Percentile, true), sqnr_with(ObserverKind::MinMax, true) + 10);
  EXPECT_GE(sqnr_with(ObserverKind::Mse, false), sqnr_with(ObserverKind::MinMax, false));
}

TEST(Quantizer, MseNeverWorseThanMinMaxOnSmoothData) {
  const std::vector<float> x = laplace(50000, 3);
  for (const char* spec : {"int4", "int3", "e2m1:specials=none", "fixed<6,6,AP_RND_CONV,AP_SAT>"}) {
    QuantizerConfig c(Format::parse(spec));
    Quantizer a(c);
    c.observer = ObserverKind::Mse;
    Quantizer b(c);
    a.observe(x, {});
    b.observe(x, {});
    std::vector<float> ya(x.size()), yb(x.size());
    a.fake_quant(x, ya, {});
    b.fake_quant(x, yb, {});
    EXPECT_GE(sqnr_db(x, yb), sqnr_db(x, ya) - 1e-9) << spec;
  }
}

TEST(Quantizer, RunningObserverAverages) {
  QuantizerConfig c(Format::parse("int8"));
  c.observer = ObserverKind::Running;
  c.momentum = 0.5;
  Quantizer q(c);
  q.observe(std::vector<float>{-1.0f, 1.0f}, {});
  q.observe(std::vector<float>{-3.0f, 3.0f}, {});
  EXPECT_EQ(q.compute_params().scale[0], 2.0f / 127.0f);
}

TEST(Quantizer, ScaleStorage) {
  const std::vector<float> x{0.3f, -0.7f, 0.1f};
  for (auto [storage, check] : std::vector<std::pair<ScaleStorage, double (*)(double)>>{
           {ScaleStorage::Pow2, [](double s) { return std::exp2(std::round(std::log2(s))); }},
           {ScaleStorage::E8M0, [](double s) { return std::exp2(std::round(std::log2(s))); }},
           {ScaleStorage::E4M3, [](double s) { return Format::parse("float8_e4m3fn").scalar()->quantize(s); }}}) {
    QuantizerConfig c(Format::parse("int8"));
    c.scale_storage = storage;
    Quantizer q(c);
    q.observe(x, {});
    const float s = q.compute_params().scale[0];
    EXPECT_EQ(s, check(s)) << to_string(storage);
    EXPECT_NEAR(s, 0.7 / 127, 0.7 / 127 / 2) << to_string(storage);
  }
}

TEST(Quantizer, BlockFormatsUseTheirOwnScales) {
  const std::vector<float> x = laplace(256, 4);
  Quantizer q(QuantizerConfig(Format::parse("mxfp4")));
  std::vector<float> a(x.size()), b(x.size());
  q.fake_quant(x, a, {});
  fake_quant(Format::parse("mxfp4"), x, b);
  EXPECT_EQ(a, b);
}

TEST(Quantizer, RefusesWhatItCannotServe) {
  QuantizerConfig c(Format::parse("e4m3"));
  c.symmetric = false;
  EXPECT_THROW(Quantizer{c}, std::invalid_argument);
  QuantizerConfig b(Format::parse("mxfp4"));
  b.granularity = Granularity::Channel;
  EXPECT_THROW(Quantizer{b}, std::invalid_argument);
  QuantizerConfig d(Format::parse("int8"));
  d.granularity = Granularity::Channel;
  d.axis = 5;
  Quantizer q(d);
  std::vector<float> x(6);
  EXPECT_THROW(q.observe(x, std::vector<int64_t>{2, 3}), std::invalid_argument);
}

}  // namespace
}  // namespace lowbit
