#include "lowbit/format/scalar_format.hpp"

#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

namespace lowbit {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

bool is_odd(double integral) { return std::fmod(integral, 2.0) != 0.0; }

std::string_view overflow_name(FixedOverflow o) {
  switch (o) {
    case FixedOverflow::Sat: return "AP_SAT";
    case FixedOverflow::SatZero: return "AP_SAT_ZERO";
    case FixedOverflow::SatSym: return "AP_SAT_SYM";
    case FixedOverflow::Wrap: return "AP_WRAP";
    case FixedOverflow::WrapSm: return "AP_WRAP_SM";
  }
  return "?";
}

std::string_view quantization_name(Rounding r) {
  switch (r) {
    case Rounding::NearestUp: return "AP_RND";
    case Rounding::NearestZero: return "AP_RND_ZERO";
    case Rounding::NearestDown: return "AP_RND_MIN_INF";
    case Rounding::NearestAway: return "AP_RND_INF";
    case Rounding::NearestEven: return "AP_RND_CONV";
    case Rounding::Down: return "AP_TRN";
    case Rounding::TowardZero: return "AP_TRN_ZERO";
    default: return "?";
  }
}

std::string_view specials_name(Specials s) {
  switch (s) {
    case Specials::Ieee: return "ieee";
    case Specials::Fn: return "fn";
    case Specials::Fnuz: return "fnuz";
    case Specials::None: return "none";
  }
  return "?";
}

}  // namespace

ScalarFormat ScalarFormat::integer(IntegerParams p) {
  if (p.bits < 1 || p.bits > 16) throw FormatError(fmt::format("integer width must be 1..16 bits, got {}", p.bits));
  if (p.narrow && (!p.is_signed || p.bits < 2))
    throw FormatError("narrow range needs a signed integer of at least 2 bits");
  ScalarFormat f;
  f.kind_ = ScalarKind::Integer;
  f.int_ = p;
  f.bits_ = p.bits;
  f.compute_properties();
  return f;
}

ScalarFormat ScalarFormat::binary() {
  ScalarFormat f;
  f.kind_ = ScalarKind::Binary;
  f.bits_ = 1;
  f.compute_properties();
  return f;
}

ScalarFormat ScalarFormat::minifloat(MinifloatParams p) {
  const int total = p.exponent_bits + p.mantissa_bits + (p.has_sign ? 1 : 0);
  const std::string name = fmt::format("{}e{}m{}", p.has_sign ? "" : "u", p.exponent_bits, p.mantissa_bits);
  if (p.exponent_bits < 1) throw FormatError(fmt::format("{}: exponent width must be at least 1", name));
  if (p.mantissa_bits < 0) throw FormatError(fmt::format("{}: mantissa width must be at least 0", name));
  if (total < 2 || total > 16)
    throw FormatError(fmt::format("{}: a minifloat has 2 to 16 bits in total, this one has {}", name, total));
  if (p.specials == Specials::Fnuz && !p.has_sign)
    throw FormatError(fmt::format("{}: specials=fnuz puts NaN at the negative-zero code and needs a sign bit", name));
  if (!p.has_zero && p.has_sign)
    throw FormatError(fmt::format("{}: zero=no (no zero, as E8M0) is for unsigned formats (u{})", name, name));
  if (!p.has_zero && p.subnormals)
    throw FormatError(fmt::format("{}: zero=no makes the zero-exponent binade normal; it needs subnormals=off", name));
  if (p.specials == Specials::None) p.saturate = true;
  ScalarFormat f;
  f.kind_ = ScalarKind::Minifloat;
  f.mf_ = p;
  f.bits_ = total;
  f.compute_properties();
  // Every value must be a float32.
  if (f.min_positive_ < 0x1p-149 || f.max_ > std::numeric_limits<float>::max())
    throw FormatError(fmt::format("{} with bias {}: values span {:g}..{:g}, outside float32", name, p.bias,
                                  f.min_positive_, f.max_));
  return f;
}

