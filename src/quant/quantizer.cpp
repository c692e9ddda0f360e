#include "lowbit/quant/quantizer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/format/parallel.hpp"
#include "src/format/element_plan.hpp"
#include "src/quant/slices.hpp"

namespace lowbit {
namespace {

ScaleSpec storage_spec(ScaleStorage s) {
  switch (s) {
    case ScaleStorage::Fp32: return {ScaleKind::Float32, std::nullopt};
    case ScaleStorage::Pow2: return {ScaleKind::Pow2, std::nullopt};
    case ScaleStorage::E8M0: return {ScaleKind::Format, *Format::parse("float8_e8m0fnu").scalar()};
    case ScaleStorage::E4M3: return {ScaleKind::Format, *Format::parse("float8_e4m3fn").scalar()};
  }
  return {};
}

// Value at quantile p (0..1) of sorted data, linearly interpolated.
// Reorders v; calling it again on the same v is fine (any permutation gives the same answer).
double quantile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double f = pos - static_cast<double>(i);
  // Two order statistics, in linear time: the i-th, then the smallest of what lies above it.
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  const double lo = v[i];
  if (i + 1 >= v.size()) return lo;
  const double hi = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(i) + 1, v.end());
  return lo * (1 - f) + hi * f;
}

}  // namespace

Quantizer::Quantizer(QuantizerConfig c) : c_(std::move(c)) {
  const ScalarFormat* s = c_.format.scalar();
  if (!c_.symmetric && (!s || s->kind() != ScalarKind::Integer))
    throw std::invalid_argument(fmt::format("asymmetric quantization (zero point) needs an integer format, not {}",
                                            c_.format.to_string()));
  if (!s && c_.granularity != Granularity::Tensor)
    throw std::invalid_argument(fmt::format("{} carries its own block scales; use granularity tensor", c_.format.to_string()));
  if (c_.group_size < 1) throw std::invalid_argument("group size must be at least 1");
  if (!(c_.percentile > 0 && c_.percentile <= 100)) throw std::invalid_argument("percentile must be in (0, 100]");
  if (!(c_.momentum >= 0 && c_.momentum < 1)) throw std::invalid_argument("momentum must be in [0, 1)");
  if (s && !s->float32_exact())
    throw std::invalid_argument(fmt::format("{} has values that are not float32", s->to_string()));
}

bool Quantizer::observed_nonnegative() const {
  if (stats_.empty()) return false;
  for (const SliceStats& st : stats_)
    if (!st.seen || st.min < 0) return false;
  return true;
}

void Quantizer::set_format(Format f) {
  QuantizerConfig c = c_;
  c.format = std::move(f);
  Quantizer check(c);  // validates
  c_ = std::move(c);
  params_.reset();
}

size_t Quantizer::slice_count(std::span<const int64_t> shape, size_t size) const {
  if (!c_.format.scalar()) return 0;
  return detail::slice_layout(c_, shape, size).slices;
}

float Quantizer::scale_for(double range, double grid_span) const {
  if (!(range > 0) || !std::isfinite(range)) return 1.0f;
  const ScaleSpec spec = storage_spec(c_.scale_storage);
  double s = spec.round_ratio(range, grid_span, c_.scale_rounding);
  if (s == 0) s = spec.round_ratio(range, grid_span, ScaleRule::Ceil);
  return static_cast<float>(s);
}

double Quantizer::mse_threshold(const SliceStats& st, double amax) const {
  // Clipping threshold in (0, amax] minimizing the squared error over the stored samples.
  const ScalarFormat& f = *c_.format.scalar();
  const Rounding r = c_.rounding.value_or(f.default_rounding());
  const detail::ElementPlan plan = detail::make_plan(f, r, c_.seed);
  std::vector<float> out(st.samples.size());
  double best = amax, best_err = std::numeric_limits<double>::infinity();
  for (int k = 100; k >= 1; --k) {
    const double clip = amax * k / 100.0;
    const float s = scale_for(clip, f.max());
    detail::quantize_span_scaled(f, plan, r, st.samples.data(), out.data(), out.size(), 0, s);
    double err = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double d = static_cast<double>(st.samples[i]) - out[i];
      err += d * d;
    }
    if (err < best_err) {
      best_err = err;
      best = clip;
    }
  }
  return best;
}

