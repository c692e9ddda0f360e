// SIMD fake quantization of scalar formats, block formats and BitMoD, compiled once per target by
// Highway and dispatched at run time. Element rounding is exact float32 arithmetic on powers of two
// (see docs/kernels.md), so results match ScalarFormat::quantize bit for bit; block scales and
// divisions by them repeat the reference's operations in its order; BitMoD's choice of grid is
// taken from float error sums only where their rounding cannot change it (else the reference).
#include <cmath>
#include <cstring>
#include <algorithm>
#include <limits>
#include <vector>

#include "src/format/element_plan.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/format/fake_quant_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/cache_control.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
using VU = hn::Vec<DU>;
using MF = hn::Mask<DF>;

// lowbit::stochastic_bits's hash before its final shift, xor `last` (0, or all ones for its
// complement), from its first value: the element's index's low 32 bits xor StochasticKey.
HWY_INLINE uint32_t StochasticKey(uint32_t seed, uint64_t index) {
  return (static_cast<uint32_t>(index >> 32) * 0x9E3779B9u) ^ (seed * 0x85EBCA6Bu);
}
HWY_INLINE VU StochasticMix(DU du, VU x, VU last) {
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  x = hn::Mul(x, hn::Set(du, 0x7FEB352Du));
  x = hn::Xor(x, hn::ShiftRight<15>(x));
  x = hn::Mul(x, hn::Set(du, 0x846CA68Bu));
  return hn::Xor(hn::Xor(x, hn::ShiftRight<16>(x)), last);
}

// The hash's first value for elements index0, index0 + 1, ... (one per lane).
HWY_INLINE VU StochasticStart(DU du, uint32_t seed, uint64_t index0) {
  // index < 2^32 per span chunk is guaranteed by the caller splitting on 2^32 boundaries.
  const VU idx = hn::Add(hn::Iota(du, 0u), hn::Set(du, static_cast<uint32_t>(index0)));
  return hn::Xor(idx, hn::Set(du, StochasticKey(seed, index0)));
}

// 24 random bits per lane, identical to lowbit::stochastic_bits.
HWY_INLINE VU StochasticBits(DU du, uint32_t seed, uint64_t index0) {
  return hn::ShiftRight<8>(StochasticMix(du, StochasticStart(du, seed, index0), hn::Zero(du)));
}

// Stochastic rounding of magnitudes a (>= 0; inf / NaN lanes are the caller's) on the float32 bit
// pattern, for a plan with stochastic_on_bits. The reference rounds up when frac > R / 2^24 (R the
// element's 24 random bits), where frac = D / 2^k for the k bits D that the step discards from a.
// With T = R >> (24 - k) that is D > T: D + (2^k - 1 - T) carries into bit k. So adding
// 2^k - 1 - T = (2^24 - 1 - R) >> (24 - k) and clearing the k low bits rounds, and a carry into the
// exponent field gives the next binade's value. k = 23 - M from 2^emin up and grows below it, up to
// 23 at the smallest step; below that step the result is 0 or the step: a > R * step / 2^24.
struct StochasticOnBits {
  VI j_offset, j_max, eight;
  VU ones24;
  VF step, unit, step_less_unit;
  explicit StochasticOnBits(const ElementPlan& p)
      : j_offset(hn::Set(DI(), p.mantissa_bits + 1 - 127 - p.emin)),
        j_max(hn::Set(DI(), p.mantissa_bits + 1)),
        eight(hn::Set(DI(), 8)),
        ones24(hn::Set(DU(), 0xFFFFFFu)),
        step(hn::Set(DF(), p.min_step)),
        unit(hn::Set(DF(), p.min_step * 0x1p-24f)),
        step_less_unit(hn::Set(DF(), p.min_step - p.min_step * 0x1p-24f)) {}
};
// inverted: the complement of the element's hash (StochasticMix), whose top 24 bits are 2^24 - 1 - R.
HWY_INLINE VF RoundStochasticOnBits(DF df, const StochasticOnBits& k, VF a, VU inverted) {
  const DU du;
  const DI di;
  const VU bits = hn::BitCast(du, a);
  // 24 - k = min(M + 1, exponent - emin + M + 1), held at 0 for lanes below the smallest step
  // (their result comes from the threshold; a negative shift count is undefined on the scalar target).
  const VI j = hn::Max(hn::Min(hn::Add(hn::BitCast(di, hn::ShiftRight<23>(bits)), k.j_offset), k.j_max), hn::Zero(di));
  const VU add = inverted >> hn::BitCast(du, hn::Add(j, k.eight));  // (2^24 - 1 - R) >> (24 - k)
  const VU low = k.ones24 >> hn::BitCast(du, j);                    // 2^k - 1
  const VF rounded = hn::BitCast(df, hn::AndNot(low, hn::Add(bits, add)));
  // R * step / 2^24 = (step - step / 2^24) - (2^24 - 1 - R) * step / 2^24, every term exact.
  const VF complement = hn::ConvertTo(df, hn::BitCast(di, hn::ShiftRight<8>(inverted)));
  const VF threshold = hn::NegMulAdd(complement, k.unit, k.step_less_unit);
  return hn::IfThenElse(hn::Lt(a, k.step), hn::IfThenElseZero(hn::Gt(a, threshold), k.step), rounded);
}

// Whether a magnitude with remainder rem (0 <= rem < ulp) above its lower neighbour rounds up.
HWY_INLINE MF RoundsUp(DF df, MagnitudeRounding m, VF rem, VF ulp, MF lower_odd, VF random_threshold) {
  const VF rem2 = hn::Add(rem, rem);
  switch (m) {
    case MagnitudeRounding::NearestEven: return hn::Or(hn::Gt(rem2, ulp), hn::And(hn::Eq(rem2, ulp), lower_odd));
    case MagnitudeRounding::NearestUp: return hn::Ge(rem2, ulp);
    case MagnitudeRounding::NearestDown: return hn::Gt(rem2, ulp);
    case MagnitudeRounding::Down: return hn::FirstN(df, 0);
    case MagnitudeRounding::Up: return hn::Gt(rem, hn::Zero(df));
    case MagnitudeRounding::Stochastic: return hn::Gt(rem, random_threshold);
  }
  return hn::FirstN(df, 0);
}

// Whether a magnitude y (in units of the step, not an integer) rounds up from Floor(y), given its
// fraction frac = y - Floor(y) (exact) and, for Stochastic, 24-bit uniforms u in [0, 1).
HWY_INLINE MF FractionRoundsUp(DF df, MagnitudeRounding m, VF frac, VF u) {
  switch (m) {
    case MagnitudeRounding::NearestUp: return hn::Ge(frac, hn::Set(df, 0.5f));
    case MagnitudeRounding::NearestDown: return hn::Gt(frac, hn::Set(df, 0.5f));
    case MagnitudeRounding::Up: return hn::Gt(frac, hn::Zero(df));
    case MagnitudeRounding::Stochastic: return hn::Gt(frac, u);
    case MagnitudeRounding::Down:
    case MagnitudeRounding::NearestEven: break;  // nearest-even never comes here
  }
  return hn::FirstN(df, 0);
}

// Rounds magnitudes a (>= 0, may be inf/NaN: callers overwrite those lanes) to multiples of ulp
// (a power of two; magic = ulp * 2^23, inv_ulp = 1 / ulp when p.scaled). neg marks negative lanes.
template <class Plan>
HWY_INLINE VF RoundMagnitude(DF df, const Plan& p, VF a, VF ulp, VF inv_ulp, VF magic, MF neg, uint64_t index0) {
  // a >= magic: a is already a multiple of ulp.
  const MF big = hn::Ge(a, magic);
  if (p.mode_pos == MagnitudeRounding::NearestEven && p.mode_neg == MagnitudeRounding::NearestEven) {
    // Float addition rounds to nearest even at exactly the step ulp (ulp <= |a + magic| < 2 magic).
    return hn::IfThenElse(big, a, hn::Sub(hn::Add(a, magic), magic));
  }
  VF u = hn::Zero(df);
  if (p.stochastic)
    u = hn::Mul(hn::ConvertTo(df, hn::BitCast(DI(), StochasticBits(DU(), p.seed, index0))), hn::Set(df, 0x1p-24f));
  if (p.scaled) {
    // y = a / ulp is exact (a power-of-two scaling that neither overflows nor underflows), < 2^23.
    const VF y = hn::Mul(a, inv_ulp);
    const VF fl = hn::Floor(y);
    const VF frac = hn::Sub(y, fl);
    MF up = FractionRoundsUp(df, p.mode_pos, frac, u);
    if (p.mode_neg != p.mode_pos) up = hn::Or(hn::And(neg, FractionRoundsUp(df, p.mode_neg, frac, u)), hn::AndNot(neg, up));
    const VF r = hn::Mul(hn::IfThenElse(up, hn::Add(fl, hn::Set(df, 1.0f)), fl), ulp);
    return hn::IfThenElse(big, a, r);
  }
  // General case, all in the value domain: t = a rounded down to ulp, rem = a - t (both exact).
  const VF nearest = hn::Sub(hn::Add(a, magic), magic);
  const VF t = hn::IfThenElse(big, a, hn::IfThenElse(hn::Gt(nearest, a), hn::Sub(nearest, ulp), nearest));
  const VF rem = hn::Sub(a, t);
  if (p.stochastic) {
    // u * ulp is exact unless ulp is tiny; then compare rem / ulp (exact, scaling up) with u instead.
    const MF tiny = hn::Lt(ulp, hn::Set(df, 0x1p-125f));
    const MF up = hn::Or(hn::And(tiny, hn::Gt(hn::Div(rem, ulp), u)), hn::AndNot(tiny, hn::Gt(rem, hn::Mul(u, ulp))));
    return hn::IfThenElse(hn::AndNot(big, up), hn::Add(t, ulp), t);
  }
  const VF magic2 = hn::Add(magic, magic);
  const MF lower_odd = hn::Ne(hn::Sub(hn::Add(t, magic2), magic2), t);
  const VF threshold = hn::Zero(df);
  MF up = RoundsUp(df, p.mode_pos, rem, ulp, lower_odd, threshold);
  if (p.mode_neg != p.mode_pos)
    up = hn::Or(hn::And(neg, RoundsUp(df, p.mode_neg, rem, ulp, lower_odd, threshold)), hn::AndNot(neg, up));
  return hn::IfThenElse(hn::AndNot(big, up), hn::Add(t, ulp), t);
}

