// AdaRound: the element-wise parts (rectified sigmoid, gradient, Adam) compiled once per SIMD
// target by Highway and dispatched at run time; the two products of the gradient on oneDNN.
//
// Results do not depend on the thread count: the weight rows are cut into chunks of a fixed size,
// each chunk's products run single-threaded in oneDNN and its element-wise work on fixed ranges.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#ifndef LOWBIT_ADAROUND_STEP_PARAMS
#define LOWBIT_ADAROUND_STEP_PARAMS
namespace lowbit::adaround_simd {
// Per-step constants of the update.
struct StepParams {
  float reg_weight = 0;  // 0: no regularizer
  float beta = 2;
  float lr_t = 0;          // learning rate / (1 - beta1^t)
  float inv_sqrt_bc2 = 1;  // 1 / sqrt(1 - beta2^t)
};
}  // namespace lowbit::adaround_simd
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/ptq/adaround.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::adaround_simd::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr float kZeta = 1.1f, kGamma = -0.1f;

using adaround_simd::StepParams;

template <class D, class V = hn::Vec<D>>
HWY_INLINE V Sigmoid(D d, V v) {
  const V x = hn::Min(hn::Max(hn::Neg(v), hn::Set(d, -80.0f)), hn::Set(d, 80.0f));
  return hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), hn::Exp(d, x)));
}

// h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V SoftRound(D d, V v) {
  const V raw = hn::MulAdd(Sigmoid(d, v), hn::Set(d, kZeta - kGamma), hn::Set(d, kGamma));
  return hn::Min(hn::Max(raw, hn::Zero(d)), hn::Set(d, 1.0f));
}

// dL/dV from gw = dL_rec/dW(V): the chain rule through W(V) = lo + h(V) (hi - lo) and the regularizer.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V GradV(D d, V v, V diff, V gw, const StepParams& p) {
  const V s = Sigmoid(d, v);
  const V raw = hn::MulAdd(s, hn::Set(d, kZeta - kGamma), hn::Set(d, kGamma));
  const auto inside = hn::And(hn::Gt(raw, hn::Zero(d)), hn::Lt(raw, hn::Set(d, 1.0f)));
  const V dh = hn::IfThenElseZero(inside, hn::Mul(hn::Mul(s, hn::Sub(hn::Set(d, 1.0f), s)), hn::Set(d, kZeta - kGamma)));
  V dldh = hn::Mul(gw, diff);
  if (p.reg_weight > 0) {
    // d/dh of reg_weight (1 - |2h - 1|^beta) = -2 reg_weight beta |2h - 1|^(beta - 1) sign(2h - 1).
    const V h = hn::Min(hn::Max(raw, hn::Zero(d)), hn::Set(d, 1.0f));
    const V u = hn::MulAdd(h, hn::Set(d, 2.0f), hn::Set(d, -1.0f));
    const V a = hn::Abs(u);
    const auto positive = hn::Gt(a, hn::Zero(d));
    const V safe = hn::IfThenElse(positive, a, hn::Set(d, 1.0f));
    const V pw = hn::IfThenElseZero(positive, hn::Exp(d, hn::Mul(hn::Set(d, p.beta - 1.0f), hn::Log(d, safe))));
    const V reg = hn::Mul(hn::Set(d, -2.0f * p.reg_weight * p.beta), hn::CopySign(pw, u));
    dldh = hn::Add(dldh, hn::IfThenZeroElse(hn::Eq(diff, hn::Zero(d)), reg));
  }
  return hn::Mul(dldh, dh);
}

// grad[i] = dL/dV for elements [0, n).
template <class D>
HWY_INLINE void GradientRange(D d, size_t& i, size_t n, const float* v, const float* diff, const float* gw, float* grad,
                              const StepParams& p) {
  const size_t L = hn::Lanes(d);
  for (; i + L <= n; i += L)
    hn::StoreU(GradV(d, hn::LoadU(d, v + i), hn::LoadU(d, diff + i), hn::LoadU(d, gw + i), p), d, grad + i);
}

void Gradient(const float* v, const float* diff, const float* gw, float* grad, size_t n, const StepParams& p) {
  size_t i = 0;
  GradientRange(hn::ScalableTag<float>(), i, n, v, diff, gw, grad, p);
  GradientRange(hn::CappedTag<float, 1>(), i, n, v, diff, gw, grad, p);
}

