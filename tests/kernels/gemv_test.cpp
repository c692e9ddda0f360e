// Every kernel instruction set against the scalar reference gemm_reference().
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "lowbit/kernels/blocks.hpp"
#include "lowbit/kernels/gemv.hpp"
#include "tests/kernels/test_data.hpp"

namespace lowbit::kernels {
namespace {

// Formats whose kernels compute exact integer dot products per block (MXFP4 on int8 activations:
// 2 x E2M1 values; its power-of-two block scales keep the test's sums exact, NVFP4's tensor scale
// does not).
constexpr StorageFormat kIntegerFormats[] = {StorageFormat::Int8, StorageFormat::Int4G32, StorageFormat::Int4G128,
                                             StorageFormat::Int3, StorageFormat::Int2,    StorageFormat::Int2Lut,
                                             StorageFormat::Mxfp4A8};

int qmax(StorageFormat f) {
  switch (f) {
    case StorageFormat::Int8: return 127;
    case StorageFormat::Int4G32:
    case StorageFormat::Int4G128: return 7;
    case StorageFormat::Int3: return 3;
    default: return 1;
  }
}

// Restores automatic kernel choice however a test ends.
struct IsaGuard {
  explicit IsaGuard(const std::string& isa) { force_kernel_isa(isa); }
  ~IsaGuard() { force_kernel_isa("auto"); }
};

struct Shape {
  int64_t rows, cols;
};
constexpr Shape kShapes[] = {{1, 1}, {5, 31}, {16, 64}, {17, 100}, {64, 128}, {65, 129}, {130, 300}, {70, 555}};

// Weights q * 2^e with integer q (each group reaching qmax, so the group's scale is exactly 2^e;
// MXFP4: q any E2M1 value, the group reaching 6) and activations that are integers reaching 127
// (activation scale 1): every partial sum of every kernel is a multiple of 1/2 below 2^23, so float
// accumulation in any order is exact.
std::vector<float> exact_weights(StorageFormat f, Shape s, std::mt19937& rng) {
  const int group = block_elements(f), top = f == StorageFormat::Mxfp4A8 ? 6 : qmax(f);
  std::uniform_int_distribution<int> integer(-top, top), e(0, 1), code(0, 15);
  const auto q = [&](std::mt19937& g) {
    return f == StorageFormat::Mxfp4A8 ? kE2m1Values[code(g)] : static_cast<float>(integer(g));
  };
  std::vector<float> w(static_cast<size_t>(s.rows * s.cols));
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t g0 = 0; g0 < s.cols; g0 += group) {
      const float scale = std::ldexp(1.0f, e(rng));
      const int64_t g1 = std::min(s.cols, g0 + group);
      for (int64_t c = g0; c < g1; ++c) w[r * s.cols + c] = q(rng) * scale;
      w[r * s.cols + g0 + (g1 - g0) / 2] = static_cast<float>(top) * scale * (e(rng) ? 1 : -1);
    }
  return w;
}

std::vector<float> exact_activations(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> q(-127, 127);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = static_cast<float>(q(rng));
  x[x.size() / 3] = -127.0f;
  return x;
}

std::vector<float> run(const PackedMatrix& w, const std::vector<float>& x, int batch, int threads) {
  std::vector<float> y(static_cast<size_t>(batch * w.rows()));
  gemm(w, x, y, batch, threads);
  return y;
}

std::vector<float> reference(const PackedMatrix& w, const std::vector<float>& x, int batch) {
  std::vector<float> y(static_cast<size_t>(batch * w.rows()));
  gemm_reference(w, x, y, batch);
  return y;
}

TEST(Gemv, IntegerKernelsAreExact) {
  std::mt19937 rng(7);
  for (const std::string& isa : available_kernel_isas()) {
    IsaGuard guard(isa);
    for (StorageFormat f : kIntegerFormats)
      for (const Shape& s : kShapes)
        for (int batch : {1, 3, 8}) {
          if (test::test_scale() < 1 && batch == 3) continue;
          // batch vectors of K values each, every vector with amax 127
          std::vector<float> x;
          for (int b = 0; b < batch; ++b) {
            const std::vector<float> v = exact_activations(s.cols, rng);
            x.insert(x.end(), v.begin(), v.end());
          }
          const PackedMatrix w = pack(exact_weights(f, s, rng), s.rows, s.cols, f);
          const std::vector<float> want = reference(w, x, batch);
          for (int threads : {1, 2}) {
            const std::vector<float> got = run(w, x, batch, threads);
            for (size_t i = 0; i < want.size(); ++i)
              ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
                  << isa << " " << to_string(f) << " " << s.rows << "x" << s.cols << " batch " << batch << " threads "
                  << threads << " y[" << i << "] = " << got[i] << ", reference " << want[i];
          }
        }
  }
}

// General weights and activations: float rounding differs with the order of summation, so the
// kernels must agree with the reference to within a few float32 ulps of sum |w x|.
void expect_close(const PackedMatrix& w, const std::vector<float>& x, int batch, const std::vector<float>& got,
                  const std::vector<float>& want, const std::string& what) {
  const std::vector<float> weights = unpack(w);
  for (int b = 0; b < batch; ++b)
    for (int64_t r = 0; r < w.rows(); ++r) {
      double magnitude = 0;
      for (int64_t k = 0; k < w.cols(); ++k)
        magnitude += std::fabs(static_cast<double>(weights[r * w.cols() + k]) * x[b * w.cols() + k]);
      const size_t i = static_cast<size_t>(b * w.rows() + r);
      ASSERT_NEAR(got[i], want[i], 4e-6 * magnitude + 1e-30) << what << " batch row " << b << " row " << r;
    }
}

TEST(Gemv, AllKernelsMatchTheReference) {
  uint32_t seed = 100;
  for (const std::string& isa : available_kernel_isas()) {
    IsaGuard guard(isa);
    for (StorageFormat f : kAllStorageFormats)
      for (const Shape& s : kShapes) {
        const int batch = 1 + static_cast<int>(seed % 8);
        const PackedMatrix w = pack(test::random_weights(s.rows * s.cols, seed++), s.rows, s.cols, f);
        const std::vector<float> x = test::random_activations(batch * s.cols, seed++);
        const std::vector<float> want = reference(w, x, batch);
        const std::string what = fmt::format("{} {} {}x{} batch {}", isa, to_string(f), s.rows, s.cols, batch);
        const std::vector<float> one_thread = run(w, x, batch, 1);
        expect_close(w, x, batch, one_thread, want, what);
        // Threads split rows only: the same arithmetic per row.
        EXPECT_EQ(run(w, x, batch, 2), one_thread) << what;
        // A batch computes each vector exactly as a single GEMV does.
        for (int b = 0; b < batch; ++b) {
          const std::vector<float> xb(x.begin() + b * s.cols, x.begin() + (b + 1) * s.cols);
          const std::vector<float> yb = run(w, xb, 1, 1);
          for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(yb[r], one_thread[b * s.rows + r]) << what << " vector " << b;
        }
      }
  }
}

// Every block scale code, on every instruction set: pack() writes only positive finite scales, but a
// packed matrix may hold any byte, and the kernels must read it as the reference does (NaN codes
// give NaN rows, negative E4M3 scales negative products). Row r's block r % 3 (MXFP4) or r % 6
// (NVFP4) takes code r (NVFP4: all 256; MXFP4: 2^-20..2^20 and the NaN code 255, where no product
// overflows).
TEST(Gemv, E2m1KernelsReadEveryScaleCode) {
  for (const std::string& isa : available_kernel_isas()) {
    IsaGuard guard(isa);
    for (StorageFormat f : {StorageFormat::Mxfp4, StorageFormat::Nvfp4, StorageFormat::Mxfp4A8, StorageFormat::Nvfp4A8}) {
      const bool nv = f == StorageFormat::Nvfp4 || f == StorageFormat::Nvfp4A8;
      std::vector<int> codes;
      for (int c = 0; c < 256; ++c)
        if (nv || std::abs(c - 127) <= 20 || c == 255) codes.push_back(c);
      const int64_t rows = static_cast<int64_t>(codes.size()), cols = 96;
      PackedMatrix w = pack(test::random_weights(rows * cols, 11), rows, cols, f);
      for (int64_t r = 0; r < rows; ++r) {
        std::byte* row = w.data() + r * w.row_bytes();
        const uint8_t code = static_cast<uint8_t>(codes[r]);
        if (nv) reinterpret_cast<BlockNvfp4x8*>(row)->scale_e4m3[r % 6] = code;
        else reinterpret_cast<BlockMxfp4x4*>(row)->scale_e8m0[r % 3] = code;
      }
      const int batch = 2;
      const std::vector<float> x = test::random_activations(batch * cols, 12);
      const std::vector<float> want = reference(w, x, batch), got = run(w, x, batch, 1);
      const std::vector<float> weights = unpack(w);
      for (int b = 0; b < batch; ++b)
        for (int64_t r = 0; r < rows; ++r) {
          const size_t i = static_cast<size_t>(b * rows + r);
          const std::string what = fmt::format("{} {} scale code {:#x} vector {}", isa, to_string(f), codes[r], b);
          ASSERT_EQ(std::isnan(got[i]), std::isnan(want[i])) << what << ": " << got[i] << " vs " << want[i];
          if (std::isnan(want[i])) continue;
          double magnitude = 0;
          for (int64_t k = 0; k < cols; ++k) magnitude += std::fabs(static_cast<double>(weights[r * cols + k]) * x[b * cols + k]);
          ASSERT_NEAR(got[i], want[i], 4e-6 * magnitude + 1e-30) << what;
        }
    }
  }
}

// The smallest E8M0 scales, 2^-127 (code 0, a float32 subnormal) .. 2^-125, under activations of
// about 2^100, so that the products are normal floats and the tolerance is relative.
TEST(Gemv, Mxfp4KernelsReadTheSubnormalScale) {
  for (const std::string& isa : available_kernel_isas()) {
    IsaGuard guard(isa);
    for (StorageFormat f : {StorageFormat::Mxfp4, StorageFormat::Mxfp4A8}) {
      const int64_t rows = 3, cols = 128;
      PackedMatrix w = pack(test::random_weights(rows * cols, 13), rows, cols, f);
      for (int64_t r = 0; r < rows; ++r)
        for (uint8_t& code : reinterpret_cast<BlockMxfp4x4*>(w.data() + r * w.row_bytes())->scale_e8m0)
          code = static_cast<uint8_t>(r);
      std::vector<float> x = test::random_activations(cols, 14);
      for (float& v : x) v = std::ldexp(v, 100);
      const std::vector<float> want = reference(w, x, 1), got = run(w, x, 1, 1);
      const std::vector<float> weights = unpack(w);
      for (int64_t r = 0; r < rows; ++r) {
        double magnitude = 0;
        for (int64_t k = 0; k < cols; ++k) magnitude += std::fabs(static_cast<double>(weights[r * cols + k]) * x[k]);
        ASSERT_GT(magnitude, 1e-20) << isa << " " << to_string(f) << " row " << r;
        ASSERT_NEAR(got[r], want[r], 4e-6 * magnitude) << isa << " " << to_string(f) << " scale code " << r;
      }
    }
  }
}

TEST(Gemv, RealLayersOfStories260K) {
  // h = W1 e, y = W2 h for token embeddings e: real weights, real activations, ragged K = 172.
  const test::Stories260K model = test::load_stories260k();
  for (const std::string& isa : available_kernel_isas()) {
    IsaGuard guard(isa);
    for (StorageFormat f : kAllStorageFormats) {
      const PackedMatrix w1 = pack(model.w1.values, model.w1.rows, model.w1.cols, f);
      const PackedMatrix w2 = pack(model.w2.values, model.w2.rows, model.w2.cols, f);
      for (int token : {1, 100, 300}) {
        const std::vector<float> e(model.embedding.values.begin() + token * model.embedding.cols,
                                   model.embedding.values.begin() + (token + 1) * model.embedding.cols);
        const std::vector<float> h = reference(w1, e, 1);
        expect_close(w1, e, 1, run(w1, e, 1, 2), h, fmt::format("{} {} w1 token {}", isa, to_string(f), token));
        expect_close(w2, h, 1, run(w2, h, 1, 2), reference(w2, h, 1),
                     fmt::format("{} {} w2 token {}", isa, to_string(f), token));
      }
    }
  }
}

TEST(Gemv, QuantizedGemvStaysCloseToFloat) {
  // Sanity of the whole path: 8-bit weights and activations keep the output within 2 % (relative
  // RMS) of the float32 GEMV on a real layer.
  const test::Stories260K model = test::load_stories260k();
  const PackedMatrix f32 = pack(model.w1.values, model.w1.rows, model.w1.cols, StorageFormat::F32);
  const PackedMatrix int8 = pack(model.w1.values, model.w1.rows, model.w1.cols, StorageFormat::Int8);
  const std::vector<float> e(model.embedding.values.begin() + 64 * 5, model.embedding.values.begin() + 64 * 6);
  const std::vector<float> exact = run(f32, e, 1, 1), quantized = run(int8, e, 1, 1);
  double err = 0, sig = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    err += (exact[i] - quantized[i]) * (exact[i] - quantized[i]);
    sig += exact[i] * exact[i];
  }
  EXPECT_LT(std::sqrt(err / sig), 0.02);
}