// A float format's constants for the steps after rounding the magnitude.
struct FloatFinish {
  VF maxv, overflow_pos, overflow_neg, inf_value, nan_value;
  bool saturate, is_signed, negative_zero;
  template <class Plan>
  explicit FloatFinish(const Plan& p)
      : maxv(hn::Set(DF(), p.max_value)),
        // Rounding toward zero in magnitude stops at max; other modes overflow to inf / NaN.
        overflow_pos(p.mode_pos == MagnitudeRounding::Down ? maxv : hn::Set(DF(), p.overflow_value)),
        overflow_neg(p.mode_neg == MagnitudeRounding::Down ? maxv : hn::Set(DF(), p.overflow_value)),
        inf_value(hn::Set(DF(), p.inf_value)),
        nan_value(hn::Set(DF(), p.nan_value)),
        saturate(p.saturate),
        is_signed(p.is_signed),
        negative_zero(p.negative_zero) {}
};

// x's value from its magnitude r rounded to the format's grid (neg: x's sign bit): overflow,
// infinities, the sign and NaN.
HWY_INLINE VF FinishFloat(DF df, const FloatFinish& f, VF x, MF neg, VF r) {
  const MF over = hn::Gt(r, f.maxv);
  r = hn::IfThenElse(over, f.saturate ? f.maxv : hn::IfThenElse(neg, f.overflow_neg, f.overflow_pos), r);
  r = hn::IfThenElse(hn::IsInf(x), f.inf_value, r);
  VF out;
  if (f.is_signed) {
    const VF sign = hn::And(x, hn::Set(df, -0.0f));
    out = hn::Or(r, sign);
    if (!f.negative_zero) out = hn::IfThenElse(hn::Eq(r, hn::Zero(df)), hn::Zero(df), out);
  } else {
    out = hn::IfThenElseZero(hn::Not(neg), r);
  }
  return hn::IfThenElse(hn::IsNaN(x), f.nan_value, out);
}

template <class Plan>
HWY_INLINE VF QuantizeFloat(DF df, const Plan& p, VF x, uint64_t index0) {
  const DI di;
  const VF a = hn::Abs(x);
  const MF neg = hn::MaskFromVec(hn::BitCast(df, hn::ShiftRight<31>(hn::BitCast(di, x))));
  VF r;
  if (p.stochastic && p.stochastic_on_bits) {
    const DU du;
    const VU inverted = StochasticMix(du, StochasticStart(du, p.seed, index0), hn::Set(du, ~0u));
    r = RoundStochasticOnBits(df, StochasticOnBits(p), a, inverted);
  } else if (p.wide) {
    // Same exponent layout as float32 (E8, bias 127): round the bit pattern to M mantissa bits.
    const DU du;
    const int k = 23 - p.mantissa_bits;
    VU b = hn::BitCast(du, a);
    // Ties go to the even significand; with no mantissa bits a normal's significand is 1 (odd),
    // so its ties go up, while a float32 subnormal lies above zero (even) and stays.
    const VU lsb = p.mantissa_bits == 0 ? hn::IfThenElseZero(hn::RebindMask(du, hn::Gt(hn::BitCast(DI(), b), hn::Set(DI(), 0x7FFFFF))), hn::Set(du, 1u))
                                        : hn::And(hn::ShiftRightSame(b, k), hn::Set(du, 1u));
    b = hn::Add(b, hn::Add(hn::Set(du, (1u << (k - 1)) - 1), lsb));
    r = hn::BitCast(df, hn::And(b, hn::Set(du, ~((1u << k) - 1))));
  } else {
  const VI e = hn::Sub(hn::BitCast(di, hn::ShiftRight<23>(hn::BitCast(DU(), a))), hn::Set(di, 127));
  const VI emin = hn::Set(di, p.emin);
  VI eff = hn::Min(hn::Max(e, emin), hn::Set(di, p.emax_clamp));
  VI ulp_exp = hn::Sub(eff, hn::Set(di, p.mantissa_bits));
  if (p.flush) ulp_exp = hn::IfThenElse(hn::RebindMask(di, hn::Lt(a, hn::Set(df, p.min_normal))), emin, ulp_exp);
  const VF magic = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(ulp_exp, hn::Set(di, 150))));
  const VF ulp = hn::Mul(magic, hn::Set(df, 0x1p-23f));
  const VF inv_ulp = hn::BitCast(df, hn::ShiftLeft<23>(hn::Sub(hn::Set(di, 127), ulp_exp)));
  r = RoundMagnitude(df, p, a, ulp, inv_ulp, magic, neg, index0);
  }
  return FinishFloat(df, FloatFinish(p), x, neg, r);
}

// Rounds x / step on the signed line with the hardware's rounding instructions; for the modes that
// depend on the sign (and are not symmetric in magnitude). Returns multiples of step.
template <class Plan>
HWY_INLINE VF RoundSigned(DF df, const Plan& p, VF x) {
  const VF y = hn::Mul(x, hn::Set(df, p.inv_step));  // exact: step is a power of two <= 1
  VF q;
  switch (p.rounding) {
    case Rounding::NearestEven: q = hn::Round(y); break;
    case Rounding::Down: q = hn::Floor(y); break;
    case Rounding::Up: q = hn::Ceil(y); break;
    case Rounding::TowardZero: q = hn::Trunc(y); break;
    default: {  // NearestUp / NearestDown: compare y with floor + 1/2 (exact while y is not an integer)
      const VF fl = hn::Floor(y);
      const VF half = hn::Add(fl, hn::Set(df, 0.5f));
      const MF up = hn::AndNot(hn::Eq(y, fl), p.rounding == Rounding::NearestUp ? hn::Ge(y, half) : hn::Gt(y, half));
      q = hn::IfThenElse(up, hn::Add(fl, hn::Set(df, 1.0f)), fl);
    }
  }
  return hn::Mul(q, hn::Set(df, p.step));
}

template <class Plan>
HWY_INLINE VF QuantizeUniform(DF df, const Plan& p, VF x, uint64_t index0) {
  const DI di;
  const MF neg = hn::MaskFromVec(hn::BitCast(df, hn::ShiftRight<31>(hn::BitCast(di, x))));
  VF v;
  if (p.signed_rounding) {
    v = RoundSigned(df, p, x);
  } else {
    const VF a = hn::Abs(x);
    const VF r = RoundMagnitude(df, p, a, hn::Set(df, p.step), hn::Set(df, p.inv_step), hn::Set(df, p.step * 0x1p23f), neg, index0);
    v = hn::IfThenElse(neg, hn::Neg(r), r);
  }
  const VF maxv = hn::Set(df, p.max_value), lowv = hn::Set(df, p.lowest_value);
  switch (p.overflow) {
    case FixedOverflow::Sat: v = hn::Min(hn::Max(v, lowv), maxv); break;
    case FixedOverflow::SatSym: v = hn::Min(hn::Max(v, hn::Neg(maxv)), maxv); break;
    case FixedOverflow::SatZero: v = hn::IfThenZeroElse(hn::Or(hn::Gt(v, maxv), hn::Lt(v, lowv)), v); break;
    case FixedOverflow::Wrap: {
      const VF rv = hn::Set(df, p.wrap_range);  // 2^W steps, a power of two
      const VF k = hn::Floor(hn::Mul(v, hn::Set(df, p.inv_wrap_range)));
      VF w = hn::Sub(v, hn::Mul(k, rv));  // in [0, range)
      w = hn::IfThenElse(hn::Gt(w, maxv), hn::Sub(w, rv), w);
      // From 2^24 ranges up, v is a multiple of the range (and v / range may overflow).
      w = hn::IfThenZeroElse(hn::Ge(hn::Abs(v), hn::Set(df, p.wrap_range * 0x1p24f)), w);
      v = hn::IfThenElse(hn::Or(hn::Gt(v, maxv), hn::Lt(v, lowv)), w, v);
      break;
    }
    case FixedOverflow::WrapSm: break;  // never planned for SIMD
  }
  v = hn::Add(v, hn::Zero(df));  // -0 -> +0
  v = hn::IfThenElse(hn::IsInf(x), hn::IfThenElse(neg, hn::Set(df, p.neg_inf_value), hn::Set(df, p.pos_inf_value)), v);
  return hn::IfThenElseZero(hn::Not(hn::IsNaN(x)), v);
}

HWY_INLINE VF QuantizeBinary(DF df, VF x) {
  return hn::IfThenElse(hn::Lt(x, hn::Zero(df)), hn::Set(df, -1.0f), hn::Set(df, 1.0f));
}

template <class Plan>
HWY_INLINE VF QuantizeVec(DF df, const Plan& p, VF x, uint64_t index) {
  switch (p.kind) {
    case ElementPlan::kFloat: return QuantizeFloat(df, p, x, index);
    case ElementPlan::kUniform: return QuantizeUniform(df, p, x, index);
    case ElementPlan::kBinary: return QuantizeBinary(df, x);
    case ElementPlan::kFallback: break;
  }
  return x;
}

// An ElementPlan whose kind and rounding flags are compile-time constants (one magnitude rounding
// for both signs): the static members hide the base's fields of the same names, so the functions
// above, templated on the plan, compile without the branches on them.
template <ElementPlan::Kind K, bool Scaled, MagnitudeRounding Mode>
struct FixedRoundingPlan : ElementPlan {
  static constexpr Kind kind = K;
  static constexpr bool stochastic = Mode == MagnitudeRounding::Stochastic, scaled = Scaled, wide = false,
                        signed_rounding = false;
  static constexpr MagnitudeRounding mode_pos = Mode, mode_neg = Mode;
  explicit FixedRoundingPlan(const ElementPlan& p) : ElementPlan(p) {}
};

