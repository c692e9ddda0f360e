#include "tests/format/oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace lowbit::test {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

double pow2(int e) { return std::ldexp(1.0, e); }
}  // namespace

Oracle::Oracle(const ScalarFormat& f) : f_(f) {
  std::set<double> finite;
  const uint64_t n = uint64_t{1} << f.bits();
  std::vector<std::pair<double, uint32_t>> first;
  for (uint64_t c = 0; c < n; ++c) {
    const double v = decode(static_cast<uint32_t>(c));
    if (std::isnan(v)) {
      has_nan_ = true;
      continue;
    }
    if (v == 0 && std::signbit(v)) has_neg_zero_ = true;
    if (std::isinf(v)) continue;
    const double key = v == 0 ? 0.0 : v;
    if (finite.insert(key).second) first.push_back({key, static_cast<uint32_t>(c)});
  }
  std::sort(first.begin(), first.end());
  for (auto& [v, c] : first) {
    values_.push_back(v);
    codes_.push_back(c);
  }
}

double Oracle::decode(uint32_t code) const {
  switch (f_.kind()) {
    case ScalarKind::Integer: {
      const auto& p = f_.integer_params();
      // Two's complement: the top bit weighs -2^(b-1) when signed.
      double v = 0;
      for (int b = 0; b < p.bits; ++b)
        if ((code >> b) & 1u) v += (p.is_signed && b == p.bits - 1) ? -pow2(b) : pow2(b);
      if (p.narrow && v == -pow2(p.bits - 1)) v += 1;  // the unused code stands for -max
      return v;
    }
    case ScalarKind::Binary: return code ? -1.0 : 1.0;
    case ScalarKind::Fixed: {
      const auto& p = f_.fixed_params();
      double v = 0;
      for (int b = 0; b < p.width; ++b)
        if ((code >> b) & 1u) v += (p.is_signed && b == p.width - 1) ? -pow2(b) : pow2(b);
      return v * pow2(p.int_bits - p.width);
    }
    case ScalarKind::Minifloat: break;
  }
  const auto& p = f_.minifloat_params();
  const int E = p.exponent_bits, M = p.mantissa_bits;
  const bool s = p.has_sign && ((code >> (E + M)) & 1u);
  const uint32_t body = code & ((1u << (E + M)) - 1);
  const uint32_t exp_field = body >> M, man_field = body & ((1u << M) - 1);
  const double sign = s ? -1.0 : 1.0;
  switch (p.specials) {
    case Specials::Ieee:
      if (exp_field == (1u << E) - 1) return man_field == 0 ? sign * kInf : kNaN;
      break;
    case Specials::Fn:
      if (body == (1u << (E + M)) - 1) return kNaN;
      break;
    case Specials::Fnuz:
      if (s && body == 0) return kNaN;
      break;
    case Specials::None: break;
  }
  if (exp_field == 0 && p.has_zero) {
    if (!p.subnormals) return p.specials == Specials::Fnuz ? 0.0 : sign * 0.0;  // flushed; fnuz has no -0
    return sign * man_field * pow2(1 - p.bias - M);  // 0.m x 2^(1-bias)
  }
  return sign * (pow2(M) + man_field) * pow2(static_cast<int>(exp_field) - p.bias - M);  // 1.m x 2^(e-bias)
}

bool Oracle::significand_odd(double v) const {
  // The last digit of the significand: the mantissa field's low bit, or with no mantissa bits
  // the implicit leading 1 of a normal number.
  const auto it = std::lower_bound(values_.begin(), values_.end(), v);
  const uint32_t code = codes_[static_cast<size_t>(it - values_.begin())];
  if (f_.kind() == ScalarKind::Minifloat) {
    const auto& p = f_.minifloat_params();
    if (p.mantissa_bits > 0) return code & 1u;
    const uint32_t exp_field = code & ((1u << p.exponent_bits) - 1);
    return v != 0 && !(p.has_zero && exp_field == 0);
  }
  if (f_.kind() == ScalarKind::Binary) return code & 1u;
  // Integers and fixed point: the integer in units of the step.
  const double step = f_.kind() == ScalarKind::Fixed ? pow2(f_.fixed_params().int_bits - f_.fixed_params().width) : 1.0;
  return std::fmod(std::fabs(v / step), 2.0) == 1.0;
}