TEST(Gemv, ActivationQuantizationRoundsHalfToEven) {
  // Against the definition, element by element: q = clamp(nearbyint(x / s), -127, 127), s = amax / 127.
  for (int64_t n : {1, 31, 32, 100, 4099}) {
    std::vector<float> x = test::random_activations(n, static_cast<uint32_t>(n));
    std::vector<int8_t> q(static_cast<size_t>(n) + 5, 99);
    const float s = quantize_activations_int8(x, q);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    ASSERT_EQ(s, amax / 127.0f);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(q[i], static_cast<int8_t>(std::clamp(std::nearbyint(x[i] / s), -127.0f, 127.0f))) << n << " " << i;
    for (size_t i = static_cast<size_t>(n); i < q.size(); ++i) ASSERT_EQ(q[i], 0) << "padding";
  }
  std::vector<float> halves = {127.0f, 0.5f, 1.5f, -2.5f, 126.5f};
  std::vector<int8_t> q(halves.size());
  EXPECT_EQ(quantize_activations_int8(halves, q), 1.0f);
  EXPECT_EQ(q, (std::vector<int8_t>{127, 0, 2, -2, 126}));
}

TEST(Gemv, SubnormalActivationsKeepAPositiveScale) {
  // amax / 127 underflows to 0 for the smallest subnormals: the scale must stay positive and every
  // code within -127..127 (no division by zero, no NaN converted to an integer).
  const float tiny = std::numeric_limits<float>::denorm_min();
  std::vector<float> x = {0.0f, tiny, -tiny, 3 * tiny, 0.0f, -2 * tiny};
  x.resize(40, tiny);
  std::vector<int8_t> q(x.size());
  const float s = quantize_activations_int8(x, q);
  EXPECT_GT(s, 0.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_GE(q[i], -127) << i;
    ASSERT_LE(q[i], 127) << i;
    ASSERT_EQ(q[i] == 0, x[i] == 0.0f) << i;
    ASSERT_EQ(q[i] < 0, x[i] < 0.0f) << i;
  }
}