// Stochastic rounding of a float format on the bit pattern (plan.stochastic_on_bits), with the
// plan's constants held in registers for the whole span.
size_t QuantizeSpanStochasticOnBits(const ElementPlan& plan, const float* in, float* out, size_t n, uint64_t index0,
                                    float scale) {
  const DF df;
  const DI di;
  const DU du;
  const size_t N = hn::Lanes(df);
  const StochasticOnBits k(plan);
  const FloatFinish finish(plan);
  const VF s = hn::Set(df, scale);
  const bool scaled = scale != 1.0f;
  // The hash's first value, lane by lane: the index's low 32 bits (which the span never wraps)
  // xor the key, as StochasticStart, with the index advanced in a register.
  const VU key = hn::Set(du, StochasticKey(plan.seed, index0));
  const VU all_ones = hn::Set(du, ~0u);
  VU idx = hn::Add(hn::Iota(du, 0u), hn::Set(du, static_cast<uint32_t>(index0)));
  const VU lanes = hn::Set(du, static_cast<uint32_t>(N));
  size_t i = 0;
  for (; i + N <= n; i += N, idx = hn::Add(idx, lanes)) {
    VF x = hn::LoadU(df, in + i);
    if (scaled) x = hn::Div(x, s);
    const VF a = hn::Abs(x);
    const MF neg = hn::MaskFromVec(hn::BitCast(df, hn::ShiftRight<31>(hn::BitCast(di, x))));
    const VU inverted = StochasticMix(du, hn::Xor(idx, key), all_ones);
    VF q = FinishFloat(df, finish, x, neg, RoundStochasticOnBits(df, k, a, inverted));
    if (scaled) q = hn::Mul(q, s);
    hn::StoreU(q, df, out + i);
  }
  return i;
}

// Processes the whole vectors of [0, n); returns how many elements were done.
template <class Plan>
size_t QuantizeSpanWith(const Plan& p, const float* in, float* out, size_t n, uint64_t index0, float scale) {
  if (p.kind == ElementPlan::kFloat && p.stochastic && p.stochastic_on_bits)
    return QuantizeSpanStochasticOnBits(p, in, out, n, index0, scale);
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  if (scale == 1.0f) {
    for (; i + N <= n; i += N) hn::StoreU(QuantizeVec(df, p, hn::LoadU(df, in + i), index0 + i), df, out + i);
  } else {
    const VF s = hn::Set(df, scale);
    for (; i + N <= n; i += N) {
      const VF v = hn::Div(hn::LoadU(df, in + i), s);
      hn::StoreU(hn::Mul(QuantizeVec(df, p, v, index0 + i), s), df, out + i);
    }
  }
  return i;
}

template <ElementPlan::Kind K, MagnitudeRounding Mode>
size_t QuantizeSpanFixed(const ElementPlan& plan, const float* in, float* out, size_t n, uint64_t index0, float scale) {
  return plan.scaled ? QuantizeSpanWith(FixedRoundingPlan<K, true, Mode>(plan), in, out, n, index0, scale)
                     : QuantizeSpanWith(FixedRoundingPlan<K, false, Mode>(plan), in, out, n, index0, scale);
}

template <ElementPlan::Kind K>
size_t QuantizeSpanOfKind(const ElementPlan& plan, const float* in, float* out, size_t n, uint64_t index0, float scale) {
  using MR = MagnitudeRounding;
  switch (plan.mode_pos) {
    case MR::NearestEven: return QuantizeSpanFixed<K, MR::NearestEven>(plan, in, out, n, index0, scale);
    case MR::NearestUp: return QuantizeSpanFixed<K, MR::NearestUp>(plan, in, out, n, index0, scale);
    case MR::NearestDown: return QuantizeSpanFixed<K, MR::NearestDown>(plan, in, out, n, index0, scale);
    case MR::Down: return QuantizeSpanFixed<K, MR::Down>(plan, in, out, n, index0, scale);
    case MR::Stochastic: return QuantizeSpanFixed<K, MR::Stochastic>(plan, in, out, n, index0, scale);
    default: break;
  }
  const ElementPlan p = plan;
  return QuantizeSpanWith(p, in, out, n, index0, scale);
}

size_t QuantizeSpanSimd(const ElementPlan& plan, const float* in, float* out, size_t n, uint64_t index0, float scale) {
  if (plan.mode_pos == plan.mode_neg && !plan.signed_rounding && !plan.wide) {
    if (plan.kind == ElementPlan::kUniform) return QuantizeSpanOfKind<ElementPlan::kUniform>(plan, in, out, n, index0, scale);
    if (plan.kind == ElementPlan::kFloat) return QuantizeSpanOfKind<ElementPlan::kFloat>(plan, in, out, n, index0, scale);
  }
  // A local copy: the stores to out could alias the caller's plan, which would make the compiler
  // reload its constants and re-test its flags for every vector.
  const ElementPlan p = plan;
  return QuantizeSpanWith(p, in, out, n, index0, scale);
}

// Largest |x| of one block of `block` floats (a multiple of the lane count) when *finite (no NaN /
// inf in the block); 0 otherwise. Non-negative floats order as their bit patterns, and NaN / inf
// lie above every finite value: the largest sign-cleared pattern tells both.
HWY_INLINE float BlockAmax(DF df, const float* src, size_t block, bool* finite) {
  const size_t N = hn::Lanes(df);
  const DU du;
  const VU magnitude = hn::Set(du, 0x7FFFFFFFu);
  VU m = hn::And(hn::BitCast(du, hn::LoadU(df, src)), magnitude);
  for (size_t k = N; k < block; k += N) m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(df, src + k)), magnitude));
  const uint32_t bits = hn::GetLane(hn::MaxOfLanes(du, m));
  *finite = bits < 0x7F800000u;
  float amax = 0;
  if (*finite) std::memcpy(&amax, &bits, 4);
  return amax;
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// Lane k: the largest of v[k]'s sixteen unsigned lanes. Four rounds of interleave and max
// (45 operations) instead of sixteen horizontal maxima.
HWY_INLINE __m512i MaxOfLanes16x16(const __m512i (&v)[16]) {
  __m512i w[8];
  for (int i = 0; i < 8; ++i)  // per 128-bit lane: v[2i]'s and v[2i+1]'s lanes, interleaved pairwise
    w[i] = _mm512_max_epu32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  __m512i x[4];
  for (int i = 0; i < 4; ++i)  // per 128-bit lane: v[4i] .. v[4i+3], each over that lane
    x[i] = _mm512_max_epu32(_mm512_unpacklo_epi64(w[2 * i], w[2 * i + 1]), _mm512_unpackhi_epi64(w[2 * i], w[2 * i + 1]));
  const __m512i y0 = _mm512_max_epu32(_mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                      _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512i y1 = _mm512_max_epu32(_mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                      _mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_max_epu32(_mm512_shuffle_i32x4(y0, y1, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(y0, y1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Lane k: the sign-cleared bit pattern of the largest magnitude in block k of 16 consecutive blocks
// of `block` floats (a multiple of 16). NaN and inf lie above every finite magnitude (>= 0x7F800000).
HWY_INLINE __m512i BlockAmaxBits16(const float* src, size_t block) {
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i v[16];
  for (size_t k = 0; k < 16; ++k) {
    const float* b = src + k * block;
    __m512i m = _mm512_and_si512(_mm512_loadu_si512(b), magnitude);
    for (size_t j = 16; j < block; j += 16) m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_loadu_si512(b + j), magnitude));
    v[k] = m;
  }
  return MaxOfLanes16x16(v);
}

// BlockAmax of 16 consecutive blocks of 16 floats; NaN / inf blocks get amax 0 and finite false.
HWY_INLINE void BlockAmax16x16(const float* src, float* amax, bool* finite) {
  const __m512i bits = BlockAmaxBits16(src, 16);
  const __mmask16 ok = _mm512_cmplt_epu32_mask(bits, _mm512_set1_epi32(0x7F800000));
  _mm512_storeu_si512(amax, _mm512_maskz_mov_epi32(ok, bits));
  for (int k = 0; k < 16; ++k) finite[k] = (ok >> k) & 1;
}
#endif

void BlockAbsMaxSimd(const float* in, size_t blocks, size_t block, float* amax, uint8_t* finite) {
  const DF df;
  const size_t N = hn::Lanes(df);
  if (block % N != 0) {
    for (size_t b = 0; b < blocks; ++b) {
      float m = 0;
      bool ok = true;
      for (size_t k = 0; k < block; ++k) {
        const float v = in[b * block + k];
        if (!std::isfinite(v)) ok = false;
        else m = std::max(m, std::fabs(v));
      }
      amax[b] = m;
      finite[b] = ok;
    }
    return;
  }
  for (size_t b = 0; b < blocks; ++b) {
    bool ok = true;
    amax[b] = BlockAmax(df, in + b * block, block, &ok);
    finite[b] = ok;
  }
}

size_t QuantizeBlocksSimd(const ElementPlan& p, const float* in, float* out, size_t blocks, size_t block,
                          const float* scale, bool pow2, uint64_t index0) {
  const DF df;
  const size_t N = hn::Lanes(df);
  if (block % N != 0) return 0;
  for (size_t b = 0; b < blocks; ++b) {
    const float s = scale[b];
    const float* src = in + b * block;
    float* dst = out + b * block;
    if (std::isnan(s) || s == 0) {
      const VF fill = hn::Set(df, s);  // NaN block, or zeros
      for (size_t k = 0; k < block; k += N) hn::StoreU(fill, df, dst + k);
      continue;
    }
    const float reciprocal = 1.0f / s;  // exact for a power of two, unless s < 2^-127 (inf)
    const bool multiply = pow2 && std::isfinite(reciprocal);
    const VF sv = hn::Set(df, s), inv = hn::Set(df, reciprocal);
    for (size_t k = 0; k < block; k += N) {
      const VF x = hn::LoadU(df, src + k);
      const VF v = multiply ? hn::Mul(x, inv) : hn::Div(x, sv);
      hn::StoreU(hn::Mul(QuantizeVec(df, p, v, index0 + b * block + k), sv), df, dst + k);
    }
  }
  return blocks;
}

// Software prefetch distance in floats (16 KiB): streaming kernels that do a fair amount of work per
// element run well below memory bandwidth without it.
constexpr size_t kPrefetchAhead = 4096;

// Prefetches the cache lines `ahead` floats past the n floats at p (of `left` remaining).
HWY_INLINE void PrefetchAhead(const float* p, size_t n, size_t left, size_t ahead = kPrefetchAhead) {
  for (size_t j = 0; j < n && j + ahead < left; j += 16) hwy::Prefetch(p + j + ahead);
}

// Copies n floats to dst with non-temporal stores where dst is vector-aligned (no read of the
// destination's cache lines first: a third less memory traffic on tensors far beyond the cache).
HWY_INLINE void StreamOut(DF df, const float* src, float* dst, size_t n) {
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % (N * sizeof(float)) != 0; ++i) dst[i] = src[i];
  for (; i + N <= n; i += N) hn::Stream(hn::LoadU(df, src + i), df, dst + i);
  for (; i < n; ++i) dst[i] = src[i];
}

// 2^e as a float32 for e in [-149, 127], from its bits.
HWY_INLINE float Pow2(int e) {
  const uint32_t bits = e >= -126 ? static_cast<uint32_t>(e + 127) << 23 : 1u << (e + 149);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Effective scales float(round_nearest(amax[k] / denom) * tensor) of n blocks (n a multiple of
// the double lane count), several blocks per vector. See NearestMinifloatScale for exactness.
HWY_INLINE void NearestScales(const NearestMinifloatScale& r, const float* amax, float* eff, size_t n) {
  using DD = hn::ScalableTag<double>;
  const DD dd;
  const hn::RebindToSigned<DD> di;
  const hn::Rebind<float, DD> dh;
  const size_t M = hn::Lanes(dd);
  const auto denom = hn::Set(dd, r.denom), tensor = hn::Set(dd, r.tensor), maxv = hn::Set(dd, r.max);
  const auto min_normal = hn::Set(dd, r.min_normal);
  const auto emin = hn::Set(di, r.emin), magic_bias = hn::Set(di, 52 - r.mantissa_bits + 1023);
  for (size_t i = 0; i < n; i += M) {
    const auto q = hn::Div(hn::PromoteTo(dd, hn::LoadU(dh, amax + i)), denom);
    // Exponent of the grid binade (the subnormal range shares the lowest normal one); magic =
    // 2^(ulp exponent + 52) makes the addition round q to nearest even at exactly that ulp.
    auto e = hn::Sub(hn::ShiftRight<52>(hn::BitCast(di, q)), hn::Set(di, 1023));
    e = hn::IfThenElse(hn::RebindMask(di, hn::Lt(q, min_normal)), emin, e);
    const auto magic = hn::BitCast(dd, hn::ShiftLeft<52>(hn::Add(e, magic_bias)));
    const auto g = hn::Min(hn::Sub(hn::Add(q, magic), magic), maxv);
    hn::StoreU(hn::DemoteTo(dh, hn::Mul(g, tensor)), dh, eff + i);
  }
}

// Whether QuantizeFiniteNearestEven gives QuantizeVec's results for finite inputs.
bool PlainNearestEven(const ElementPlan& p) {
  return p.kind == ElementPlan::kFloat && !p.wide && !p.flush && p.saturate && p.is_signed && p.negative_zero &&
         p.mode_pos == MagnitudeRounding::NearestEven && p.mode_neg == MagnitudeRounding::NearestEven;
}

// QuantizeFloat for a saturating signed minifloat with subnormals and -0 in nearest-even, finite x
// (inf saturates too): |x| + magic - magic rounds at the binade's step; beyond the top binade the
// sum is >= magic > max and the clamp saturates.
HWY_INLINE VF QuantizeFiniteNearestEven(DF df, VI field_lo, VI field_hi, VI magic_bias, VF maxv, VF x) {
  const DI di;
  const VF a = hn::Abs(x);
  const VI field = hn::Min(hn::Max(hn::BitCast(di, hn::ShiftRight<23>(hn::BitCast(DU(), a))), field_lo), field_hi);
  const VF magic = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(field, magic_bias)));
  const VF r = hn::Min(hn::Sub(hn::Add(a, magic), magic), maxv);
  return hn::Or(r, hn::And(x, hn::Set(df, -0.0f)));
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// Pow2FloorScale::exponent of 16 blocks from their BlockAmaxBits16: scale[k] = 2^e, inv[k] = 2^-e;
// returns the NaN blocks. Needs scale exponents in [-127, 127] (both powers are floats) and
// elem_emax >= -127 - scale_emin: then a block whose amax is subnormal or zero gets e = scale_emin
// from its exponent field 0 alone, as from the exact floor(log2 amax).
HWY_INLINE __mmask16 MxScales16(const Pow2FloorScale& r, __m512i bits, float* scale, float* inv) {
  const __mmask16 nonfinite = _mm512_cmpge_epu32_mask(bits, _mm512_set1_epi32(0x7F800000));
  __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127 + r.elem_emax));
  const __m512i emax = _mm512_set1_epi32(r.scale_emax);
  const __mmask16 above = r.nan_above ? _mm512_cmpgt_epi32_mask(e, emax) : __mmask16{0};
  e = _mm512_max_epi32(_mm512_min_epi32(e, emax), _mm512_set1_epi32(r.scale_emin));
  // 2^e for e in [-149, 127]: the biased exponent, or for e < -126 the subnormal's single bit.
  const auto pow2 = [](__m512i x) {
    const __mmask16 normal_pow = _mm512_cmpge_epi32_mask(x, _mm512_set1_epi32(-126));
    return _mm512_mask_blend_epi32(normal_pow, _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_add_epi32(x, _mm512_set1_epi32(149))),
                                   _mm512_slli_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(127)), 23));
  };
  _mm512_store_si512(scale, pow2(e));
  _mm512_store_si512(inv, pow2(_mm512_sub_epi32(_mm512_setzero_si512(), e)));
  return nonfinite | above;
}
#endif