double Oracle::pick(double x, double lo, double hi, Rounding r, uint32_t random24) const {
  const double dlo = x - lo, dhi = hi - x;  // exact: neighbours lie within a factor 2 of x or at 0
  const double lo_mag = std::fabs(lo), hi_mag = std::fabs(hi);
  const double toward_zero = lo_mag < hi_mag ? lo : hi, away = lo_mag < hi_mag ? hi : lo;
  auto nearest_or = [&](double tie) { return dlo < dhi ? lo : dhi < dlo ? hi : tie; };
  switch (r) {
    case Rounding::Down: return lo;
    case Rounding::Up: return hi;
    case Rounding::TowardZero: return toward_zero;
    case Rounding::NearestUp: return nearest_or(hi);
    case Rounding::NearestDown: return nearest_or(lo);
    case Rounding::NearestAway: return nearest_or(away);
    case Rounding::NearestZero: return nearest_or(toward_zero);
    case Rounding::NearestEven: {
      // The neighbour whose significand ends in an even digit. When both are even (0 and the
      // smallest normal across a flushed gap) the tie goes toward zero; when both are odd (no
      // mantissa bits: every normal significand is 1) it goes away from zero, as ml_dtypes.
      const bool odd_lo = significand_odd(lo), odd_hi = significand_odd(hi);
      if (odd_lo != odd_hi) return nearest_or(odd_lo ? hi : lo);
      return nearest_or(odd_lo ? away : toward_zero);
    }
    case Rounding::Stochastic: {
      // Away from the neighbour nearer zero with probability (distance to it) / (gap).
      const double frac = std::fabs(x - toward_zero) / (hi - lo);
      return frac > random24 * 0x1p-24 ? away : toward_zero;
    }
  }
  return lo;
}

double Oracle::quantize(double x, Rounding r, uint32_t random24) const {
  if (f_.kind() == ScalarKind::Minifloat) return quantize_minifloat(x, r, random24);
  return quantize_uniform(x, r, random24);
}

double Oracle::quantize_minifloat(double x, Rounding r, uint32_t random24) const {
  const auto& p = f_.minifloat_params();
  const double smallest_nonneg = *std::lower_bound(values_.begin(), values_.end(), 0.0);
  if (std::isnan(x)) return has_nan_ ? kNaN : decode(0);
  if (!p.has_sign && (x < 0 || std::signbit(x))) return smallest_nonneg;
  const bool neg = x < 0 || std::signbit(x);
  auto signed_result = [&](double mag) {
    if (std::isnan(mag)) return mag;
    if (!neg) return mag;
    return mag == 0 && !has_neg_zero_ ? 0.0 : -mag;
  };
  const double a = std::fabs(x);
  const double overflow = p.specials == Specials::Ieee ? kInf : kNaN;
  // Rounding toward zero in magnitude (for this sign) never leaves the finite range.
  const bool toward_zero = r == Rounding::TowardZero || (r == Rounding::Down && !neg) || (r == Rounding::Up && neg);
  if (std::isinf(a)) return signed_result(p.saturate ? max() : overflow);
  if (a == 0) return signed_result(smallest_nonneg);
  if (!p.has_zero && a < values_.front()) return values_.front();  // nothing below the smallest value
  if (a > max()) {
    if (p.saturate) return signed_result(max());
    // The next point of the grid with unbounded exponent: one step above max, the step of max's
    // binade (or the subnormal step when max is subnormal). Decide on magnitudes between max and
    // it, with the rounding mirrored for negative x.
    const int emin = p.has_zero ? 1 - p.bias : -p.bias;
    const int e = std::max(std::ilogb(max()), emin);
    const double next = max() + pow2(e - p.mantissa_bits);
    if (a >= next) return signed_result(toward_zero ? max() : overflow);
    Rounding mirrored = r;
    if (neg) {
      if (r == Rounding::Down) mirrored = Rounding::Up;
      if (r == Rounding::Up) mirrored = Rounding::Down;
      if (r == Rounding::NearestUp) mirrored = Rounding::NearestDown;
      if (r == Rounding::NearestDown) mirrored = Rounding::NearestUp;
    }
    double chosen;
    if (mirrored == Rounding::NearestEven) {
      // max is odd unless its last mantissa digit is 0; next then has the other parity, except
      // with no mantissa bits, where both significands are 1 (odd): the tie goes away from zero.
      const bool max_odd = significand_odd(max());
      const double dlo = a - max(), dhi = next - a;
      chosen = dlo < dhi ? max() : dhi < dlo ? next : ((max_odd || p.mantissa_bits == 0) ? next : max());
    } else {
      chosen = pick(a, max(), next, mirrored, random24);
    }
    return chosen == next ? signed_result(overflow) : signed_result(max());
  }
  const auto it = std::lower_bound(values_.begin(), values_.end(), x);
  if (*it == x) return signed_result(a);
  const double chosen = pick(x, *(it - 1), *it, r, random24);
  return chosen == 0 ? signed_result(0.0) : chosen;
}