ScalarFormat ScalarFormat::fixed(FixedParams p) {
  const std::string name = fmt::format("{}fixed<{},{}>", p.is_signed ? "" : "u", p.width, p.int_bits);
  if (p.width < 1 || p.width > 32) throw FormatError(fmt::format("{}: width W must be 1..32", name));
  if (p.int_bits - p.width < -149 || p.int_bits > 127)
    throw FormatError(fmt::format("{}: the step 2^{} or the range 2^{} is outside float32", name,
                                  p.int_bits - p.width, p.int_bits));
  if (p.saturation_bits < 0 || p.saturation_bits > p.width)
    throw FormatError(fmt::format("{}: saturation bits N must be 0..W, got {}", name, p.saturation_bits));
  if (p.overflow == FixedOverflow::WrapSm && !p.is_signed)
    throw FormatError(fmt::format("{}: AP_WRAP_SM needs a signed type (ap_fixed)", name));
  if (quantization_name(p.quantization) == "?")
    throw FormatError(fmt::format("{}: rounding '{}' is not an ap_fixed quantization mode", name, lowbit::to_string(p.quantization)));
  ScalarFormat f;
  f.kind_ = ScalarKind::Fixed;
  f.fx_ = p;
  f.bits_ = p.width;
  f.compute_properties();
  return f;
}

void ScalarFormat::compute_properties() {
  if (kind_ == ScalarKind::Fixed) {
    const double step = std::ldexp(1.0, fx_.int_bits - fx_.width);
    if (fx_.is_signed) {
      max_ = (std::ldexp(1.0, fx_.width - 1) - 1) * step;
      lowest_ = -std::ldexp(1.0, fx_.width - 1) * step;
    } else {
      max_ = (std::ldexp(1.0, fx_.width) - 1) * step;
      lowest_ = 0;
    }
    min_normal_ = min_positive_ = step;
    finite_values_ = code_count();
    float32_exact_ = fx_.width <= 24;
    return;
  }
  std::set<double> finite;
  has_nan_ = has_inf_ = false;
  for (uint64_t c = 0; c < code_count(); ++c) {
    const double v = decode(static_cast<uint32_t>(c));
    if (std::isnan(v)) has_nan_ = true;
    else if (std::isinf(v)) has_inf_ = true;
    else finite.insert(v == 0 ? 0.0 : v);
  }
  finite_values_ = finite.size();
  max_ = *finite.rbegin();
  lowest_ = *finite.begin();
  auto pos = finite.upper_bound(0.0);
  min_positive_ = pos == finite.end() ? 0.0 : *pos;
  if (kind_ == ScalarKind::Minifloat) {
    const int emin = mf_.has_zero ? 1 - mf_.bias : -mf_.bias;
    min_normal_ = std::ldexp(1.0, emin);
  } else {
    min_normal_ = min_positive_;
  }
  float32_exact_ = true;
}

bool ScalarFormat::has_negative_zero() const {
  return kind_ == ScalarKind::Minifloat && mf_.has_sign && mf_.has_zero && mf_.specials != Specials::Fnuz;
}

double ScalarFormat::dynamic_range_binades() const {
  return min_positive_ > 0 ? std::log2(max_ / min_positive_) : 0.0;
}

Rounding ScalarFormat::default_rounding() const {
  return kind_ == ScalarKind::Fixed ? fx_.quantization : Rounding::NearestEven;
}

double ScalarFormat::decode(uint32_t code) const {
  switch (kind_) {
    case ScalarKind::Integer: {
      const int64_t c = code;
      if (!int_.is_signed) return static_cast<double>(c);
      const int64_t half = int64_t{1} << (int_.bits - 1);
      const int64_t v = c >= half ? c - 2 * half : c;
      if (int_.narrow && v == -half) return static_cast<double>(-half + 1);  // unused code aliases -max
      return static_cast<double>(v);
    }
    case ScalarKind::Binary: return code == 0 ? 1.0 : -1.0;
    case ScalarKind::Fixed: {
      const int64_t c = code;
      int64_t v = c;
      if (fx_.is_signed && fx_.width > 0 && c >= (int64_t{1} << (fx_.width - 1))) v = c - (int64_t{1} << fx_.width);
      return std::ldexp(static_cast<double>(v), fx_.int_bits - fx_.width);
    }
    case ScalarKind::Minifloat: break;
  }
  const int E = mf_.exponent_bits, M = mf_.mantissa_bits;
  const uint32_t body_bits = static_cast<uint32_t>(E + M);
  const bool neg = mf_.has_sign && ((code >> body_bits) & 1u);
  const uint32_t ef = (code >> M) & ((1u << E) - 1);
  const uint32_t mf = code & ((1u << M) - 1);
  const uint32_t all_e = (1u << E) - 1, all_m = (1u << M) - 1;
  if (mf_.specials == Specials::Fnuz && code == (1u << body_bits)) return kNaN;
  if (mf_.specials == Specials::Fn && ef == all_e && mf == all_m) return kNaN;
  if (mf_.specials == Specials::Ieee && ef == all_e) return mf == 0 ? (neg ? -kInf : kInf) : kNaN;
  double mag;
  if (ef == 0 && mf_.has_zero) {
    if (!mf_.subnormals && mf_.specials == Specials::Fnuz) return 0.0;  // flushed; fnuz has no -0
    mag = mf_.subnormals ? std::ldexp(static_cast<double>(mf), 1 - mf_.bias - M) : 0.0;
  } else {
    mag = std::ldexp(static_cast<double>((1u << M) + mf), static_cast<int>(ef) - mf_.bias - M);
  }
  return neg ? -mag : mag;
}