// Element quantizers for finite x whose block scale is finite: f(df, x, index) gives QuantizeVec's
// result. Their constants are members, kept in registers where the loops take them by value.
struct PlainMinifloatElements {  // PlainNearestEven plans
  VI field_lo, field_hi, magic_bias;  // binade exponent field clamped to [emin, emax_clamp] (+127)
  VF maxv;
  explicit PlainMinifloatElements(const ElementPlan& p)
      : field_lo(hn::Set(DI(), p.emin + 127)), field_hi(hn::Set(DI(), p.emax_clamp + 127)),
        magic_bias(hn::Set(DI(), 23 - p.mantissa_bits)), maxv(hn::Set(DF(), p.max_value)) {}
  VF operator()(DF df, VF x, uint64_t) const { return QuantizeFiniteNearestEven(df, field_lo, field_hi, magic_bias, maxv, x); }
};

// Integers and fixed point rounded to nearest-even on the scaled grid, saturating.
bool PlainUniform(const ElementPlan& p) {
  return p.kind == ElementPlan::kUniform && p.signed_rounding && p.rounding == Rounding::NearestEven &&
         (p.overflow == FixedOverflow::Sat || p.overflow == FixedOverflow::SatSym);
}

struct PlainUniformElements {  // PlainUniform plans
  VF inv_step, step, lo, hi;
  explicit PlainUniformElements(const ElementPlan& p)
      : inv_step(hn::Set(DF(), p.inv_step)), step(hn::Set(DF(), p.step)),
        lo(hn::Set(DF(), p.overflow == FixedOverflow::SatSym ? -p.max_value : p.lowest_value)), hi(hn::Set(DF(), p.max_value)) {}
  VF operator()(DF df, VF x, uint64_t) const {  // + 0: -0 -> +0
    return hn::Add(hn::Min(hn::Max(hn::Mul(hn::Round(hn::Mul(x, inv_step)), step), lo), hi), hn::Zero(df));
  }
};

struct AnyElements {
  const ElementPlan& p;
  VF operator()(DF df, VF x, uint64_t index) const { return QuantizeVec(df, p, x, index); }
};

// One block: f(x * inv) * s.
template <class Elements>
HWY_INLINE void ScaledBlock(DF df, const Elements f, const float* src, float* dst, size_t block, VF sv, VF iv, uint64_t index) {
  for (size_t k = 0; k < block; k += hn::Lanes(df))
    hn::StoreU(hn::Mul(f(df, hn::Mul(hn::LoadU(df, src + k), iv), index + k), sv), df, dst + k);
}

// The MX floor rule fused with the elements: per block, amax, the power-of-two scale
// 2^clamp(floor(log2 amax) - elem_emax), then x * 2^-e rounded and scaled back, in one pass.
template <class Elements>
HWY_INLINE void MxBlocks(DF df, const Elements f, const Pow2FloorScale& rule, const float* in, float* out, size_t blocks,
                         size_t block, uint64_t index0) {
  const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
  const auto nan_block = [df, nan, block](float* dst) HWY_ATTR {
    for (size_t k = 0; k < block; k += hn::Lanes(df)) hn::StoreU(nan, df, dst + k);
  };
  size_t b = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if (rule.elem_emax >= -127 - rule.scale_emin) {
    HWY_ALIGN float scale[16], inv[16];
    for (; b + 16 <= blocks; b += 16) {
      const float* src = in + b * block;
      PrefetchAhead(src, 16 * block, (blocks - b) * block);
      const __mmask16 nan_blocks = MxScales16(rule, BlockAmaxBits16(src, block), scale, inv);
      for (size_t k = 0; k < 16; ++k) {
        float* dst = out + (b + k) * block;
        if ((nan_blocks >> k) & 1) nan_block(dst);
        else ScaledBlock(df, f, src + k * block, dst, block, hn::Set(df, scale[k]), hn::Set(df, inv[k]), index0 + (b + k) * block);
      }
    }
  }
#endif
  for (; b < blocks; ++b) {
    const float* src = in + b * block;
    float* dst = out + b * block;
    bool finite = true;
    const int e = rule.exponent(BlockAmax(df, src, block, &finite));
    if (!finite || e == Pow2FloorScale::kNaN) nan_block(dst);
    else ScaledBlock(df, f, src, dst, block, hn::Set(df, Pow2(e)), hn::Set(df, Pow2(-e)), index0 + b * block);
  }
}

size_t QuantizeMxBlocksSimd(const ElementPlan& p, const Pow2FloorScale& rule, const float* in, float* out,
                            size_t blocks, size_t block, uint64_t index0) {
  const DF df;
  // Scales below 2^-127 have no float reciprocal: QuantizeBlocksSimd divides by them.
  if (block % hn::Lanes(df) != 0 || rule.scale_emin < -127 || rule.scale_emax > 127) return 0;
  if (PlainNearestEven(p)) MxBlocks(df, PlainMinifloatElements(p), rule, in, out, blocks, block, index0);
  else if (PlainUniform(p)) MxBlocks(df, PlainUniformElements(p), rule, in, out, blocks, block, index0);
  else MxBlocks(df, AnyElements{p}, rule, in, out, blocks, block, index0);
  return blocks;
}