double Quantizer::entropy_threshold(const SliceStats& st, double amax) const {
  // Histogram of |x| over [0, amax]; for each candidate threshold t, P = the histogram below t with
  // everything above added to its last bin, Q as below; pick the t of least KL(P || Q).
  constexpr int kBins = 2048, kStride = 16;
  if (!(amax > 0)) return amax;
  const ScalarFormat& f = *c_.format.scalar();
  std::vector<double> hist(kBins, 0.0);
  for (float v : st.samples) {
    const int b = std::min(kBins - 1, static_cast<int>(std::fabs(v) / amax * kBins));
    hist[static_cast<size_t>(b)] += 1;
  }
  double best = amax, best_kl = std::numeric_limits<double>::infinity();
  std::vector<double> p(kBins), q(kBins);
  std::vector<double> level(kBins);
  for (int k = kStride; k <= kBins; k += kStride) {
    const double t = amax * k / kBins, scale = t / f.max();
    double outside = 0;
    for (int j = k; j < kBins; ++j) outside += hist[static_cast<size_t>(j)];
    for (int j = 0; j < k; ++j) {
      p[static_cast<size_t>(j)] = hist[static_cast<size_t>(j)] + (j == k - 1 ? outside : 0);
      level[static_cast<size_t>(j)] = f.quantize((j + 0.5) * amax / kBins / scale);
    }
    // Q: the histogram below t without the folded tail, merged over the bins that quantize to one
    // level (consecutive runs) and spread evenly over the run's non-empty bins. KL(P || Q) then
    // charges both the rounding inside [0, t) and the clipped tail folded into P's last bin.
    double p_total = 0, q_total = 0;
    for (int begin = 0; begin < k;) {
      int end = begin, nonempty = 0;
      double mass = 0;
      while (end < k && level[static_cast<size_t>(end)] == level[static_cast<size_t>(begin)]) {
        mass += hist[static_cast<size_t>(end)];
        nonempty += hist[static_cast<size_t>(end)] > 0;
        ++end;
      }
      for (int j = begin; j < end; ++j) q[static_cast<size_t>(j)] = hist[static_cast<size_t>(j)] > 0 ? mass / nonempty : 0.0;
      begin = end;
    }
    for (int j = 0; j < k; ++j) {
      p_total += p[static_cast<size_t>(j)];
      q_total += q[static_cast<size_t>(j)];
    }
    if (!(p_total > 0) || !(q_total > 0)) continue;
    double kl = 0;
    for (int j = 0; j < k; ++j) {
      const double pj = p[static_cast<size_t>(j)] / p_total;
      if (pj <= 0) continue;
      const double qj = std::max(q[static_cast<size_t>(j)] / q_total, 1e-12);  // an empty Q bin where P has the tail
      kl += pj * std::log(pj / qj);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best = t;
    }
  }
  return best;
}

QuantParams Quantizer::compute_params() const { return params_from_stats(); }

QuantParams Quantizer::params_from_stats() const {
  const ScalarFormat* f = c_.format.scalar();
  QuantParams p;
  if (!f) return p;
  if (stats_.empty()) throw std::logic_error("Quantizer: no statistics observed and no parameters set");
  const double qmax = f->max(), qmin = f->lowest();
  for (const SliceStats& s : stats_) {
    double lo = std::min(s.min, 0.0), hi = std::max(s.max, 0.0);
    if (c_.observer == ObserverKind::Percentile && !s.samples.empty()) {
      std::vector<float> v(s.samples);
      if (c_.symmetric) {
        for (float& x : v) x = std::fabs(x);
        hi = quantile(v, c_.percentile / 100.0);
        lo = -hi;
      } else {
        lo = std::min(0.0, quantile(v, 1 - c_.percentile / 100.0));
        hi = std::max(0.0, quantile(v, c_.percentile / 100.0));
      }
    }
    if (c_.symmetric) {
      double amax = std::max(-lo, hi);
      if (c_.observer == ObserverKind::Mse && !s.samples.empty()) amax = mse_threshold(s, amax);
      if (c_.observer == ObserverKind::Entropy && !s.samples.empty()) amax = entropy_threshold(s, amax);
      p.scale.push_back(scale_for(amax, qmax));
    } else {
      if (c_.observer == ObserverKind::Entropy && !s.samples.empty()) {
        const double t = entropy_threshold(s, std::max(-lo, hi));
        lo = std::max(lo, -t);
        hi = std::min(hi, t);
      }
      // In float32 steps, as ONNX DynamicQuantizeLinear: scale = (hi - lo) / (qmax - qmin),
      // zero point = round(clamp(qmin - lo / scale)).
      const float scale = scale_for(static_cast<float>(hi) - static_cast<float>(lo), qmax - qmin);
      const float zero = static_cast<float>(qmin) - static_cast<float>(lo) / scale;
      const double z = round_integer(std::clamp<double>(zero, qmin, qmax), Rounding::NearestEven);
      p.scale.push_back(scale);
      p.zero_point.push_back(static_cast<float>(z));
    }
  }
  return p;
}