// delta = W(V) - w = base + h(V) diff with base = lo - w: the soft weights' distance from the float weights.
template <class D>
HWY_INLINE void DeltaRange(D d, size_t& i, size_t n, const float* v, const float* base, const float* diff, float* delta) {
  const size_t L = hn::Lanes(d);
  for (; i + L <= n; i += L)
    hn::StoreU(hn::MulAdd(SoftRound(d, hn::LoadU(d, v + i)), hn::LoadU(d, diff + i), hn::LoadU(d, base + i)), d, delta + i);
}

void Delta(const float* v, const float* base, const float* diff, float* delta, size_t n) {
  size_t i = 0;
  DeltaRange(hn::ScalableTag<float>(), i, n, v, base, diff, delta);
  DeltaRange(hn::CappedTag<float, 1>(), i, n, v, base, diff, delta);
}

// One Adam step on V (betas 0.9 / 0.999, eps 1e-8) from gw, then the new delta.
template <class D>
HWY_INLINE void AdamRange(D d, size_t& i, size_t n, float* v, float* m1, float* m2, const float* gw, const float* base,
                          const float* diff, float* delta, const StepParams& p) {
  using V = hn::Vec<D>;
  const size_t L = hn::Lanes(d);
  const V b1 = hn::Set(d, 0.9f), b1c = hn::Set(d, 0.1f), b2 = hn::Set(d, 0.999f), b2c = hn::Set(d, 0.001f);
  const V eps = hn::Set(d, 1e-8f), lr = hn::Set(d, p.lr_t), bc2 = hn::Set(d, p.inv_sqrt_bc2);
  for (; i + L <= n; i += L) {
    V vv = hn::LoadU(d, v + i);
    const V df = hn::LoadU(d, diff + i);
    const V g = GradV(d, vv, df, hn::LoadU(d, gw + i), p);
    const V m = hn::MulAdd(b1, hn::LoadU(d, m1 + i), hn::Mul(b1c, g));
    const V s = hn::MulAdd(b2, hn::LoadU(d, m2 + i), hn::Mul(b2c, hn::Mul(g, g)));
    vv = hn::Sub(vv, hn::Div(hn::Mul(lr, m), hn::MulAdd(hn::Sqrt(s), bc2, eps)));
    hn::StoreU(m, d, m1 + i);
    hn::StoreU(s, d, m2 + i);
    hn::StoreU(vv, d, v + i);
    hn::StoreU(hn::MulAdd(SoftRound(d, vv), df, hn::LoadU(d, base + i)), d, delta + i);
  }
}

void Adam(float* v, float* m1, float* m2, const float* gw, const float* base, const float* diff, float* delta, size_t n,
          const StepParams& p) {
  size_t i = 0;
  AdamRange(hn::ScalableTag<float>(), i, n, v, m1, m2, gw, base, diff, delta, p);
  AdamRange(hn::CappedTag<float, 1>(), i, n, v, m1, m2, gw, base, diff, delta, p);
}

// 1 where h(V) >= 0.5.
void HardRound(const float* v, uint8_t* up, size_t n) {
  const hn::CappedTag<float, 1> d;
  for (size_t i = 0; i < n; ++i) up[i] = hn::GetLane(SoftRound(d, hn::Set(d, v[i]))) >= 0.5f;
}

}  // namespace lowbit::adaround_simd::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <omp.h>

#include <exception>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "lowbit/ptq/adaround.hpp"
#include "src/runtime/ops/conv_geometry.hpp"

namespace lowbit {

namespace adaround_simd {
HWY_EXPORT(Gradient);
HWY_EXPORT(Delta);
HWY_EXPORT(Adam);
HWY_EXPORT(HardRound);
}  // namespace adaround_simd

namespace {

using adaround_simd::StepParams;
constexpr int64_t kChunkRows = 32;  // weight rows per task: fixed, so results do not depend on the thread count

// Sets this thread's OpenMP default to one thread while it lives: oneDNN primitives made and run
// under it are single-threaded, whatever the caller set before.
class SingleThreadedDnnl {
 public:
  SingleThreadedDnnl() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedDnnl() { omp_set_num_threads(saved_); }
  SingleThreadedDnnl(const SingleThreadedDnnl&) = delete;
  SingleThreadedDnnl& operator=(const SingleThreadedDnnl&) = delete;

