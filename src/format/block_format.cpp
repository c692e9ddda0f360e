#include "lowbit/format/block_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "lowbit/format/tensor_shape.hpp"

namespace lowbit {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string_view rule_name(ScaleRule r) {
  switch (r) {
    case ScaleRule::Floor: return "floor";
    case ScaleRule::Ceil: return "ceil";
    case ScaleRule::Nearest: return "nearest";
  }
  return "?";
}

// The scale grid seen as an ordered set of non-negative values with neighbours and code parity.
struct Grid {
  const ScaleSpec& s;
  double min_positive() const {
    switch (s.kind) {
      case ScaleKind::Format: return s.format->min_subnormal();
      case ScaleKind::Float32: return std::numeric_limits<float>::denorm_min();
      case ScaleKind::Pow2: return 0x1p-126;
    }
    return 0;
  }
  bool has_zero() const { return s.kind != ScaleKind::Pow2 && !(s.format && s.format->quantize(0.0) != 0.0); }
  double max() const { return s.max(); }
  double next(double g) const {  // g < max
    if (g == 0) return min_positive();
    switch (s.kind) {
      case ScaleKind::Format: return s.format->decode(s.format->code_of(g) + 1);
      case ScaleKind::Float32: return std::nextafter(static_cast<float>(g), std::numeric_limits<float>::infinity());
      case ScaleKind::Pow2: return g * 2;
    }
    return g;
  }
  double prev(double g) const {  // g > smallest grid value
    if (g == min_positive()) return 0.0;
    switch (s.kind) {
      case ScaleKind::Format: return s.format->decode(s.format->code_of(g) - 1);
      case ScaleKind::Float32: return std::nextafter(static_cast<float>(g), 0.0f);
      case ScaleKind::Pow2: return g / 2;
    }
    return g;
  }
  bool odd(double g) const {
    if (g == 0) return false;
    switch (s.kind) {
      case ScaleKind::Format: return s.format->significand_odd(g);
      case ScaleKind::Float32: {
        const float f = static_cast<float>(g);
        uint32_t b;
        std::memcpy(&b, &f, 4);
        return b & 1u;
      }
      case ScaleKind::Pow2: return true;  // a significand of one digit, 1
    }
    return false;
  }
  // Largest grid value <= x (x finite, >= 0), or the smallest grid value when none is.
  double down(double x) const {
    switch (s.kind) {
      case ScaleKind::Format: return s.format->quantize(x, Rounding::Down);
      case ScaleKind::Float32: {
        float f = static_cast<float>(x);
        if (static_cast<double>(f) > x) f = std::nextafter(f, 0.0f);
        return std::min<double>(f, std::numeric_limits<float>::max());
      }
      case ScaleKind::Pow2: {
        if (x < 0x1p-126) return 0x1p-126;
        return std::ldexp(1.0, std::min(std::ilogb(x), 127));
      }
    }
    return x;
  }
};

}  // namespace

std::string ScaleSpec::to_string() const {
  switch (kind) {
    case ScaleKind::Float32: return "fp32";
    case ScaleKind::Pow2: return "pow2";
    case ScaleKind::Format: break;
  }
  const std::string f = format->to_string();
  if (f == "ue8m0:specials=fn,subnormals=off,zero=no") return "e8m0";
  return f;
}

bool ScaleSpec::operator==(const ScaleSpec& o) const {
  return kind == o.kind && (kind != ScaleKind::Format || *format == *o.format);
}

bool ScaleSpec::is_power_of_two() const {
  if (kind == ScaleKind::Pow2) return true;
  if (kind == ScaleKind::Float32) return false;
  return format->kind() == ScalarKind::Minifloat && format->minifloat_params().mantissa_bits == 0 &&
         !format->minifloat_params().has_zero;
}

double ScaleSpec::max() const {
  switch (kind) {
    case ScaleKind::Format: return format->max();
    case ScaleKind::Float32: return std::numeric_limits<float>::max();
    case ScaleKind::Pow2: return 0x1p127;
  }
  return 0;
}

double ScaleSpec::round_down(double x) const { return Grid{*this}.down(x); }

double ScaleSpec::round_ratio(double amax, double denom, ScaleRule rule) const {
  const Grid grid{*this};
  using LD = long double;  // products of a scale (<= 24 bits) and denom (<= 40 bits) are exact in it
  static_assert(std::numeric_limits<LD>::digits >= 64);
  const LD target = static_cast<LD>(amax);
  double g = grid.down(amax / denom);
  if (g > 0 && static_cast<LD>(g) * denom > target) g = grid.prev(g);  // the division rounded up onto g
  const double smallest = grid.has_zero() ? 0.0 : grid.min_positive();
  if (g < smallest) g = smallest;
  if (static_cast<LD>(g) * denom >= target || g >= grid.max()) return g;
  const double up = grid.next(g);
  if (static_cast<LD>(up) * denom < target) return up;  // only when down() clamped to the smallest value
  switch (rule) {
    case ScaleRule::Floor: return g;
    case ScaleRule::Ceil: return up;
    case ScaleRule::Nearest: {
      const LD below = target - static_cast<LD>(g) * denom, above = static_cast<LD>(up) * denom - target;
      if (below != above) return below < above ? g : up;
      return grid.odd(g) ? up : g;
    }
  }
  return g;
}