double ScalarFormat::quantize(double x, Rounding r, uint32_t random24) const {
  switch (kind_) {
    case ScalarKind::Integer: return quantize_integer(x, r, random24);
    case ScalarKind::Binary: return quantize_binary(x, r, random24);
    case ScalarKind::Minifloat: return quantize_minifloat(x, r, random24);
    case ScalarKind::Fixed: return quantize_fixed(x, r, random24);
  }
  return kNaN;
}

double ScalarFormat::quantize_integer(double x, Rounding r, uint32_t random24) const {
  if (std::isnan(x)) return 0.0;
  const double v = round_integer(x, r, random24);
  if (v > max_) return max_;
  if (v < lowest_) return lowest_;
  return v == 0 ? 0.0 : v;
}

double ScalarFormat::quantize_binary(double x, Rounding r, uint32_t random24) const {
  if (std::isnan(x) || x >= 1.0) return 1.0;
  if (x <= -1.0) return -1.0;
  switch (r) {
    case Rounding::Down: return -1.0;
    case Rounding::Up: return 1.0;
    case Rounding::NearestDown: return x > 0 ? 1.0 : -1.0;
    case Rounding::Stochastic: return x > 2.0 * (static_cast<double>(random24) * 0x1p-24) - 1.0 ? 1.0 : -1.0;
    default: return x < 0 ? -1.0 : 1.0;  // the tie at 0 goes to +1, code 0 (the even code)
  }
}

double ScalarFormat::minifloat_overflow(MagnitudeRounding m, bool infinite_input) const {
  if (mf_.saturate) return max_;
  if (!infinite_input && m == MagnitudeRounding::Down) return max_;  // rounding toward zero never overflows
  return mf_.specials == Specials::Ieee ? kInf : kNaN;
}

double ScalarFormat::quantize_minifloat(double x, Rounding r, uint32_t random24) const {
  const double below_all = mf_.has_zero ? 0.0 : min_positive_;
  if (std::isnan(x)) return has_nan_ ? kNaN : decode(0);
  const bool neg = std::signbit(x);
  if (neg && !mf_.has_sign) return below_all;
  const double a = std::fabs(x);
  const MagnitudeRounding m = magnitude_rounding(r, neg);
  const int M = mf_.mantissa_bits;
  const int emin = mf_.has_zero ? 1 - mf_.bias : -mf_.bias;  // exponent of the lowest normal binade
  double mag;
  if (std::isinf(a)) {
    mag = minifloat_overflow(m, true);
  } else if (a == 0) {
    mag = below_all;
  } else {
    const int e = std::ilogb(a);
    if (!mf_.has_zero && e < emin) {
      mag = min_positive_;  // nothing lies below the smallest value
    } else {
      // Ties go to the neighbour whose significand ends in an even digit. In units of the step,
      // the lower neighbour's significand is `lo` (with M = 0 a normal's significand is the
      // single digit 1, so a tie goes up, as in ml_dtypes).
      const double ulp = std::ldexp(1.0, e >= emin ? e - M : (mf_.subnormals ? emin - M : emin));
      const double q = a / ulp;
      const double lo = std::floor(q);
      const double frac = q - lo;
      const bool lower_odd = is_odd(lo);
      mag = lo * ulp;
      if (frac > 0 && rounds_up(m, frac, lower_odd, random24)) mag = (lo + 1) * ulp;
      if (mag > max_) mag = minifloat_overflow(m, false);
    }
  }
  if (!neg) return mag;
  if (mag == 0 && !has_negative_zero()) return 0.0;
  return -mag;
}