 private:
  int saved_;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// C[M, N] = alpha A[M, K] B[K, N] in float32; A and B with any strides (transposes), C row-major.
// One object may run on several threads at once: each brings its own scratchpad (with oneDNN's
// default, every execution of a primitive shares the one scratchpad it was made with).
class Matmul {
 public:
  Matmul() = default;
  Matmul(int64_t m, int64_t n, int64_t k, dnnl::memory::dims stride_a, dnnl::memory::dims stride_b, float alpha) {
    using dt = dnnl::memory::data_type;
    a_ = dnnl::memory::desc({m, k}, dt::f32, stride_a);
    b_ = dnnl::memory::desc({k, n}, dt::f32, stride_b);
    c_ = dnnl::memory::desc({m, n}, dt::f32, dnnl::memory::dims{n, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_, b_, c_), attr, cpu_engine());
    scratch_ = pd.scratchpad_desc();
    p_ = dnnl::matmul(pd);
  }
  void operator()(const float* a, const float* b, float* c) const {
    thread_local std::vector<std::byte> scratchpad;
    if (scratchpad.size() < scratch_.get_size()) scratchpad.resize(scratch_.get_size());
    dnnl::stream s(cpu_engine());
    dnnl::memory ma(a_, cpu_engine(), const_cast<float*>(a)), mb(b_, cpu_engine(), const_cast<float*>(b)),
        mc(c_, cpu_engine(), c), ms(scratch_, cpu_engine(), scratchpad.data());
    p_.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}});
    s.wait();
  }

 private:
  dnnl::memory::desc a_, b_, c_, scratch_;
  dnnl::matmul p_;
};

// Runs body(chunk) for chunks [0, count) on `threads` threads; exceptions reach the caller.
template <class F>
void for_chunks(int64_t count, int threads, F&& body) {
  std::exception_ptr error;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1) if (threads > 1 && count > 1)
  for (int64_t c = 0; c < count; ++c) {
    try {
      body(c);
    } catch (...) {
#pragma omp critical
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// A uniform integer in [0, bound), the same on every platform.
uint64_t uniform_below(std::mt19937_64& g, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(g()) * bound) >> 64);
}

void check_sizes(std::span<const float> w, int64_t rows, int64_t cols, std::span<const float> x, int64_t n) {
  if (rows < 1 || cols < 1) throw std::invalid_argument(fmt::format("adaround: weight shape [{}, {}] is empty", rows, cols));
  if (static_cast<int64_t>(w.size()) != rows * cols)
    throw std::invalid_argument(
        fmt::format("adaround: the weight has {} values, [{}, {}] needs {}", w.size(), rows, cols, rows * cols));
  if (n < 1) throw std::invalid_argument("adaround: no calibration rows (n < 1)");
  if (static_cast<int64_t>(x.size()) != n * cols)
    throw std::invalid_argument(
        fmt::format("adaround: the inputs have {} values, {} rows of {} need {}", x.size(), n, cols, n * cols));
}

void check_finite(std::span<const float> v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) throw std::invalid_argument(fmt::format("adaround: {} value {} is {}", what, i, v[i]));
}

