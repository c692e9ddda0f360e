// SIMD fake quantization of scalar formats, compiled once per target by Highway and dispatched at
// run time. Every operation is exact float32 arithmetic on powers of two (see docs/kernels.md), so
// results match ScalarFormat::quantize bit for bit.
#include <cmath>
#include <cstring>
#include <algorithm>
#include <limits>

#include "src/format/element_plan.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/format/fake_quant_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

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

// 24 random bits per lane, identical to lowbit::stochastic_bits.
HWY_INLINE VU StochasticBits(DU du, uint32_t seed, uint64_t index0) {
  // index < 2^32 per span chunk is guaranteed by the caller splitting on 2^32 boundaries.
  const VU idx = hn::Add(hn::Iota(du, 0u), hn::Set(du, static_cast<uint32_t>(index0)));
  const uint32_t hi = static_cast<uint32_t>(index0 >> 32) * 0x9E3779B9u;
  VU x = hn::Xor(idx, hn::Set(du, hi ^ (seed * 0x85EBCA6Bu)));
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  x = hn::Mul(x, hn::Set(du, 0x7FEB352Du));
  x = hn::Xor(x, hn::ShiftRight<15>(x));
  x = hn::Mul(x, hn::Set(du, 0x846CA68Bu));
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  return hn::ShiftRight<8>(x);
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
HWY_INLINE VF RoundMagnitude(DF df, const ElementPlan& p, VF a, VF ulp, VF inv_ulp, VF magic, MF neg, uint64_t index0) {
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

HWY_INLINE VF QuantizeFloat(DF df, const ElementPlan& p, VF x, uint64_t index0) {
  const DI di;
  const VF a = hn::Abs(x);
  const MF neg = hn::MaskFromVec(hn::BitCast(df, hn::ShiftRight<31>(hn::BitCast(di, x))));
  VF r;
  if (p.wide) {
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
  const VF maxv = hn::Set(df, p.max_value);
  const MF over = hn::Gt(r, maxv);
  if (p.saturate) {
    r = hn::IfThenElse(over, maxv, r);
  } else {
    // Rounding toward zero in magnitude stops at max; other modes overflow to inf / NaN.
    VF ovf = hn::Set(df, p.overflow_value);
    if (p.mode_pos == MagnitudeRounding::Down) ovf = hn::IfThenElse(hn::Not(neg), maxv, ovf);
    if (p.mode_neg == MagnitudeRounding::Down) ovf = hn::IfThenElse(neg, maxv, ovf);
    r = hn::IfThenElse(over, ovf, r);
  }
  r = hn::IfThenElse(hn::IsInf(x), hn::Set(df, p.inf_value), r);
  VF out;
  if (p.is_signed) {
    const VF sign = hn::And(x, hn::Set(df, -0.0f));
    out = hn::Or(r, sign);
    if (!p.negative_zero) out = hn::IfThenElse(hn::Eq(r, hn::Zero(df)), hn::Zero(df), out);
  } else {
    out = hn::IfThenElseZero(hn::Not(neg), r);
  }
  return hn::IfThenElse(hn::IsNaN(x), hn::Set(df, p.nan_value), out);
}

// Rounds x / step on the signed line with the hardware's rounding instructions; for the modes that
// depend on the sign (and are not symmetric in magnitude). Returns multiples of step.
HWY_INLINE VF RoundSigned(DF df, const ElementPlan& p, VF x) {
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

HWY_INLINE VF QuantizeUniform(DF df, const ElementPlan& p, VF x, uint64_t index0) {
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

HWY_INLINE VF QuantizeVec(DF df, const ElementPlan& p, VF x, uint64_t index) {
  switch (p.kind) {
    case ElementPlan::kFloat: return QuantizeFloat(df, p, x, index);
    case ElementPlan::kUniform: return QuantizeUniform(df, p, x, index);
    case ElementPlan::kBinary: return QuantizeBinary(df, x);
    case ElementPlan::kFallback: break;
  }
  return x;
}

// Processes the whole vectors of [0, n); returns how many elements were done.
size_t QuantizeSpanSimd(const ElementPlan& p, const float* in, float* out, size_t n, uint64_t index0, float scale) {
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

// Largest finite |x| of one block of `block` floats (a multiple of the lane count); *finite tells
// whether it holds no NaN / inf.
HWY_INLINE float BlockAmax(DF df, const float* src, size_t block, bool* finite) {
  const size_t N = hn::Lanes(df);
  VF m = hn::Zero(df);
  auto ok = hn::IsFinite(hn::Zero(df));
  for (size_t k = 0; k < block; k += N) {
    const VF v = hn::LoadU(df, src + k);
    const auto f = hn::IsFinite(v);
    ok = hn::And(ok, f);
    m = hn::Max(m, hn::IfThenElseZero(f, hn::Abs(v)));
  }
  *finite = hn::AllTrue(df, ok);
  return hn::GetLane(hn::MaxOfLanes(df, m));
}

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
    const VF sv = hn::Set(df, s), inv = hn::Set(df, 1.0f / s);
    for (size_t k = 0; k < block; k += N) {
      const VF x = hn::LoadU(df, src + k);
      const VF v = pow2 ? hn::Mul(x, inv) : hn::Div(x, sv);  // 1 / s is exact for a power of two
      hn::StoreU(hn::Mul(QuantizeVec(df, p, v, index0 + b * block + k), sv), df, dst + k);
    }
  }
  return blocks;
}

// 2^e as a float32 for e in [-149, 127], from its bits.
HWY_INLINE float Pow2(int e) {
  const uint32_t bits = e >= -126 ? static_cast<uint32_t>(e + 127) << 23 : 1u << (e + 149);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// OCP MX floor rule fused with the elements: per block, amax, the power-of-two scale
// 2^clamp(floor(log2 amax) - elem_emax), then x * 2^-k rounded and scaled back, in one pass.
size_t QuantizeMxBlocksSimd(const ElementPlan& p, const Pow2FloorScale& rule, const float* in, float* out,
                            size_t blocks, size_t block, uint64_t index0) {
  const DF df;
  const size_t N = hn::Lanes(df);
  if (block % N != 0) return 0;
  for (size_t b = 0; b < blocks; ++b) {
    const float* src = in + b * block;
    float* dst = out + b * block;
    bool finite = true;
    const float amax = BlockAmax(df, src, block, &finite);
    const int e = rule.exponent(amax);
    const bool nan_block = !finite || e == Pow2FloorScale::kNaN;
    if (nan_block) {
      const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
      for (size_t k = 0; k < block; k += N) hn::StoreU(nan, df, dst + k);
      continue;
    }
    const float s = Pow2(e), inv = Pow2(-e);
    const VF sv = hn::Set(df, s), iv = hn::Set(df, inv);
    for (size_t k = 0; k < block; k += N)
      hn::StoreU(hn::Mul(QuantizeVec(df, p, hn::Mul(hn::LoadU(df, src + k), iv), index0 + b * block + k), sv), df, dst + k);
  }
  return blocks;
}

float AbsMaxSimd(const float* in, size_t n, bool* all_finite) {
  const DF df;
  const size_t N = hn::Lanes(df);
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