size_t QuantizeNearestScaledBlocksSimd(const ElementPlan& p, const NearestMinifloatScale& rule, const float* in,
                                       float* out, size_t blocks, size_t block, uint64_t index0, bool stream) {
  const DF df;
  const size_t N = hn::Lanes(df);
  if (block % N != 0) return 0;
  constexpr size_t kBatch = 64;  // a multiple of every double lane count
  HWY_ALIGN float amax[kBatch], eff[kBatch];
  bool finite[kBatch];
  const bool plain = PlainNearestEven(p);
  const PlainMinifloatElements plain_elements(p);
  // Streaming: each batch is quantized into a buffer, then written out non-temporally.
  std::vector<float> staging(stream ? kBatch * block : 0);
  for (size_t b0 = 0; b0 < blocks; b0 += kBatch) {
    const size_t nb = std::min(kBatch, blocks - b0);
    size_t k = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    if (block == 16) {
      for (; k + 16 <= nb; k += 16) {
        const float* src = in + (b0 + k) * block;
        PrefetchAhead(src, 16 * block, (blocks - b0 - k) * block);
        BlockAmax16x16(src, amax + k, finite + k);
      }
    }
#endif
    for (; k < nb; ++k) {
      const float* src = in + (b0 + k) * block;
      PrefetchAhead(src, block, (blocks - b0 - k) * block);
      bool ok = true;
      amax[k] = BlockAmax(df, src, block, &ok);
      finite[k] = ok;
    }
    for (k = nb; k < kBatch; ++k) amax[k] = 0;
    NearestScales(rule, amax, eff, kBatch);
    for (size_t k = 0; k < nb; ++k) {
      const size_t begin = (b0 + k) * block;
      const float* src = in + begin;
      float* dst = stream ? staging.data() + k * block : out + begin;
      const float s = finite[k] ? eff[k] : std::numeric_limits<float>::quiet_NaN();
      if (std::isnan(s) || s == 0) {
        const VF fill = hn::Set(df, s);  // NaN block, or zeros
        for (size_t j = 0; j < block; j += N) hn::StoreU(fill, df, dst + j);
        continue;
      }
      const VF sv = hn::Set(df, s);
      if (plain) {
        for (size_t j = 0; j < block; j += N) {
          const VF v = hn::Div(hn::LoadU(df, src + j), sv);
          hn::StoreU(hn::Mul(plain_elements(df, v, 0), sv), df, dst + j);
        }
        continue;
      }
      for (size_t j = 0; j < block; j += N)
        hn::StoreU(hn::Mul(QuantizeVec(df, p, hn::Div(hn::LoadU(df, src + j), sv), index0 + begin + j), sv), df, dst + j);
    }
    if (stream) StreamOut(df, staging.data(), out + b0 * block, nb * block);
  }
  if (stream) hwy::FlushStream();
  return blocks;
}

// 2^e as a double, e in the normal range.
HWY_INLINE double Pow2d(int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

// BitMoD's group scale: float(clamp(float16 nearest-even of ratio (>= 0), min_scale, max_scale)),
// the float16 rounding done exactly on the double (the ratio is a normal double or zero).
HWY_INLINE float BitmodScale(const BitmodPlan& p, double ratio) {
  double r = 0;
  if (ratio >= 65504.0) {
    r = 65504.0;  // float16 saturates; the clamp below cuts it to max_scale anyway
  } else if (ratio > 0) {
    uint64_t bits;
    std::memcpy(&bits, &ratio, 8);
    const int e = std::max(static_cast<int>(bits >> 52) - 1023, -14);  // float16's binade (subnormals: -14)
    // ratio * 2^(10-e) < 2^11 is exact; adding 2^52 rounds it to an integer, nearest-even.
    r = ((ratio * Pow2d(10 - e) + 0x1p52) - 0x1p52) * Pow2d(e - 10);
  }
  return static_cast<float>(std::clamp(r, static_cast<double>(p.min_scale), static_cast<double>(p.max_scale)));
}

// Nearest base-grid value (integer-scaled) to v, ties toward -inf as the reference's count of
// midpoints below v: the step is that of |v|'s binade, q = ceil(v / step - 1/2) * step.
struct BitmodConstants {
  VI field_bias, top_step_exp;
  VF maxv, neg_maxv, half;
  VF extra[4], cell_lo[4], cell_hi[4];
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  // The half-step tables (entries 0-15, 16-31): the base grid's, and per scale the one with the
  // scale's extra magnitude in its cells.
  __m512 by_half_step_lo, by_half_step_hi, extra_by_half_step_lo[2], extra_by_half_step_hi[2];
  __m512i cell_first[2], cell_end[2];
  __m512 by_sign_index_lo[4], by_sign_index_hi[4];  // BitmodPlan::by_sign_index
#endif
  explicit BitmodConstants(const BitmodPlan& p) {
    const DF df;
    const DI di;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    by_half_step_lo = _mm512_loadu_ps(p.base_by_half_step);
    by_half_step_hi = _mm512_loadu_ps(p.base_by_half_step + 16);
    for (int s = 0; s < 2; ++s) {
      extra_by_half_step_lo[s] = _mm512_loadu_ps(p.extra_by_half_step[s]);
      extra_by_half_step_hi[s] = _mm512_loadu_ps(p.extra_by_half_step[s] + 16);
      cell_first[s] = _mm512_set1_epi32(p.cell_half_steps[s][0]);
      cell_end[s] = _mm512_set1_epi32(p.cell_half_steps[s][1] + 1);
    }
    for (int c = 0; c < 4; ++c) {
      by_sign_index_lo[c] = _mm512_loadu_ps(p.by_sign_index[c]);
      by_sign_index_hi[c] = _mm512_loadu_ps(p.by_sign_index[c] + 16);
    }
#endif
    field_bias = hn::Set(di, 127 + p.base_mantissa_bits);
    top_step_exp = hn::Set(di, p.top_ulp_exp);
    maxv = hn::Set(df, p.base_max);
    neg_maxv = hn::Set(df, -p.base_max);
    half = hn::Set(df, 0.5f);
    for (int c = 0; c < 4; ++c) {
      extra[c] = hn::Set(df, p.extra[c]);
      cell_lo[c] = hn::Set(df, p.cell_lo[c]);
      cell_hi[c] = hn::Set(df, p.cell_hi[c]);
    }
  }
};

// The integer nearest to w = v * inv_step (a power of two, so the product is exact), ties toward
// -inf: ceil(w - 1/2). The subtraction is not always exact (w just above -1/2 has bits below the
// ulp of w - 1/2: w = -0x1.fffffep-2 would round to -1), so it rounds toward +inf, which never
// changes the ceiling; without embedded rounding, round to nearest-even and move ties down.
HWY_INLINE VF NearestTiesDown(DF df, VF v, VF inv_step, VF half) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  (void)df;
  return hn::Ceil(VF{_mm512_fmsub_round_ps(v.raw, inv_step.raw, half.raw, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)});
#else
  const VF w = hn::Mul(v, inv_step);
  const VF r = hn::Round(w);  // |r - w| <= 1/2, and r - w is exact
  return hn::IfThenElse(hn::Eq(hn::Sub(r, w), half), hn::Sub(r, hn::Set(df, 1.0f)), r);
#endif
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// The largest lanes (unsigned) of eight vectors, in lanes 0-7: pairs of vectors fold their halves
// together, then quarters, then the four lanes of each 128-bit block.
HWY_INLINE __m256i MaxOfLanes8(const __m512i (&m)[8]) {
  __m512i half[4], quarter[2];
  for (int i = 0; i < 4; ++i)  // blocks: m[2i] (0|2, 1|3), m[2i+1] (0|2, 1|3)
    half[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0x44), _mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0xEE));
  for (int i = 0; i < 2; ++i)  // block k: vector 4i + k
    quarter[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(half[2 * i], half[2 * i + 1], 0x88),
                                  _mm512_shuffle_i32x4(half[2 * i], half[2 * i + 1], 0xDD));
  // Block k: lanes (0, 2) of vector k against (0, 2) of k + 4, then the pair's other half.
  __m512i r = _mm512_max_epu32(_mm512_unpacklo_epi32(quarter[0], quarter[1]), _mm512_unpackhi_epi32(quarter[0], quarter[1]));
  r = _mm512_max_epu32(r, _mm512_shuffle_epi32(r, _MM_PERM_BADC));  // block k: vector k in lane 0, k + 4 in lane 1
  return _mm512_castsi512_si256(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), r));
}

// BitmodScale of eight ratios amax / gmax at once (lanes of non-finite amax are garbage).
HWY_INLINE __m256 BitmodScales8(const BitmodPlan& p, __m256 amax, double gmax) {
  const __m512d ratio = _mm512_div_pd(_mm512_cvtps_pd(amax), _mm512_set1_pd(gmax));
  // float16's binade (subnormals: -14); ratio * 2^(10 - e) rounded to an integer, nearest-even.
  const __m512d e = _mm512_max_pd(_mm512_getexp_pd(ratio), _mm512_set1_pd(-14.0));
  const __m512d scaled = _mm512_scalef_pd(ratio, _mm512_sub_pd(_mm512_set1_pd(10.0), e));
  const __m512d r = _mm512_scalef_pd(_mm512_roundscale_pd(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                     _mm512_sub_pd(e, _mm512_set1_pd(10.0)));
  // max_scale is at most float16's largest value, so the clamp also stands for its saturation.
  return _mm512_cvtpd_ps(_mm512_min_pd(_mm512_max_pd(r, _mm512_set1_pd(p.min_scale)), _mm512_set1_pd(p.max_scale)));
}
#endif

// Nearest base-grid value (integer-scaled) to v with the step of |v|'s binade (at most the grid's
// largest), not clamped to the grid's ends: below its largest value plus half its largest step it
// is the grid's nearest value.
HWY_INLINE VF BitmodBaseInner(DF df, const BitmodConstants& k, VF v) {
  const DI di;
  const VI field = hn::BitCast(di, hn::ShiftRight<23>(hn::BitCast(DU(), hn::Abs(v))));
  const VI step_exp = hn::Min(hn::Max(hn::Sub(field, k.field_bias), hn::Zero(di)), k.top_step_exp);
  const VI biased = hn::ShiftLeft<23>(step_exp);
  const VF step = hn::BitCast(df, hn::Add(biased, hn::BitCast(di, hn::Set(df, 1.0f))));
  const VF inv_step = hn::BitCast(df, hn::Sub(hn::BitCast(di, hn::Set(df, 1.0f)), biased));
  return hn::Mul(NearestTiesDown(df, v, inv_step, k.half), step);
}

// Beyond the grid's ends the value clamps whatever the rounding. May be -0 (the reference's grid
// has only +0): the output copy adds +0, the errors do not care.
HWY_INLINE VF BitmodBase(DF df, const BitmodConstants& k, VF v) {
  return hn::Min(hn::Max(BitmodBaseInner(df, k, v), k.neg_maxv), k.maxv);
}

// The lane sums of four vectors, as doubles (any order of the float additions: the caller's error
// bound covers every summation order).
HWY_INLINE void SumOfLanes4(DF df, const VF (&v)[4], double (&sums)[4]) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  (void)df;
  // Per 128-bit lane: a0+a2 b0+b2 a1+a3 b1+b3, then a b c d; then the four lanes added.
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(v[0].raw, v[1].raw), _mm512_unpackhi_ps(v[0].raw, v[1].raw));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(v[2].raw, v[3].raw), _mm512_unpackhi_ps(v[2].raw, v[3].raw));
  const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  const __m512 quad = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
  const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(quad), _mm512_extractf32x8_ps(quad, 1));
  const __m128 four = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  _mm256_storeu_pd(sums, _mm256_cvtps_pd(four));