// The reconstruction gradient gw = dL_rec/dW for the rows of one chunk, in one of two forms:
// gw = (2/b) (delta xb^T) xb over the rows xb, or gw = 2 delta H with H = x^T x / n.
class ReconstructionGradient {
 public:
  // Products with the rows xb (b rows of cols values).
  ReconstructionGradient(int64_t rows, int64_t cols, int64_t b) : rows_(rows), cols_(cols), b_(b) {
    const int64_t full = std::min(rows, kChunkRows), last = rows - (rows - 1) / kChunkRows * kChunkRows;
    for (int64_t rc : {full, last}) {
      // E = delta_chunk xb^T (rc x b), then gw_chunk = (2/b) E xb (rc x cols).
      first_.push_back(Matmul(rc, b, cols, {cols, 1}, {1, cols}, 1.0f));
      second_.push_back(Matmul(rc, cols, b, {b, 1}, {cols, 1}, 2.0f / static_cast<float>(b)));
    }
  }
  // Products with the Gram matrix of all n rows of x.
  static ReconstructionGradient gram(int64_t rows, int64_t cols, std::span<const float> x, int64_t n, int threads) {
    ReconstructionGradient r(rows, cols);
    r.h_.resize(static_cast<size_t>(cols * cols));
    // H rows [j0, j1) = x[:, j0:j1]^T x / n, in chunks of fixed size.
    const int64_t chunks = (cols + kChunkRows - 1) / kChunkRows;
    const int64_t full = std::min(cols, kChunkRows), last = cols - (chunks - 1) * kChunkRows;
    const float inv_n = 1.0f / static_cast<float>(n);
    const Matmul hf(full, cols, n, {1, cols}, {cols, 1}, inv_n), hl(last, cols, n, {1, cols}, {cols, 1}, inv_n);
    for_chunks(chunks, threads, [&](int64_t c) {
      (c + 1 == chunks ? hl : hf)(x.data() + c * kChunkRows, x.data(), r.h_.data() + c * kChunkRows * cols);
    });
    const int64_t wfull = std::min(rows, kChunkRows), wlast = rows - (rows - 1) / kChunkRows * kChunkRows;
    for (int64_t rc : {wfull, wlast}) r.first_.push_back(Matmul(rc, cols, cols, {cols, 1}, {cols, 1}, 2.0f));
    return r;
  }

  int64_t chunks() const { return (rows_ + kChunkRows - 1) / kChunkRows; }
  int64_t chunk_rows(int64_t c) const { return std::min(kChunkRows, rows_ - c * kChunkRows); }
  size_t scratch_size() const { return h_.empty() ? static_cast<size_t>(kChunkRows * b_) : 0; }

  // gw rows of chunk c from delta (both [rows, cols]); xb: the rows (unused with the Gram matrix).
  void operator()(int64_t c, const float* delta, const float* xb, float* gw, float* scratch) const {
    const size_t k = c + 1 == chunks() ? 1 : 0;
    const int64_t off = c * kChunkRows * cols_;
    if (!h_.empty()) {
      first_[k](delta + off, h_.data(), gw + off);
      return;
    }
    first_[k](delta + off, xb, scratch);
    second_[k](scratch, xb, gw + off);
  }

 private:
  ReconstructionGradient(int64_t rows, int64_t cols) : rows_(rows), cols_(cols), b_(0) {}
  int64_t rows_, cols_, b_;
  std::vector<Matmul> first_, second_;
  std::vector<float> h_;
};

void validate(const QuantizerConfig& cfg) {
  if (!cfg.format.scalar())
    throw std::invalid_argument(fmt::format("adaround needs a scalar format (integer, minifloat or fixed point), not {}",
                                            cfg.format.to_string()));
}

void validate(const AdaRoundOptions& o) {
  if (o.iterations < 0) throw std::invalid_argument(fmt::format("adaround: iterations must be >= 0, got {}", o.iterations));
  if (o.batch_rows < 0) throw std::invalid_argument(fmt::format("adaround: batch_rows must be >= 0, got {}", o.batch_rows));
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
    throw std::invalid_argument(fmt::format("adaround: learning_rate must be positive, got {}", o.learning_rate));
  if (!(o.reg_weight >= 0) || !std::isfinite(o.reg_weight))
    throw std::invalid_argument(fmt::format("adaround: reg_weight must be >= 0, got {}", o.reg_weight));
  if (!(o.beta_start >= 1 && o.beta_end >= 1) || !std::isfinite(o.beta_start) || !std::isfinite(o.beta_end))
    throw std::invalid_argument(fmt::format("adaround: beta_start and beta_end must be >= 1, got {} and {}", o.beta_start,
                                            o.beta_end));
  if (!(o.warmup >= 0 && o.warmup <= 1))
    throw std::invalid_argument(fmt::format("adaround: warmup must be in [0, 1], got {}", o.warmup));
}

}  // namespace