double Oracle::fixed_overflow(double v) const {
  // v: the rounded value in steps, outside the range (or the minimum under AP_SAT_SYM).
  const auto& p = f_.fixed_params();
  const int W = p.width;
  const double qmax = p.is_signed ? pow2(W - 1) - 1 : pow2(W) - 1, qmin = p.is_signed ? -pow2(W - 1) : 0;
  const bool over = v > qmax;
  switch (p.overflow) {
    case FixedOverflow::Sat: return over ? qmax : qmin;
    case FixedOverflow::SatZero: return 0;
    case FixedOverflow::SatSym: return over ? qmax : (p.is_signed ? -qmax : qmin);
    default: break;
  }
  // Wrapping modes act on the bits of the two's complement of v (ap_fixed_base.h overflow_adjust).
  std::vector<bool> bit(static_cast<size_t>(W) + 1);
  double m = std::fmod(v, pow2(W + 1));
  if (m < 0) m += pow2(W + 1);
  for (int b = 0; b <= W; ++b) bit[static_cast<size_t>(b)] = std::fmod(std::floor(m / pow2(b)), 2.0) == 1.0;
  const bool lD = bit[static_cast<size_t>(W)];  // first bit dropped by the wrap
  const bool sign = v < 0;
  const int N = p.saturation_bits;
  auto msb = [&]() -> std::vector<bool>::reference { return bit[static_cast<size_t>(W - 1)]; };
  auto invert = [&] {
    for (int b = 0; b < W; ++b) bit[static_cast<size_t>(b)] = !bit[static_cast<size_t>(b)];
  };
  if (p.overflow == FixedOverflow::Wrap) {
    if (N > 0) {
      if (p.is_signed) {
        msb() = sign;
        for (int b = W - N; b <= W - 2; ++b) bit[static_cast<size_t>(b)] = !sign;
      } else {
        for (int b = W - N; b <= W - 1; ++b) bit[static_cast<size_t>(b)] = true;
      }
    }
  } else {  // AP_WRAP_SM
    if (N == 0) {
      if (lD != msb()) {
        invert();
        msb() = lD;
      }
    } else if (N == 1) {
      if (sign != msb()) invert();
      msb() = sign;
    } else {
      if (bit[static_cast<size_t>(W - N)] == sign) invert();
      for (int b = W - N; b <= W - 2; ++b) bit[static_cast<size_t>(b)] = !sign;
      msb() = sign;
    }
  }
  double out = 0;
  for (int b = 0; b < W; ++b)
    if (bit[static_cast<size_t>(b)]) out += (p.is_signed && b == W - 1) ? -pow2(b) : pow2(b);
  return out;
}