#else
  for (int c = 0; c < 4; ++c) sums[c] = hn::GetLane(hn::SumOfLanes(df, v[c]));
#endif
}

// One group's constants for one of its scales s (candidates 2 i and 2 i + 1 of scale i, whose extra
// values are +e and -e), for values times `factor` (s, or s 2^k for the errors; the products are
// exact: few-bit integers times a float16, times a power of two).
struct BitmodScaleVecs {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  __m512 neg_half_scale;  // -s / 2
  __m512 inv_half_scale;  // float(2 / s), for the error sums' half steps
  // Two tables times factor. By half step: the base grid's ([0]) and the one with the scale's extra
  // ([1]). By sign index (BitmodPlan::sign_indexed): candidate 2 i's ([0]) and 2 i + 1's ([1]).
  __m512 lo[2], hi[2];
  BitmodScaleVecs(DF, const BitmodConstants& k, int i, float s, float factor, bool sign_indexed = false)
      : neg_half_scale(_mm512_set1_ps(-0.5f * s)), inv_half_scale(_mm512_set1_ps(2.0f / s)) {
    const __m512 f = _mm512_set1_ps(factor);
    lo[0] = _mm512_mul_ps(sign_indexed ? k.by_sign_index_lo[2 * i] : k.by_half_step_lo, f);
    hi[0] = _mm512_mul_ps(sign_indexed ? k.by_sign_index_hi[2 * i] : k.by_half_step_hi, f);
    lo[1] = _mm512_mul_ps(sign_indexed ? k.by_sign_index_lo[2 * i + 1] : k.extra_by_half_step_lo[i], f);
    hi[1] = _mm512_mul_ps(sign_indexed ? k.by_sign_index_hi[2 * i + 1] : k.extra_by_half_step_hi[i], f);
  }
#else
  VF scale, factor;
  BitmodScaleVecs(DF df, const BitmodConstants&, int, float s, float factor_, bool = false)
      : scale(hn::Set(df, s)), factor(hn::Set(df, factor_)) {}
#endif
};

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// The half step j of v = x / s (`positive`: the lanes of x > 0): |v| in (j / 2, (j + 1) / 2) rounds
// to the tables' entry j; at |v| = j / 2 ties go down for v > 0 (entry j - 1) and up for v < 0
// (entry j), and so do the extras' cells, which lie on multiples of 1/2. F = floor(x / (-s / 2)) =
// floor(-2 v), from the quotient rounded down (never below the floor, an integer and a float): -ceil(2
// v) <= -1 for v > 0, and floor(2 |v|) for v <= 0 (+-0 included). So j = ~F for x > 0 and F
// otherwise. Entry 31 (|v| up to 16) is the grid's largest value, as is every |v| beyond: F out of
// range converts to INT32_MIN, which (or its complement) is above 31 unsigned.
HWY_INLINE __m512i BitmodHalfStep(__m512 x, __mmask16 positive, __m512 neg_half_scale) {
  const __m512 w = _mm512_div_round_ps(x, neg_half_scale, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512i f = _mm512_cvt_roundps_epi32(w, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  return _mm512_min_epu32(_mm512_mask_xor_epi32(f, positive, f, _mm512_set1_epi32(-1)), _mm512_set1_epi32(31));
}

HWY_INLINE __mmask16 BitmodPositive(__m512 x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ); }

// Half steps for the error sums only, by one fused multiply-add: floor(|x| * float(2 / s)), without
// the sign's tie rule, clamped to 31. |x| * r + 2^23 rounded down is 2^23 plus that floor, whose bit
// pattern ends in the index (beyond 2^24 - 1 the clamp takes the pattern's larger exponent). The
// product's one rounding (r's) moves 2 |v| by at most 2^-24 of itself, so an element gets the
// neighbouring half step only where 2 |v| lies that close to an integer n; where the tables change at
// n, n / 2 is the midpoint m of two grid values a < b (b - a >= 1), where both squared errors equal
// ((b - a) / 2)^2 (s 2^k)^2 and differ by at most 2 (b - a) |v - m| (s 2^k)^2 <= 2 (b - a) |v| 2^-24 (s 2^k)^2:
// at most 8 |v| / (b - a) 2^-24 <= 44 2^-24 of the element's term (|m| / (b - a) <= 11 / 2 on
// BitMoD's grids). BitmodGroups widens its tolerance by that much; the output takes exact half steps.
HWY_INLINE __m512i BitmodErrorHalfStep(__m512 magnitude, __m512 inv_half_scale) {
  const __m512 biased = _mm512_fmadd_round_ps(magnitude, inv_half_scale, _mm512_set1_ps(0x1p23f), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  return _mm512_min_epu32(_mm512_castps_si512(biased), _mm512_set1_epi32(0x4B00001F));  // 2^23 + 31
}

// The sign index (below) for the error sums: F = floor(x * -float(2 / s)) clamped to [-16, 15] as
// the bit pattern of 1.5 2^23 + F (its binade's unit is 1, and its pattern ends in F & 31), with the
// bound of BitmodErrorHalfStep. x = +-0 gives F = 0, and a positive x whose product underflows F = -1
// (the exact product lies below 1.5 2^23), as the exact sign index.
HWY_INLINE __m512i BitmodErrorSignIndex(__m512 x, __m512 inv_half_scale) {
  const __m512 biased = _mm512_fnmadd_round_ps(x, inv_half_scale, _mm512_set1_ps(0x1.8p23f), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  return _mm512_min_epi32(_mm512_max_epi32(_mm512_castps_si512(biased), _mm512_set1_epi32(0x4B400000 - 16)), _mm512_set1_epi32(0x4B400000 + 15));
}

// The sign index of v = x / s (BitmodPlan::sign_indexed): F = floor(x / (-s / 2)) as in
// BitmodHalfStep, clamped to [-16, 15] before the conversion (so that no F is out of range); a
// lookup takes F & 31.
HWY_INLINE __m512i BitmodSignIndex(__m512 x, __m512 neg_half_scale) {
  const __m512 w = _mm512_div_round_ps(x, neg_half_scale, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 clamped = _mm512_max_ps(_mm512_min_ps(w, _mm512_set1_ps(15.0f)), _mm512_set1_ps(-16.0f));
  return _mm512_cvt_roundps_epi32(clamped, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
#else
// Whether v = x / s rounds to candidate c's extra value (the asymmetry extras, 2 and 3, lie beyond
// the base grid: their cells are open-ended).
HWY_INLINE MF BitmodInCell(const BitmodConstants& k, int c, VF v) {
  return c == 2 ? hn::Gt(v, k.cell_lo[c]) : c == 3 ? hn::Le(v, k.cell_hi[c]) : hn::And(hn::Gt(v, k.cell_lo[c]), hn::Le(v, k.cell_hi[c]));
}

// Candidate c's value (before the factor) for v: v's base value (as BitmodBase) or, in its cell,
// its extra value.
HWY_INLINE VF BitmodCandidate(const BitmodConstants& k, int c, VF v, VF base) {
  return hn::IfThenElse(BitmodInCell(k, c, v), k.extra[c], base);
}
#endif

// Adds one vector's squared errors, scaled by 2^k, to each candidate's sums.
template <bool kSignIndexed>
HWY_INLINE void BitmodAddErrors(DF df, const BitmodConstants& k, const BitmodScaleVecs (&sv)[2], VF vk, VF x, VF (&acc)[4]) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  (void)df;
  (void)k;
  if constexpr (kSignIndexed) {
    // Each candidate's magnitudes by sign index: one lookup per candidate, no blends.
    const __m512 xk = _mm512_mul_ps(_mm512_abs_ps(x.raw), vk.raw);
    for (int i = 0; i < 2; ++i) {
      const __m512i f = BitmodErrorSignIndex(x.raw, sv[i].inv_half_scale);
      const __m512 plus = _mm512_sub_ps(xk, _mm512_permutex2var_ps(sv[i].lo[0], f, sv[i].hi[0]));
      const __m512 minus = _mm512_sub_ps(xk, _mm512_permutex2var_ps(sv[i].lo[1], f, sv[i].hi[1]));
      acc[2 * i] = VF{_mm512_fmadd_ps(plus, plus, acc[2 * i].raw)};
      acc[2 * i + 1] = VF{_mm512_fmadd_ps(minus, minus, acc[2 * i + 1].raw)};
    }
    return;
  }
  // Magnitudes: the candidates round x and -x to opposite values. An element takes the extra of
  // its sign's candidate in the cells and the base value otherwise, so of the two candidates of a
  // scale one has its extra-table error and the other its base-table error (zeros lie in no cell).
  const __m512 magnitude = _mm512_abs_ps(x.raw);
  const __m512 xk = _mm512_mul_ps(magnitude, vk.raw);
  const __mmask16 positive = BitmodPositive(x.raw);
  for (int i = 0; i < 2; ++i) {
    const __m512i j = BitmodErrorHalfStep(magnitude, sv[i].inv_half_scale);
    const __m512 base_error = _mm512_sub_ps(xk, _mm512_permutex2var_ps(sv[i].lo[0], j, sv[i].hi[0]));
    const __m512 extra_error = _mm512_sub_ps(xk, _mm512_permutex2var_ps(sv[i].lo[1], j, sv[i].hi[1]));
    const __m512 plus = _mm512_mask_blend_ps(positive, base_error, extra_error);
    const __m512 minus = _mm512_mask_blend_ps(positive, extra_error, base_error);
    acc[2 * i] = VF{_mm512_fmadd_ps(plus, plus, acc[2 * i].raw)};
    acc[2 * i + 1] = VF{_mm512_fmadd_ps(minus, minus, acc[2 * i + 1].raw)};
  }
#else
  const VF xk = hn::Mul(x, vk);
  for (int i = 0; i < 2; ++i) {
    const VF v = hn::Div(x, sv[i].scale);
    const VF base = BitmodBase(df, k, v);
    for (int c = 2 * i; c < 2 * i + 2; ++c) {
      const VF e = hn::NegMulAdd(BitmodCandidate(k, c, v, base), sv[i].factor, xk);  // exact product
      acc[c] = hn::MulAdd(e, e, acc[c]);
    }
  }
#endif
}

// Candidate c's values at its scale s, for the output.
struct BitmodOutputVecs {
  int c;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  // Signed values by half step: for x > 0, and for x <= 0 (negated magnitudes, +0 for 0: the
  // reference's grid has only +0). Candidate 2 i has its extra +e on the positive side, 2 i + 1 -e.
  // By sign index, one signed table: the candidate's magnitudes with entries 0-15 (x <= 0) negated.
  __m512 neg_half_scale, positive_lo, positive_hi, other_lo, other_hi, signed_lo, signed_hi;
  BitmodOutputVecs(DF df, const BitmodConstants& k, int c_, float s, bool sign_indexed)
      : c(c_), neg_half_scale(_mm512_set1_ps(-0.5f * s)) {
    const BitmodScaleVecs sv(df, k, c / 2, s, s, sign_indexed);
    // (Selects, not sv.lo[c % 2]: an index known only at run time puts the tables on the stack.)
    const bool plus = c % 2 == 0;
    if (sign_indexed) {
      signed_lo = _mm512_sub_ps(_mm512_setzero_ps(), plus ? sv.lo[0] : sv.lo[1]);
      signed_hi = plus ? sv.hi[0] : sv.hi[1];
      return;
    }
    positive_lo = plus ? sv.lo[1] : sv.lo[0];  // the extra's table or the base's
    positive_hi = plus ? sv.hi[1] : sv.hi[0];
    other_lo = _mm512_sub_ps(_mm512_setzero_ps(), plus ? sv.lo[0] : sv.lo[1]);
    other_hi = _mm512_sub_ps(_mm512_setzero_ps(), plus ? sv.hi[0] : sv.hi[1]);
  }
#else
  BitmodScaleVecs sv;
  BitmodOutputVecs(DF df, const BitmodConstants& k, int c_, float s, bool) : c(c_), sv(df, k, c / 2, s, s) {}
#endif
};

// One vector of a candidate's values.
template <bool kSignIndexed>
HWY_INLINE VF BitmodValues(DF df, const BitmodConstants& k, const BitmodOutputVecs& o, VF x) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  (void)df;
  (void)k;
  if constexpr (kSignIndexed) return VF{_mm512_permutex2var_ps(o.signed_lo, BitmodSignIndex(x.raw, o.neg_half_scale), o.signed_hi)};
  const __mmask16 positive = BitmodPositive(x.raw);
  const __m512i j = BitmodHalfStep(x.raw, positive, o.neg_half_scale);
  return VF{_mm512_mask_blend_ps(positive, _mm512_permutex2var_ps(o.other_lo, j, o.other_hi),
                                 _mm512_permutex2var_ps(o.positive_lo, j, o.positive_hi))};
#else
  const VF v = hn::Div(x, o.sv.scale);
  return hn::Add(hn::Mul(BitmodCandidate(k, o.c, v, BitmodBase(df, k, v)), o.sv.factor), hn::Zero(df));
#endif
}

// Whether the two candidates of scale i give different values somewhere in the group: whether any
// element lies in a cell of their extras (sv with any factor).
HWY_INLINE bool BitmodCandidatesDiffer(DF df, const BitmodConstants& k, int i, const BitmodScaleVecs& sv, const float* src, size_t gs) {
  const size_t N = hn::Lanes(df);
  for (size_t j = 0; j < gs; j += N) {
    const VF x = hn::LoadU(df, src + j);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    const __m512i h = BitmodHalfStep(x.raw, BitmodPositive(x.raw), sv.neg_half_scale);
    if (_mm512_cmpge_epi32_mask(h, k.cell_first[i]) & _mm512_cmplt_epi32_mask(h, k.cell_end[i])) return true;
#else
    const VF v = hn::Div(x, sv.scale);
    for (int c = 2 * i; c < 2 * i + 2; ++c)
      if (!hn::AllFalse(df, BitmodInCell(k, c, v))) return true;
#endif
  }
  return false;
}

// BitMoD per group. Each candidate is its scale's base grid with one extra value, which takes the
// elements in its cell: every element is rounded at both scales, and each candidate's squared error
// takes the extra's error in its cell and the base error elsewhere. The errors are summed in float
// over differences scaled by 2^k; the reference sums in double element by element, so its choice
// is taken from the float sums only where they differ by more than both sums' rounding can move
// them (or where two candidates' values are the same everywhere: an exact tie, which keeps the
// earlier candidate). Any other group goes through the reference. The chosen candidate's values are
// then computed again, straight into the output: the kernel writes nothing but the output (stores
// to scratch buffers queue behind output stores that wait for their cache lines, which held the
// computation up on tensors beyond the cache).
template <bool kSignIndexed>
size_t BitmodGroups(const BitmodPlan& p, const BitmodFormat& format, const float* in, float* out, size_t groups) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t gs = p.group;
  if (gs % N != 0) return 0;
  // Batches of groups in passes (largest magnitudes and scales; error sums; choices; output), so
  // that the latency chains of neighbouring groups overlap.
  constexpr size_t kBatch = 8;
  const BitmodConstants kc(p);
  const DU du;
  const VU magnitude = hn::Set(du, 0x7FFFFFFFu);
  // The sums' relative error bound: float rounding (generously), plus the error half steps' (AVX-512:
  // BitmodErrorHalfStep's 44 2^-24, rounded up).
  const double rel = (2.0 * static_cast<double>(gs + 8) + 48.0) * 0x1p-24, abs_tol = static_cast<double>(gs) * 0x1p-140;
  // A batch's groups and what the output needs of them. Each batch's output is written during the
  // next batch's error pass, so that the choices' wait for the error sums overlaps other work.
  struct Batch {
    size_t g0 = 0, nb = 0;
    HWY_ALIGN uint32_t amax_bits[kBatch];
    HWY_ALIGN float scale[2][kBatch];  // scale i of each group
    HWY_ALIGN float pow2k[kBatch];
    HWY_ALIGN int best[kBatch];
  };
  Batch batches[2];
  const auto emit = [&](const Batch& t, size_t b) {
    if (b >= t.nb) return;
    const float* src = in + (t.g0 + b) * gs;
    float* dst = out + (t.g0 + b) * gs;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // The output's lines a batch ahead, for writing (their fetch would otherwise stall the stores).
    if (t.g0 + b + kBatch < groups)
      for (size_t j = 0; j < gs; j += 16) asm volatile("prefetchw %0" ::"m"(dst[kBatch * gs + j]));
#endif
    if (t.best[b] < 0) {
      format.quantize_reference({src, gs}, {dst, gs});
    } else if (t.amax_bits[b] == 0) {
      for (size_t j = 0; j < gs; j += N) hn::StoreU(hn::Zero(df), df, dst + j);
    } else {
      const BitmodOutputVecs o(df, kc, t.best[b], t.scale[t.best[b] / 2][b], kSignIndexed);
      for (size_t j = 0; j < gs; j += N) hn::StoreU(BitmodValues<kSignIndexed>(df, kc, o, hn::LoadU(df, src + j)), df, dst + j);
    }
  };
  HWY_ALIGN double err[4][kBatch];  // candidate, group
  size_t set = 0;
  for (size_t g0 = 0; g0 < groups; g0 += kBatch, set ^= 1) {
    const size_t nb = std::min(kBatch, groups - g0);
    Batch& cur = batches[set];
    const Batch& prev = batches[set ^ 1];
    cur.g0 = g0;
    cur.nb = nb;
    uint32_t* const amax_bits = cur.amax_bits;
    float(&scale)[2][kBatch] = cur.scale;
    float* const pow2k = cur.pow2k;
    int* const best = cur.best;
    // Largest |x| as the largest sign-cleared bit pattern (NaN / inf lie above every finite value).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    {
      // Every group's scales at once (lanes of non-finite groups are not used).
      __m512i m[kBatch];
      for (size_t b = 0; b < kBatch; ++b) {
        m[b] = _mm512_setzero_si512();
        if (b >= nb) continue;
        const float* src = in + (g0 + b) * gs;
        for (size_t j = 0; j < gs; j += N) m[b] = _mm512_max_epu32(m[b], _mm512_and_si512(_mm512_loadu_si512(src + j), magnitude.raw));
      }
      const __m256i bits = MaxOfLanes8(m);
      _mm256_store_si256(reinterpret_cast<__m256i*>(amax_bits), bits);
      const __m256 amax = _mm256_castsi256_ps(bits);
      for (int i = 0; i < 2; ++i) _mm256_store_ps(scale[i], BitmodScales8(p, amax, p.gmax[i]));
      const __m256i k = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(127), _mm256_srli_epi32(bits, 23)),
                                                          _mm256_set1_epi32(-126)), _mm256_set1_epi32(127));
      _mm256_store_ps(pow2k, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23)));
    }