void Quantizer::fake_quant(std::span<const float> in, std::span<float> out, std::span<const int64_t> shape) const {
  if (in.size() != out.size()) throw std::invalid_argument("Quantizer::fake_quant: input and output sizes differ");
  const ScalarFormat* f = c_.format.scalar();
  if (!f) {
    FakeQuantOptions o{c_.rounding, c_.seed, c_.threads};
    lowbit::fake_quant(c_.format, in, out, shape, o);
    return;
  }
  const QuantParams p = params_ ? *params_ : params_from_stats();
  const detail::SliceLayout L = detail::slice_layout(c_, shape, in.size());
  if (p.scale.size() != L.slices)
    throw std::invalid_argument(fmt::format("quantizer has {} scales but the tensor has {} slices", p.scale.size(), L.slices));
  const Rounding r = c_.rounding.value_or(f->default_rounding());
  const detail::ElementPlan plan = detail::make_plan(*f, r, c_.seed);
  parallel_chunks(L.runs.size(), c_.threads, 1, [&](size_t r0, size_t r1) {
    for (size_t ri = r0; ri < r1; ++ri) {
      const detail::Run& run = L.runs[ri];
      const float s = p.scale[run.slice];
      if (p.zero_point.empty()) {
        detail::quantize_span_scaled(*f, plan, r, in.data() + run.begin, out.data() + run.begin, run.length, run.begin, s);
        continue;
      }
      const float z = p.zero_point[run.slice];
      if (r == Rounding::NearestEven) {
        // clamp(round(v) + z) - z == round(clamp(v, lowest - z, max - z)) for an integer z; adding and
        // subtracting 1.5 * 2^23 rounds half to even for |v| <= 2^22. NaN compares false throughout
        // and ends as 0, as in the reference.
        const float lo = static_cast<float>(f->lowest() - z), hi = static_cast<float>(f->max() - z);
        const float* src = in.data() + run.begin;
        float* dst = out.data() + run.begin;
        for (size_t k = detail::affine_integer_simd(src, dst, run.length, s, lo, hi); k < run.length; ++k) {
          const float v = src[k] / s;
          const float c = v < lo ? lo : (v > hi ? hi : v);
          const float q = (c + 0x1.8p23f) - 0x1.8p23f;
          dst[k] = c == c ? q * s : 0.0f;
        }
        continue;
      }
      for (size_t k = 0; k < run.length; ++k) {
        const size_t i = run.begin + k;
        const float v = in[i] / s;
        double q = std::isnan(v) ? static_cast<double>(z) : round_integer(v, r, stochastic_bits(c_.seed, i)) + z;
        q = std::clamp(q, f->lowest(), f->max());
        out[i] = static_cast<float>(q - z) * s;
      }
    }
  });
}

namespace {
void require_integer(const QuantizerConfig& c) {
  const ScalarFormat* f = c.format.scalar();
  if (!f || f->kind() != ScalarKind::Integer)
    throw std::invalid_argument(fmt::format("{} is not an integer format", c.format.to_string()));
}
}  // namespace

void Quantizer::quantize_to_integers(std::span<const float> in, std::span<int32_t> q, std::span<const int64_t> shape) const {
  require_integer(c_);
  if (in.size() != q.size()) throw std::invalid_argument("quantize_to_integers: sizes differ");
  const ScalarFormat& f = *c_.format.scalar();
  const QuantParams p = params_ ? *params_ : params_from_stats();
  const detail::SliceLayout L = detail::slice_layout(c_, shape, in.size());
  if (p.scale.size() != L.slices) throw std::invalid_argument("quantizer scales do not match the tensor's slices");
  const Rounding r = c_.rounding.value_or(f.default_rounding());
  for (const detail::Run& run : L.runs) {
    const float s = p.scale[run.slice];
    const double z = p.zero_point.empty() ? 0.0 : p.zero_point[run.slice];
    for (size_t k = 0; k < run.length; ++k) {
      const size_t i = run.begin + k;
      const float v = in[i] / s;
      const double rounded = std::isnan(v) ? 0.0 : round_integer(v, r, stochastic_bits(c_.seed, i));
      q[i] = static_cast<int32_t>(std::clamp(rounded + z, f.lowest(), f.max()));
    }
  }
}

void Quantizer::dequantize_integers(std::span<const int32_t> q, std::span<float> out, std::span<const int64_t> shape) const {
  require_integer(c_);
  if (out.size() != q.size()) throw std::invalid_argument("dequantize_integers: sizes differ");
  const QuantParams p = params_ ? *params_ : params_from_stats();
  const detail::SliceLayout L = detail::slice_layout(c_, shape, q.size());
  if (p.scale.size() != L.slices) throw std::invalid_argument("quantizer scales do not match the tensor's slices");
  for (const detail::Run& run : L.runs) {
    const float s = p.scale[run.slice];
    const int64_t z = p.zero_point.empty() ? 0 : static_cast<int64_t>(p.zero_point[run.slice]);
    for (size_t k = 0; k < run.length; ++k) out[run.begin + k] = static_cast<float>(q[run.begin + k] - z) * s;
  }
}

double sqnr_db(std::span<const float> x, std::span<const float> y) {
  double sig = 0, err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sig += static_cast<double>(x[i]) * x[i];
    const double d = static_cast<double>(x[i]) - y[i];
    err += d * d;
  }
  if (err == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(sig / err);
}

}  // namespace lowbit