RoundingGrid rounding_grid(std::span<const float> w, std::span<const int64_t> shape, const QuantizerConfig& cfg) {
  validate(cfg);
  if (shape.empty() || shape_size(shape) != static_cast<int64_t>(w.size()) || w.empty())
    throw std::invalid_argument(fmt::format("adaround: {} weights do not make a weight of shape {}", w.size(), shape_string(shape)));
  check_finite(w, "weight");
  Quantizer q(cfg);
  q.observe(w, shape);
  const QuantParams params = q.compute_params();
  RoundingGrid g;
  g.lo.resize(w.size());
  g.hi.resize(w.size());
  g.nearest.resize(w.size());
  q.set_params(params);
  q.fake_quant(w, g.nearest, shape);
  for (auto [r, out] : {std::pair{Rounding::Down, &g.lo}, std::pair{Rounding::Up, &g.hi}}) {
    QuantizerConfig c = cfg;
    c.rounding = r;
    Quantizer qr(c);
    qr.set_params(params);
    qr.fake_quant(w, *out, shape);
  }
  // Where Up or Down leaves the range (a wrapping fixed-point overflow, an infinity without
  // saturation), the weight keeps its round-to-nearest value.
  for (size_t i = 0; i < w.size(); ++i)
    if (!(g.lo[i] <= g.hi[i]) || !std::isfinite(g.lo[i]) || !std::isfinite(g.hi[i])) g.lo[i] = g.hi[i] = g.nearest[i];
  return g;
}

namespace adaround_detail {

float initial_v(float frac) {
  // h(V) = frac  <=>  sigmoid(V) = (frac - gamma) / (zeta - gamma).
  const double p = (static_cast<double>(frac) + 0.1) / 1.2;
  return static_cast<float>(std::log(p / (1 - p)));
}

std::vector<float> gradient(std::span<const float> w, std::span<const float> lo, std::span<const float> hi,
                            std::span<const float> v, int64_t rows, int64_t cols, std::span<const float> xb, int64_t b,
                            float beta, float reg_weight, bool gram, int threads) {
  check_sizes(w, rows, cols, xb, b);
  if (lo.size() != w.size() || hi.size() != w.size() || v.size() != w.size())
    throw std::invalid_argument("adaround gradient: lo, hi and v must have one value per weight");
  SingleThreadedDnnl single;
  std::vector<float> diff(w.size()), base(w.size()), delta(w.size()), gw(w.size()), grad(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    diff[i] = hi[i] - lo[i];
    base[i] = lo[i] - w[i];
  }
  HWY_DYNAMIC_DISPATCH(adaround_simd::Delta)(v.data(), base.data(), diff.data(), delta.data(), w.size());
  const ReconstructionGradient rg =
      gram ? ReconstructionGradient::gram(rows, cols, xb, b, threads) : ReconstructionGradient(rows, cols, b);
  const StepParams p{reg_weight, beta, 0, 1};
  for_chunks(rg.chunks(), threads, [&](int64_t c) {
    std::vector<float> scratch(rg.scratch_size());
    rg(c, delta.data(), xb.data(), gw.data(), scratch.data());
    const size_t off = static_cast<size_t>(c * kChunkRows * cols), len = static_cast<size_t>(rg.chunk_rows(c) * cols);
    HWY_DYNAMIC_DISPATCH(adaround_simd::Gradient)(v.data() + off, diff.data() + off, gw.data() + off, grad.data() + off, len, p);
  });
  return grad;
}

}  // namespace adaround_detail

std::vector<float> adaround_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const float> x,
                                     int64_t n, const QuantizerConfig& cfg, const AdaRoundOptions& opt) {
  const int64_t shape[] = {rows, cols};
  return adaround_quantize(w, shape, x, n, cfg, opt);
}