#else
    for (size_t b = 0; b < nb; ++b) {
      const float* src = in + (g0 + b) * gs;
      VU m = hn::Zero(du);
      for (size_t j = 0; j < gs; j += N) m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(df, src + j)), magnitude));
      amax_bits[b] = hn::GetLane(hn::MaxOfLanes(du, m));
      float amax;
      std::memcpy(&amax, &amax_bits[b], 4);
      // BitmodScale is defined on NaN and inf too; those groups do not use it.
      for (int i = 0; i < 2; ++i) scale[i][b] = BitmodScale(p, static_cast<double>(amax) / p.gmax[i]);
      // Differences scaled by 2^k, amax * 2^k in [1, 2) (k clamped to float's normal powers; amax
      // subnormal gives 127), keep the squares in float's normal range.
      pow2k[b] = Pow2(std::clamp(127 - static_cast<int>(amax_bits[b] >> 23), -126, 127));
    }
#endif
    // Each candidate's error sum.
    for (size_t b = 0; b < kBatch; ++b) {
      emit(prev, b);
      // The input two batches ahead, a group at a time between the error sums (rather than a batch
      // at a time in the first pass: about 5 % on tensors far beyond the cache; 16 KiB ahead, about
      // 2 % less than these 8).
      if (b < nb) PrefetchAhead(in + (g0 + b) * gs, gs, (groups - g0 - b) * gs, 2 * kBatch * gs);
      if (b >= nb || amax_bits[b] == 0 || amax_bits[b] >= 0x7F800000u) {
        for (int c = 0; c < 4; ++c) err[c][b] = 0;  // a tie: not used
        continue;
      }
      const float* src = in + (g0 + b) * gs;
      const BitmodScaleVecs sv[2] = {{df, kc, 0, scale[0][b], scale[0][b] * pow2k[b], kSignIndexed},
                                     {df, kc, 1, scale[1][b], scale[1][b] * pow2k[b], kSignIndexed}};
      const VF vk = hn::Set(df, pow2k[b]);
      VF acc[4] = {hn::Zero(df), hn::Zero(df), hn::Zero(df), hn::Zero(df)};
      // Unrolled, so that the vectors' independent chains overlap more (about 4 % in cache).
#pragma GCC unroll 4
      for (size_t j = 0; j < gs; j += N) BitmodAddErrors<kSignIndexed>(df, kc, sv, vk, hn::LoadU(df, src + j), acc);
      double sums[4];
      SumOfLanes4(df, acc, sums);
      for (int c = 0; c < 4; ++c) err[c][b] = sums[c];
    }
    // The choices (-1: the reference's). A candidate replaces the best so far where its sum is
    // lower by more than the tolerance and keeps it where higher by more; a group with any closer
    // call is decided again below, one step at a time.
    uint32_t close_calls = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    {
      // All groups at once, without branches: which candidate wins is as good as random.
      const __m512d vrel = _mm512_set1_pd(rel), vabs = _mm512_set1_pd(abs_tol);
      __m512d e_best = _mm512_load_pd(err[0]);
      __m512i c_best = _mm512_setzero_si512();
      __mmask8 decided = 0xFF;
      for (int c = 1; c < 4; ++c) {
        const __m512d e = _mm512_load_pd(err[c]);
        const __m512d tol = _mm512_add_pd(_mm512_mul_pd(vrel, _mm512_add_pd(e, e_best)), vabs);
        const __mmask8 lower = _mm512_cmp_pd_mask(e, _mm512_sub_pd(e_best, tol), _CMP_LT_OQ);
        decided &= lower | _mm512_cmp_pd_mask(e, _mm512_add_pd(e_best, tol), _CMP_GT_OQ);
        c_best = _mm512_mask_mov_epi64(c_best, lower, _mm512_set1_epi64(c));
        e_best = _mm512_mask_mov_pd(e_best, lower, e);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(best), _mm512_cvtepi64_epi32(c_best));
      close_calls = static_cast<uint8_t>(~decided);
    }