BlockFormat::BlockFormat(BlockParams p) : p_(std::move(p)) {
  if (p_.block_size < 1 || p_.block_size > 4096)
    throw FormatError(fmt::format("block size must be 1..4096, got {}", p_.block_size));
  if (p_.scale.kind == ScaleKind::Format) {
    if (!p_.scale.format) throw FormatError("block scale format missing");
    if (p_.scale.format->max() <= 0) throw FormatError("a block scale format needs positive values");
    if (p_.scale.format->kind() != ScalarKind::Minifloat)
      throw FormatError(fmt::format("block scale '{}' must be a floating-point format (e8m0, e4m3, fp32, pow2)",
                                    p_.scale.format->to_string()));
  }
  if (p_.element.max() <= 0) throw FormatError("block element format needs positive values");
}

double BlockFormat::bits_per_element() const {
  double scale_bits = p_.scale.kind == ScaleKind::Format ? p_.scale.format->bits() : (p_.scale.kind == ScaleKind::Pow2 ? 8 : 32);
  return p_.element.bits() + scale_bits / p_.block_size;
}

std::string BlockFormat::to_string() const {
  std::string s = fmt::format("block({},scale={},size={},rule={}", p_.element.to_string(), p_.scale.to_string(),
                              p_.block_size, rule_name(p_.rule));
  if (p_.axis != -1) s += fmt::format(",axis={}", p_.axis);
  if (p_.tensor_scale) s += ",tensor_scale=fp32";
  return s + ")";
}

bool BlockFormat::operator==(const BlockFormat& o) const {
  return p_.element == o.p_.element && p_.scale == o.p_.scale && p_.block_size == o.p_.block_size &&
         p_.axis == o.p_.axis && p_.rule == o.p_.rule && p_.tensor_scale == o.p_.tensor_scale;
}

float BlockFormat::tensor_scale_for(float amax) const {
  if (!p_.tensor_scale) return 1.0f;
  if (!(amax > 0) || !std::isfinite(amax)) return 1.0f;
  const float s = static_cast<float>(static_cast<double>(amax) / (p_.element.max() * p_.scale.max()));
  return s > 0 ? s : std::numeric_limits<float>::denorm_min();
}

double BlockFormat::block_scale(double amax, double tensor) const {
  const ScalarFormat& e = p_.element;
  switch (p_.rule) {
    case ScaleRule::Floor: {
      const double denom = std::ldexp(tensor, std::ilogb(e.max()));
      // OCP MX: a shared exponent above the scale's largest is NaN (when the scale has a NaN).
      const bool scale_has_nan = p_.scale.kind == ScaleKind::Format && p_.scale.format->has_nan();
      if (scale_has_nan && p_.scale.is_power_of_two() && amax > 0 &&
          std::ilogb(amax / denom) > std::ilogb(p_.scale.max()))
        return kNaN;
      return p_.scale.round_ratio(amax, denom, ScaleRule::Floor);
    }
    case ScaleRule::Ceil:
    case ScaleRule::Nearest: return p_.scale.round_ratio(amax, e.max() * tensor, p_.rule);
  }
  return kNaN;
}

void BlockFormat::quantize_reference(std::span<const float> in, std::span<float> out, std::span<const int64_t> shape,
                                     Rounding r, uint32_t seed) const {
  const AxisView view = axis_view(shape, p_.axis, in.size());
  float tensor = 1.0f;
  if (p_.tensor_scale) {
    float amax = 0;
    for (float x : in)
      if (std::isfinite(x)) amax = std::max(amax, std::fabs(x));  // NaN and inf do not count
    tensor = tensor_scale_for(amax);
  }
  const int64_t bs = p_.block_size;
  for (int64_t o = 0; o < view.outer; ++o)
    for (int64_t i = 0; i < view.inner; ++i)
      for (int64_t b0 = 0; b0 < view.length; b0 += bs) {
        const int64_t b1 = std::min(view.length, b0 + bs);
        auto index = [&](int64_t k) { return (o * view.length + k) * view.inner + i; };
        double amax = 0;
        bool finite = true;
        for (int64_t k = b0; k < b1; ++k) {
          const float x = in[index(k)];
          if (!std::isfinite(x)) finite = false;
          else amax = std::max(amax, static_cast<double>(std::fabs(x)));
        }
        if (!finite) {
          for (int64_t k = b0; k < b1; ++k) out[index(k)] = std::numeric_limits<float>::quiet_NaN();
          continue;
        }
        const double s = block_scale(amax, tensor);
        if (std::isnan(s)) {
          for (int64_t k = b0; k < b1; ++k) out[index(k)] = std::numeric_limits<float>::quiet_NaN();
          continue;
        }
        const float eff = static_cast<float>(s * tensor);
        for (int64_t k = b0; k < b1; ++k) {
          const int64_t idx = index(k);
          if (eff == 0) {
            out[idx] = 0.0f;
            continue;
          }
          const float v = in[idx] / eff;
          const double q = p_.element.quantize(v, r, stochastic_bits(seed, static_cast<uint64_t>(idx)));
          out[idx] = static_cast<float>(q) * eff;
        }
      }
}

}  // namespace lowbit