double ScalarFormat::fixed_out_of_range(double v) const {
  // v is an integer number of steps outside [qmin, qmax]; returns the code value in steps.
  const int W = fx_.width;
  const double qmax = fx_.is_signed ? std::ldexp(1.0, W - 1) - 1 : std::ldexp(1.0, W) - 1;
  const double qmin = fx_.is_signed ? -std::ldexp(1.0, W - 1) : 0.0;
  const bool over = v > qmax;
  switch (fx_.overflow) {
    case FixedOverflow::Sat: return over ? qmax : qmin;
    case FixedOverflow::SatZero: return 0.0;
    case FixedOverflow::SatSym: return over ? qmax : (fx_.is_signed ? -qmax : qmin);
    case FixedOverflow::Wrap:
    case FixedOverflow::WrapSm: break;
  }
  // Wrapping works on the two's complement bit pattern of the rounded integer v.
  const double modulus = std::ldexp(1.0, W);
  double low = std::fmod(v, modulus);
  if (low < 0) low += modulus;  // low W bits as an unsigned number
  uint64_t bits = static_cast<uint64_t>(low);
  const uint64_t all = (W == 64) ? ~uint64_t{0} : ((uint64_t{1} << W) - 1);
  const int N = fx_.saturation_bits;
  const bool sign = v < 0;  // sign of the value being converted
  auto set_range = [&](int lo_bit, int hi_bit, bool ones) {
    for (int b = lo_bit; b <= hi_bit; ++b) {
      if (ones) bits |= uint64_t{1} << b;
      else bits &= ~(uint64_t{1} << b);
    }
  };
  if (fx_.overflow == FixedOverflow::Wrap) {
    if (N > 0) {
      if (fx_.is_signed) {
        set_range(W - 1, W - 1, sign);
        if (N > 1) set_range(W - N, W - 2, !sign);
      } else {
        set_range(W - N, W - 1, true);
      }
    }
  } else {  // WrapSm
    const bool msb = (bits >> (W - 1)) & 1u;
    if (N == 0) {
      // lD: bit W of the two's complement value, the first bit that wrapping drops
      double above = std::fmod(std::floor(v / modulus), 2.0);
      if (above < 0) above += 2.0;
      const bool ld = above != 0.0;
      if (ld != msb) {
        bits = ~bits & all;
        set_range(W - 1, W - 1, ld);
      }
    } else if (N == 1) {
      if (sign != msb) {
        bits = ~bits & all;
        set_range(W - 1, W - 1, sign);
      }
    } else {
      const bool lNo = (bits >> (W - N)) & 1u;
      if (lNo == sign) bits = ~bits & all;
      set_range(W - N, W - 2, !sign);
      set_range(W - 1, W - 1, sign);
    }
  }
  bits &= all;
  if (fx_.is_signed && ((bits >> (W - 1)) & 1u)) return static_cast<double>(bits) - modulus;
  return static_cast<double>(bits);
}

double ScalarFormat::quantize_fixed(double x, Rounding r, uint32_t random24) const {
  if (std::isnan(x)) return 0.0;
  const double step = std::ldexp(1.0, fx_.int_bits - fx_.width);
  const bool neg = std::signbit(x);
  const double a = std::fabs(x);
  double v;
  if (std::isinf(a)) {
    v = neg ? -kInf : kInf;
  } else {
    const double q = a / step;
    const double lo = std::floor(q);
    const double frac = q - lo;
    double mag = lo;
    if (frac > 0 && rounds_up(magnitude_rounding(r, neg), frac, is_odd(lo), random24)) mag = lo + 1;
    v = neg ? -mag : mag;
  }
  const double qmax = max_ / step, qmin = lowest_ / step;
  // AP_SAT_SYM treats the most negative code as an underflow too (ap_fixed_base.h).
  const bool sym_min = fx_.overflow == FixedOverflow::SatSym && fx_.is_signed && v == qmin;
  if (v >= qmin && v <= qmax && !sym_min) return v == 0 ? 0.0 : v * step;
  if (std::isinf(v)) {  // infinities saturate whatever the mode (wrapping them has no meaning)
    if (fx_.overflow == FixedOverflow::SatZero) return 0.0;
    if (v > 0) return max_;
    return fx_.overflow == FixedOverflow::SatSym && fx_.is_signed ? 0.0 - max_ : lowest_;
  }
  const double w = fixed_out_of_range(v);
  return w == 0 ? 0.0 : w * step;
}