double Oracle::quantize_uniform(double x, Rounding r, uint32_t random24) const {
  if (f_.kind() == ScalarKind::Binary) {
    if (std::isnan(x)) return 1.0;
    if (x >= 1) return 1.0;
    if (x <= -1) return -1.0;
    // Stochastic: +1 with probability (x + 1) / 2 (the distance from -1 over the gap) > u,
    // written x > 2u - 1 to stay exact.
    if (r == Rounding::Stochastic) return x > 2 * (random24 * 0x1p-24) - 1 ? 1.0 : -1.0;
    if (x == 0) {  // the tie: -1 and +1 are equally near
      if (r == Rounding::Down || r == Rounding::NearestDown) return -1.0;
      return 1.0;  // +1 has the even code, 0
    }
    if (r == Rounding::Down) return -1.0;
    if (r == Rounding::Up) return 1.0;
    return x > 0 ? 1.0 : -1.0;  // every other mode goes to the nearer of -1 and +1
  }
  if (std::isnan(x)) return 0.0;
  const bool fixed = f_.kind() == ScalarKind::Fixed;
  const double step = fixed ? pow2(f_.fixed_params().int_bits - f_.fixed_params().width) : 1.0;
  if (std::isinf(x)) {
    if (fixed && f_.fixed_params().overflow == FixedOverflow::SatZero) return 0.0;
    if (x > 0) return max();
    return fixed && f_.fixed_params().overflow == FixedOverflow::SatSym && f_.fixed_params().is_signed ? 0.0 - max() : lowest();
  }
  // Round on the unbounded grid of multiples of step, then handle the range.
  const double q = x / step;
  double v = std::floor(q);
  if (v != q) {
    const double chosen = [&] {
      // pick() needs the parity of lo as a code of this format: use the grid integer itself.
      const double lo = v, hi = v + 1;
      const double dlo = q - lo, dhi = hi - q;
      const double tz = std::fabs(lo) < std::fabs(hi) ? lo : hi, aw = std::fabs(lo) < std::fabs(hi) ? hi : lo;
      auto nearest_or = [&](double tie) { return dlo < dhi ? lo : dhi < dlo ? hi : tie; };
      switch (r) {
        case Rounding::Down: return lo;
        case Rounding::Up: return hi;
        case Rounding::TowardZero: return tz;
        case Rounding::NearestUp: return nearest_or(hi);
        case Rounding::NearestDown: return nearest_or(lo);
        case Rounding::NearestAway: return nearest_or(aw);
        case Rounding::NearestZero: return nearest_or(tz);
        case Rounding::NearestEven: return nearest_or(std::fmod(std::fabs(lo), 2.0) == 1.0 ? hi : lo);
        case Rounding::Stochastic: return std::fabs(q - tz) > random24 * 0x1p-24 ? aw : tz;
      }
      return lo;
    }();
    v = chosen;
  }
  const double qmax = max() / step, qmin = lowest() / step;
  const bool sym_min = fixed && f_.fixed_params().overflow == FixedOverflow::SatSym && f_.fixed_params().is_signed && v == qmin;
  if (v >= qmin && v <= qmax && !sym_min) return v == 0 ? 0.0 : v * step;
  if (!fixed) return v > qmax ? max() : lowest();
  const double w = fixed_overflow(v);
  return w == 0 ? 0.0 : w * step;
}