std::vector<float> adaround_quantize(std::span<const float> w, std::span<const int64_t> shape, std::span<const float> x,
                                     int64_t n, const QuantizerConfig& cfg, const AdaRoundOptions& opt) {
  if (shape.empty()) throw std::invalid_argument("adaround: the weight shape is empty");
  const int64_t rows = shape[0], cols = rows > 0 ? shape_size(shape) / rows : 0;
  check_sizes(w, rows, cols, x, n);
  validate(cfg);
  validate(opt);
  check_finite(x, "calibration input");
  const RoundingGrid grid = rounding_grid(w, shape, cfg);
  const size_t m = w.size();
  std::vector<float> diff(m), base(m), v(m), m1(m, 0.0f), m2(m, 0.0f), delta(m), gw(m);
  for (size_t i = 0; i < m; ++i) {
    diff[i] = grid.hi[i] - grid.lo[i];
    base[i] = grid.lo[i] - w[i];
    const float frac = diff[i] > 0 ? static_cast<float>((static_cast<double>(w[i]) - grid.lo[i]) / diff[i]) : 0.0f;
    v[i] = adaround_detail::initial_v(std::clamp(frac, 1e-6f, 1.0f - 1e-6f));
  }

  SingleThreadedDnnl single;
  const bool full = opt.batch_rows == 0 || opt.batch_rows >= n;
  const int64_t b = full ? n : opt.batch_rows;
  // With every row in every step, products with the Gram matrix x^T x (cols x cols per weight row)
  // cost less than with the rows themselves (2 n per weight row) when cols < 2 n.
  const bool gram = full && cols < 2 * n;
  // A step with less work than this is faster on one thread than across a barrier.
  const int64_t step_macs = rows * cols * (gram ? cols : 2 * b);
  const int threads = step_macs >= (int64_t{1} << 22) ? std::max(1, opt.threads) : 1;
  const ReconstructionGradient rg =
      gram ? ReconstructionGradient::gram(rows, cols, x, n, threads) : ReconstructionGradient(rows, cols, b);
  std::vector<float> xb(full ? 0 : static_cast<size_t>(b * cols));
  std::vector<int64_t> order(full ? 0 : static_cast<size_t>(n));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(opt.seed);
  std::vector<std::vector<float>> scratch(static_cast<size_t>(threads));

  HWY_DYNAMIC_DISPATCH(adaround_simd::Delta)(v.data(), base.data(), diff.data(), delta.data(), m);
  const int warm = static_cast<int>(std::lround(static_cast<double>(opt.warmup) * opt.iterations));
  for (int t = 0; t < opt.iterations; ++t) {
    if (!full) {
      // A partial Fisher-Yates shuffle: b distinct rows.
      for (int64_t i = 0; i < b; ++i) {
        const int64_t j = i + static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(n - i)));
        std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
        std::copy_n(x.data() + order[static_cast<size_t>(i)] * cols, cols, xb.data() + i * cols);
      }
    }
    StepParams p;
    if (t >= warm && opt.reg_weight > 0) {
      // Linear from beta_start at the end of the warm-up to beta_end at the last step.
      const double progress = static_cast<double>(t - warm) / std::max(1, opt.iterations - warm);
      p.reg_weight = opt.reg_weight;
      p.beta = static_cast<float>(opt.beta_end + (opt.beta_start - opt.beta_end) * (1 - progress));
    }
    p.lr_t = static_cast<float>(opt.learning_rate / (1 - std::pow(0.9, t + 1)));
    p.inv_sqrt_bc2 = static_cast<float>(1 / std::sqrt(1 - std::pow(0.999, t + 1)));
    for_chunks(rg.chunks(), threads, [&](int64_t c) {
      std::vector<float>& s = scratch[static_cast<size_t>(omp_get_thread_num())];
      s.resize(rg.scratch_size());
      rg(c, delta.data(), full ? x.data() : xb.data(), gw.data(), s.data());
      const size_t off = static_cast<size_t>(c * kChunkRows * cols), len = static_cast<size_t>(rg.chunk_rows(c) * cols);
      HWY_DYNAMIC_DISPATCH(adaround_simd::Adam)(v.data() + off, m1.data() + off, m2.data() + off, gw.data() + off,
                                                base.data() + off, diff.data() + off, delta.data() + off, len, p);
    });
  }

  std::vector<uint8_t> up(m);
  HWY_DYNAMIC_DISPATCH(adaround_simd::HardRound)(v.data(), up.data(), m);
  std::vector<float> out(m);
  for (size_t i = 0; i < m; ++i) out[i] = up[i] ? grid.hi[i] : grid.lo[i];
  return out;
}