TEST(Gemv, KernelChoice) {
  const std::vector<std::string> isas = available_kernel_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.back(), "scalar");
  EXPECT_EQ(isas.front(), best_kernel_isa());
  {
    IsaGuard guard("scalar");
    EXPECT_EQ(kernel_isa(), "scalar");
  }
  EXPECT_EQ(kernel_isa(), best_kernel_isa());
  EXPECT_THROW(force_kernel_isa("avx1024"), std::invalid_argument);
}

TEST(Gemv, SizeMismatchesAreRefused) {
  const PackedMatrix w = pack(test::random_weights(6, 1), 2, 3, StorageFormat::Int8);
  std::vector<float> x(3), y(2), y_short(1), x_two(6);
  EXPECT_NO_THROW(gemv(w, x, y));
  EXPECT_THROW(gemv(w, x, y_short), std::invalid_argument);
  EXPECT_THROW(gemv(w, x_two, y), std::invalid_argument);
  EXPECT_THROW(gemm(w, x, y, 0), std::invalid_argument);
  std::vector<float> y_two(4);
  EXPECT_NO_THROW(gemm(w, x_two, y_two, 2, 2));
}

TEST(Gemv, NonFiniteActivationsGiveNaN) {
  for (StorageFormat f : {StorageFormat::F32, StorageFormat::Int4G32, StorageFormat::Mxfp4, StorageFormat::Mxfp4A8,
                          StorageFormat::Nvfp4A8}) {
    const PackedMatrix w = pack(test::random_weights(64, 3), 2, 32, f);
    std::vector<float> x(32, 1.0f), y(2);
    x[5] = std::numeric_limits<float>::quiet_NaN();
    gemv(w, x, y);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1])) << to_string(f);
  }
}

}  // namespace
}  // namespace lowbit::kernels