std::vector<double> probe_inputs(const std::vector<double>& values) {
  std::vector<double> in;
  auto with_ulps = [&](double v) {
    in.push_back(v);
    const float f = static_cast<float>(v);
    if (static_cast<double>(f) == v && std::isfinite(f)) {
      in.push_back(std::nextafter(f, std::numeric_limits<float>::infinity()));
      in.push_back(std::nextafter(f, -std::numeric_limits<float>::infinity()));
    }
  };
  for (size_t i = 0; i < values.size(); ++i) {
    with_ulps(values[i]);
    if (i + 1 < values.size()) with_ulps((values[i] + values[i + 1]) / 2);
  }
  const double mx = std::max(std::fabs(values.front()), std::fabs(values.back()));
  for (double v : {0.0, -0.0, kInf, -kInf, kNaN, mx * 1.5, mx * 2, mx * 4, mx * 1e6, 1e30, -1e30, 1e-30, -1e-30,
                   static_cast<double>(std::numeric_limits<float>::max()), static_cast<double>(std::numeric_limits<float>::denorm_min())}) {
    with_ulps(v);
    with_ulps(-v);
  }
  // Beyond the ends by half and a whole step of the last gap.
  if (values.size() > 1) {
    const double top_gap = values.back() - values[values.size() - 2];
    const double bottom_gap = values[1] - values.front();
    for (double k : {0.25, 0.5, 0.75, 1.0, 1.5}) {
      with_ulps(values.back() + k * top_gap);
      with_ulps(values.front() - k * bottom_gap);
    }
  }
  return in;
}

}  // namespace lowbit::test

#include "tests/format/test_formats.hpp"

namespace lowbit::test {

std::vector<ScalarFormat> small_integer_formats() {
  std::vector<ScalarFormat> out{ScalarFormat::binary()};
  for (int b = 1; b <= 8; ++b) {
    out.push_back(ScalarFormat::integer({b, true, false}));
    out.push_back(ScalarFormat::integer({b, false, false}));
    if (b >= 2) out.push_back(ScalarFormat::integer({b, true, true}));
  }
  return out;
}

std::vector<ScalarFormat> small_minifloat_formats() {
  std::vector<ScalarFormat> out;
  for (bool sign : {true, false})
    for (int E = 1; E <= 8; ++E)
      for (int M = 0; E + M + (sign ? 1 : 0) <= 8; ++M) {
        if (E + M + (sign ? 1 : 0) < 2) continue;
        for (Specials sp : {Specials::Ieee, Specials::Fn, Specials::Fnuz, Specials::None})
          for (int sub = 0; sub < 3; ++sub)  // subnormals, flush, no zero
            for (bool sat : {true, false})
              for (int bias_shift : {0, 3}) {
                MinifloatParams p{E, M, sign, MinifloatParams::default_bias(E) + bias_shift, sp, sub == 0, sub != 2, sat};
                if (sp == Specials::None && !sat) continue;
                try {
                  out.push_back(ScalarFormat::minifloat(p));
                } catch (const FormatError&) {
                }
              }
      }
  return out;
}

std::vector<ScalarFormat> small_fixed_formats() {
  std::vector<ScalarFormat> out;
  const Rounding qs[] = {Rounding::NearestUp, Rounding::NearestZero, Rounding::NearestDown, Rounding::NearestAway,
                         Rounding::NearestEven, Rounding::Down, Rounding::TowardZero};
  const FixedOverflow os[] = {FixedOverflow::Sat, FixedOverflow::SatZero, FixedOverflow::SatSym, FixedOverflow::Wrap,
                              FixedOverflow::WrapSm};
  for (int W = 1; W <= 8; ++W)
    for (int I : {-2, 0, 1, W / 2, W, W + 3})
      for (bool sign : {true, false})
        for (Rounding q : qs)
          for (FixedOverflow o : os)
            for (int N : {0, 1, 2, W}) {
              if (N > W || (N > 0 && o != FixedOverflow::Wrap && o != FixedOverflow::WrapSm)) continue;
              if (o == FixedOverflow::WrapSm && !sign) continue;
              out.push_back(ScalarFormat::fixed({W, I, sign, q, o, N}));
            }
  return out;
}

}  // namespace lowbit::test