#else
    close_calls = 0xFF;
#endif
    for (size_t b = 0; b < nb; ++b) {
      if (amax_bits[b] == 0) {  // all zeros: every candidate gives +0 everywhere, a tie
        best[b] = 0;
        continue;
      }
      if (amax_bits[b] >= 0x7F800000u) {  // a NaN or inf makes the whole group NaN
        best[b] = -1;
        continue;
      }
      if (!(close_calls >> b & 1)) continue;
      int c_best = 0;
      bool certain = true;
      for (int c = 1; c < 4 && certain; ++c) {
        const double tol = rel * (err[c][b] + err[c_best][b]) + abs_tol;
        if (err[c][b] < err[c_best][b] - tol) {
          c_best = c;
        } else if (!(err[c][b] > err[c_best][b] + tol)) {
          // Too close to call, unless the two are one scale's candidates with the same values
          // everywhere (equal sums: keep the earlier).
          const int i = c / 2;
          certain = c % 2 == 1 && c_best == c - 1 &&
                    !BitmodCandidatesDiffer(df, kc, i, {df, kc, i, scale[i][b], 1.0f}, in + (g0 + b) * gs, gs);
        }
      }
      best[b] = certain ? c_best : -1;
    }
  }
  for (size_t b = 0; b < kBatch; ++b) emit(batches[set ^ 1], b);
  return groups;
}

size_t BitmodGroupsSimd(const BitmodPlan& p, const BitmodFormat& format, const float* in, float* out, size_t groups) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if (p.sign_indexed) return BitmodGroups<true>(p, format, in, out, groups);
#endif
  return BitmodGroups<false>(p, format, in, out, groups);
}

float AbsMaxSimd(const float* in, size_t n, bool* all_finite) {
  const DF df;
  const size_t N = hn::Lanes(df);
  {
    // Fast pass: non-negative floats order as their bit patterns, so the largest |x| is the largest
    // of the sign-cleared bits; NaN and inf lie above every finite value. Four chains in flight.
    const DU du;
    const VU magnitude = hn::Set(du, 0x7FFFFFFFu);
    VU m0 = hn::Zero(du), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 4 * N <= n; i += 4 * N) {
      if (i + kPrefetchAhead < n) hwy::Prefetch(in + i + kPrefetchAhead);
      m0 = hn::Max(m0, hn::And(hn::BitCast(du, hn::LoadU(df, in + i)), magnitude));
      m1 = hn::Max(m1, hn::And(hn::BitCast(du, hn::LoadU(df, in + i + N)), magnitude));
      m2 = hn::Max(m2, hn::And(hn::BitCast(du, hn::LoadU(df, in + i + 2 * N)), magnitude));
      m3 = hn::Max(m3, hn::And(hn::BitCast(du, hn::LoadU(df, in + i + 3 * N)), magnitude));
    }
    for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::And(hn::BitCast(du, hn::LoadU(df, in + i)), magnitude));
    uint32_t bits = hn::GetLane(hn::MaxOfLanes(du, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3))));
    for (; i < n; ++i) {
      uint32_t b;
      std::memcpy(&b, in + i, 4);
      bits = std::max(bits, b & 0x7FFFFFFFu);
    }
    if (bits < 0x7F800000u) {
      *all_finite = true;
      float best;
      std::memcpy(&best, &bits, 4);
      return best;
    }
  }
  // Some value is NaN or inf: the largest finite magnitude, skipping them.
  VF m = hn::Zero(df);
  auto finite = hn::IsFinite(hn::Zero(df));
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF v = hn::LoadU(df, in + i);
    const auto ok = hn::IsFinite(v);
    finite = hn::And(finite, ok);
    m = hn::Max(m, hn::IfThenElseZero(ok, hn::Abs(v)));  // NaN and inf do not count
  }
  float best = hn::GetLane(hn::MaxOfLanes(df, m));
  bool ok = hn::AllTrue(df, finite);
  for (; i < n; ++i) {
    if (!std::isfinite(in[i])) ok = false;
    else best = std::max(best, std::fabs(in[i]));
  }
  *all_finite = ok;
  return best;
}

// Asymmetric integer grid, nearest-even: round(clamp(x / scale, lo, hi)) * scale with NaN -> 0,
// exactly as the scalar loop in Quantizer::fake_quant computes it. Whole vectors only; returns how
// many elements it did.
size_t AffineIntegerSimd(const float* in, float* out, size_t n, float scale, float lo, float hi) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const VF s = hn::Set(df, scale), vlo = hn::Set(df, lo), vhi = hn::Set(df, hi), magic = hn::Set(df, 0x1.8p23f);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF v = hn::Div(hn::LoadU(df, in + i), s);
    const VF c = hn::IfThenElse(hn::Lt(v, vlo), vlo, hn::IfThenElse(hn::Gt(v, vhi), vhi, v));
    const VF q = hn::Sub(hn::Add(c, magic), magic);
    hn::StoreU(hn::IfThenElseZero(hn::Eq(c, c), hn::Mul(q, s)), df, out + i);
  }
  return i;
}

}  // namespace lowbit::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::detail {
HWY_EXPORT(QuantizeSpanSimd);
HWY_EXPORT(AffineIntegerSimd);
HWY_EXPORT(AbsMaxSimd);
HWY_EXPORT(BlockAbsMaxSimd);
HWY_EXPORT(QuantizeBlocksSimd);
HWY_EXPORT(QuantizeMxBlocksSimd);
HWY_EXPORT(QuantizeNearestScaledBlocksSimd);
HWY_EXPORT(BitmodGroupsSimd);

size_t bitmod_groups_simd(const BitmodPlan& plan, const BitmodFormat& format, const float* in, float* out,
                          size_t groups) {
  return HWY_DYNAMIC_DISPATCH(BitmodGroupsSimd)(plan, format, in, out, groups);
}

size_t quantize_nearest_scaled_blocks_simd(const ElementPlan& p, const NearestMinifloatScale& rule, const float* in,
                                           float* out, size_t blocks, size_t block, uint64_t index0, bool stream) {
  return HWY_DYNAMIC_DISPATCH(QuantizeNearestScaledBlocksSimd)(p, rule, in, out, blocks, block, index0, stream);
}

size_t quantize_mx_blocks_simd(const ElementPlan& p, const Pow2FloorScale& rule, const float* in, float* out,
                               size_t blocks, size_t block, uint64_t index0) {
  return HWY_DYNAMIC_DISPATCH(QuantizeMxBlocksSimd)(p, rule, in, out, blocks, block, index0);
}

void block_abs_max(const float* in, size_t blocks, size_t block, float* amax, uint8_t* finite) {
  HWY_DYNAMIC_DISPATCH(BlockAbsMaxSimd)(in, blocks, block, amax, finite);
}

size_t quantize_blocks_simd(const ElementPlan& p, const float* in, float* out, size_t blocks, size_t block,
                            const float* scale, bool pow2, uint64_t index0) {
  return HWY_DYNAMIC_DISPATCH(QuantizeBlocksSimd)(p, in, out, blocks, block, scale, pow2, index0);
}

size_t quantize_span_simd(const ElementPlan& p, const float* in, float* out, size_t n, uint64_t index0, float scale) {
  return HWY_DYNAMIC_DISPATCH(QuantizeSpanSimd)(p, in, out, n, index0, scale);
}

size_t affine_integer_simd(const float* in, float* out, size_t n, float scale, float lo, float hi) {
  return HWY_DYNAMIC_DISPATCH(AffineIntegerSimd)(in, out, n, scale, lo, hi);
}

float abs_max(const float* in, size_t n, bool* all_finite) { return HWY_DYNAMIC_DISPATCH(AbsMaxSimd)(in, n, all_finite); }
}  // namespace lowbit::detail
#endif