uint32_t ScalarFormat::code_of(double v) const {
  switch (kind_) {
    case ScalarKind::Integer: {
      const int64_t i = static_cast<int64_t>(v);
      return static_cast<uint32_t>(static_cast<uint64_t>(i) & ((uint64_t{1} << int_.bits) - 1));
    }
    case ScalarKind::Binary: return v < 0 ? 1u : 0u;
    case ScalarKind::Fixed: {
      const int64_t i = static_cast<int64_t>(std::ldexp(v, fx_.width - fx_.int_bits));
      return static_cast<uint32_t>(static_cast<uint64_t>(i) & ((uint64_t{1} << fx_.width) - 1));
    }
    case ScalarKind::Minifloat: break;
  }
  const int E = mf_.exponent_bits, M = mf_.mantissa_bits;
  const uint32_t body_bits = static_cast<uint32_t>(E + M);
  const uint32_t all_e = (1u << E) - 1, all_m = (1u << M) - 1;
  if (std::isnan(v)) {
    if (mf_.specials == Specials::Fnuz) return 1u << body_bits;
    if (mf_.specials == Specials::Fn) return (all_e << M) | all_m | (mf_.has_sign ? 1u << body_bits : 0u);
    if (mf_.specials == Specials::Ieee && M > 0) return (all_e << M) | all_m | (mf_.has_sign ? 1u << body_bits : 0u);
    return 0;
  }
  const uint32_t sign = (mf_.has_sign && std::signbit(v) && !(v == 0 && !has_negative_zero())) ? 1u << body_bits : 0u;
  const double a = std::fabs(v);
  if (std::isinf(a)) return sign | (all_e << M);
  if (a == 0) return sign;
  const int emin = mf_.has_zero ? 1 - mf_.bias : -mf_.bias;
  const int e = std::ilogb(a);
  if (e < emin) return sign | static_cast<uint32_t>(std::ldexp(a, -(emin - M)));  // subnormal
  const uint32_t field = static_cast<uint32_t>(e + mf_.bias);
  const uint32_t mant = static_cast<uint32_t>(std::ldexp(a, M - e)) - (1u << M);
  return sign | (field << M) | mant;
}

bool ScalarFormat::significand_odd(double v) const {
  if (kind_ == ScalarKind::Minifloat && mf_.mantissa_bits == 0) {
    if (v == 0 || std::isnan(v) || std::isinf(v)) return false;
    return !(mf_.has_zero && std::fabs(v) < min_normal_);
  }
  return code_of(v) & 1u;
}

uint32_t ScalarFormat::encode(double x, Rounding r, uint32_t random24) const {
  return code_of(quantize(x, r, random24));
}

std::string ScalarFormat::to_string() const {
  switch (kind_) {
    case ScalarKind::Integer:
      return fmt::format("{}int{}{}", int_.is_signed ? "" : "u", int_.bits, int_.narrow ? "n" : "");
    case ScalarKind::Binary: return "binary";
    case ScalarKind::Fixed: {
      std::string s = fmt::format("{}fixed<{},{},{},{}", fx_.is_signed ? "" : "u", fx_.width, fx_.int_bits,
                                  quantization_name(fx_.quantization), overflow_name(fx_.overflow));
      if (fx_.saturation_bits) s += fmt::format(",{}", fx_.saturation_bits);
      return s + ">";
    }
    case ScalarKind::Minifloat: break;
  }
  std::string s = fmt::format("{}e{}m{}", mf_.has_sign ? "" : "u", mf_.exponent_bits, mf_.mantissa_bits);
  std::string opts;
  auto add = [&](std::string o) { opts += (opts.empty() ? ":" : ",") + o; };
  if (mf_.bias != MinifloatParams::default_bias(mf_.exponent_bits)) add(fmt::format("bias={}", mf_.bias));
  if (mf_.specials != Specials::Ieee) add(fmt::format("specials={}", specials_name(mf_.specials)));
  if (!mf_.subnormals) add("subnormals=off");
  if (!mf_.has_zero) add("zero=no");
  if (!mf_.saturate) add("saturate=no");
  return s + opts;
}

bool ScalarFormat::operator==(const ScalarFormat& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case ScalarKind::Integer: return int_ == o.int_;
    case ScalarKind::Binary: return true;
    case ScalarKind::Minifloat: return mf_ == o.mf_;
    case ScalarKind::Fixed: return fx_ == o.fx_;
  }
  return false;
}

std::optional<ScalarFormat> unsigned_of_same_width(const ScalarFormat& f) {
  if (f.kind() == ScalarKind::Integer && f.integer_params().is_signed)
    return ScalarFormat::integer(IntegerParams{f.bits(), false, false});
  if (f.kind() == ScalarKind::Minifloat) {
    MinifloatParams p = f.minifloat_params();
    if (!p.has_sign || p.specials == Specials::Fnuz) return std::nullopt;
    p.has_sign = false;
    ++p.mantissa_bits;
    return ScalarFormat::minifloat(p);
  }
  return std::nullopt;
}

}  // namespace lowbit
