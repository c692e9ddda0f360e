// QONNX operators (domain qonnx.custom_op.general), written from the QONNX operator specification
// and independent of lowbit's own quantizer, so that an exported model run here checks the export:
//   Quant:      y = (clamp(round(x / scale + zeropt), lo, hi) - zeropt) * scale
//   FloatQuant: y = clamp(round_at(x / scale, 2^(max(floor(log2 |v|), 1 - bias) - M))) * scale
// x / scale is a float32 division (as the reference does in numpy float32); the rest is exact.
#include <cmath>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

namespace {

// Values of `p` broadcast (numpy rules) to every element of a tensor of shape `x`.
std::vector<float> broadcast_to(const Tensor& p, const Shape& x) {
  require_dtype(p, DType::F32, "parameter");
  size_t size = 1;
  for (int64_t d : x) size *= static_cast<size_t>(d);
  if (p.size() == 1) return std::vector<float>(size, p.data<float>()[0]);
  const Shape& ps = p.shape();
  if (ps.size() > x.size()) throw std::runtime_error("a parameter has a higher rank than its input");
  size_t offset = x.size() - ps.size();
  std::vector<int64_t> stride(x.size(), 0);
  int64_t s = 1;
  for (size_t k = ps.size(); k-- > 0;) {
    if (ps[k] != 1 && ps[k] != x[k + offset])
      throw std::runtime_error(fmt::format("parameter shape {} does not broadcast to {}", shape_string(ps), shape_string(x)));
    stride[k + offset] = ps[k] == 1 ? 0 : s;
    s *= ps[k];
  }
  std::vector<float> out(size);
  std::vector<int64_t> idx(x.size(), 0);
  for (size_t i = 0; i < size; ++i) {
    int64_t at = 0;
    for (size_t k = 0; k < x.size(); ++k) at += idx[k] * stride[k];
    out[i] = p.data<float>()[at];
    for (size_t k = x.size(); k-- > 0;) {
      if (++idx[k] < x[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

double scalar_of(const Tensor* t, const char* what) {
  if (!t || t->size() != 1) throw std::runtime_error(fmt::format("{} must be a scalar", what));
  return t->float_at(0);
}

double round_by(const std::string& mode, double v) {
  if (mode == "ROUND" || mode == "round") return std::nearbyint(v);  // the default mode: half to even
  if (mode == "FLOOR" || mode == "floor") return std::floor(v);
  if (mode == "CEIL" || mode == "ceil") return std::ceil(v);
  throw std::runtime_error(fmt::format("rounding_mode '{}' is not supported (ROUND, FLOOR, CEIL)", mode));
}

void quant_op(const Node& n, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0, "X");
  require_dtype(x, DType::F32, "X");
  std::vector<float> scale = broadcast_to(input(in, 1, "scale"), x.shape());
  std::vector<float> zero = broadcast_to(input(in, 2, "zeropt"), x.shape());
  double bits = scalar_of(in.size() > 3 ? in[3] : nullptr, "bitwidth");
  if (bits < 1 || bits > 24 || bits != std::floor(bits)) throw std::runtime_error(fmt::format("bitwidth {} is not an integer in 1..24", bits));
  bool is_signed = n.i("signed", 1) != 0, narrow = n.i("narrow", 0) != 0;
  std::string mode = n.s("rounding_mode", "ROUND");
  double lo = is_signed ? -std::ldexp(1.0, static_cast<int>(bits) - 1) + (narrow ? 1 : 0) : 0;
  double hi = is_signed ? std::ldexp(1.0, static_cast<int>(bits) - 1) - 1 : std::ldexp(1.0, static_cast<int>(bits)) - 1 - (narrow ? 1 : 0);
  Tensor y(DType::F32, x.shape());
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  for (size_t i = 0; i < scale.size(); ++i) {
    float v = xs[i] / scale[i];
    double q = std::clamp(round_by(mode, static_cast<double>(v) + zero[i]), lo, hi);
    ys[i] = static_cast<float>((q - zero[i]) * static_cast<double>(scale[i]));
  }
  out[0] = std::move(y);
}

void float_quant_op(const Node& n, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0, "X");
  require_dtype(x, DType::F32, "X");
  std::vector<float> scale = broadcast_to(input(in, 1, "scale"), x.shape());
  double e_bits = scalar_of(in.size() > 2 ? in[2] : nullptr, "exponent_bitwidth");
  double m_bits = scalar_of(in.size() > 3 ? in[3] : nullptr, "mantissa_bitwidth");
  double bias = scalar_of(in.size() > 4 ? in[4] : nullptr, "exponent_bias");
  if (e_bits < 1 || e_bits > 8 || m_bits < 0 || m_bits > 23 || e_bits != std::floor(e_bits) || m_bits != std::floor(m_bits))
    throw std::runtime_error(fmt::format("exponent / mantissa bit widths {} / {} are not supported", e_bits, m_bits));
  // The largest value with every exponent code finite; max_val may lower it (codes kept for inf / NaN).
  double max_value = (2.0 - std::ldexp(1.0, -static_cast<int>(m_bits))) * std::ldexp(1.0, static_cast<int>(std::ldexp(1.0, static_cast<int>(e_bits)) - 1 - bias));
  if (in.size() > 5 && in[5]) max_value = std::min(max_value, scalar_of(in[5], "max_val"));
  const int min_exponent = static_cast<int>(1 - bias - m_bits);
  const bool saturate = n.i("saturation", 1) != 0, has_inf = n.i("has_infinity", 0) != 0;
  std::string mode = n.s("rounding_mode", "ROUND");
  Tensor y(DType::F32, x.shape());
  const float* xs = x.data<float>();
  float* ys = y.data<float>();
  for (size_t i = 0; i < scale.size(); ++i) {
    double v = xs[i] / scale[i];
    double q = v;
    if (v != 0 && std::isfinite(v)) {
      int e = 0;
      (void)std::frexp(v, &e);  // |v| = m 2^e, m in [0.5, 1): floor(log2 |v|) = e - 1
      int step = std::max(e - 1 - static_cast<int>(m_bits), min_exponent);
      q = std::ldexp(round_by(mode, std::ldexp(v, -step)), step);
    }
    if (std::isnan(q)) {
      ys[i] = NAN;
      continue;
    }
    if (std::abs(q) > max_value) q = saturate ? std::copysign(max_value, q) : has_inf ? std::copysign(INFINITY, q) : NAN;
    ys[i] = static_cast<float>(q * static_cast<double>(scale[i]));
  }
  out[0] = std::move(y);
}

}  // namespace

void register_qonnx_ops(OpRegistry& r) {
  r.add("qonnx.custom_op.general", "Quant", stateless(quant_op));
  r.add("qonnx.custom_op.general", "FloatQuant", stateless(float_quant_op));
}

}  // namespace lowbit