double output_mse(std::span<const float> w, std::span<const float> wq, int64_t rows, int64_t cols,
                  std::span<const float> x, int64_t n) {
  check_sizes(w, rows, cols, x, n);
  if (wq.size() != w.size())
    throw std::invalid_argument(fmt::format("output_mse: {} quantized weights for {} weights", wq.size(), w.size()));
  std::vector<float> delta(w.size());
  for (size_t i = 0; i < w.size(); ++i) delta[i] = wq[i] - w[i];
  SingleThreadedDnnl single;
  constexpr int64_t kBlock = 256;
  const int64_t full = std::min(n, kBlock), last = n - (n - 1) / kBlock * kBlock;
  // E = x_block delta^T (block x rows).
  const Matmul mf(full, rows, cols, {cols, 1}, {1, cols}, 1.0f), ml(last, rows, cols, {cols, 1}, {1, cols}, 1.0f);
  std::vector<float> e(static_cast<size_t>(full * rows));
  double sum = 0;
  for (int64_t r0 = 0; r0 < n; r0 += kBlock) {
    const int64_t len = std::min(kBlock, n - r0);
    (len == full ? mf : ml)(x.data() + r0 * cols, delta.data(), e.data());
    for (int64_t i = 0; i < len * rows; ++i) sum += static_cast<double>(e[static_cast<size_t>(i)]) * e[static_cast<size_t>(i)];
  }
  return sum / static_cast<double>(n);
}

std::vector<float> conv_im2col(const Node& conv, const Tensor& x, const Shape& w_shape, int64_t max_rows, uint32_t seed) {
  if (x.dtype() != DType::F32 || x.channels_last())
    throw std::invalid_argument(fmt::format("conv_im2col: {} needs a plain float32 NCHW input", conv.label()));
  if (max_rows < 1) throw std::invalid_argument("conv_im2col: max_rows must be at least 1");
  ConvGeometry g;
  try {
    g = conv_geometry(conv, x.shape(), w_shape);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(fmt::format("conv_im2col: {}: {}", conv.label(), e.what()));
  }
  if (g.groups != 1)
    throw std::invalid_argument(fmt::format("conv_im2col: {} has group={}; grouped (depthwise) convolutions are not supported",
                                            conv.label(), g.groups));
  const size_t sp = g.kernel.size();
  const int64_t batch = x.dim(0), channels = x.dim(1);
  int64_t positions = 1, taps = 1, in_plane = 1;
  for (size_t k = 0; k < sp; ++k) {
    positions *= g.output_shape[k + 2];
    taps *= g.kernel[k];
    in_plane *= x.dim(static_cast<int>(k + 2));
  }
  const int64_t total = batch * positions, cols = channels * taps;
  const int64_t take = std::min(total, max_rows);
  // Selection sampling (Knuth's algorithm S): `take` positions, each subset equally likely, in order.
  std::vector<int64_t> chosen;
  chosen.reserve(static_cast<size_t>(take));
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < total && static_cast<int64_t>(chosen.size()) < take; ++i)
    if (take == total || static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(total - i))) <
                             take - static_cast<int64_t>(chosen.size()))
      chosen.push_back(i);

  std::vector<float> out(static_cast<size_t>(take * cols));
  const float* src = x.data<float>();
  std::vector<int64_t> opos(sp), tap(sp);
  for (size_t r = 0; r < chosen.size(); ++r) {
    int64_t p = chosen[r] % positions;
    const int64_t img = chosen[r] / positions;
    for (size_t k = sp; k-- > 0;) {
      opos[k] = p % g.output_shape[k + 2];
      p /= g.output_shape[k + 2];
    }
    float* row = out.data() + r * static_cast<size_t>(cols);
    for (int64_t t = 0; t < taps; ++t) {
      int64_t rest = t, offset = 0;
      bool inside = true;
      for (size_t k = sp; k-- > 0;) {
        tap[k] = rest % g.kernel[k];
        rest /= g.kernel[k];
      }
      for (size_t k = 0; k < sp; ++k) {
        const int64_t in = opos[k] * g.strides[k] - g.pads_begin[k] + tap[k] * g.dilations[k];
        const int64_t extent = x.dim(static_cast<int>(k + 2));
        if (in < 0 || in >= extent) inside = false;
        offset = offset * extent + in;
      }
      for (int64_t c = 0; c < channels; ++c)
        row[c * taps + t] = inside ? src[(img * channels + c) * in_plane + offset] : 0.0f;
    }
  }
  return out;
}

}  // namespace lowbit

#endif  // HWY_ONCE
