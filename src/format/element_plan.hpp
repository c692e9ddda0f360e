#pragma once
// Constants a SIMD kernel needs to quantize float32 values into one scalar format, derived once
// from the ScalarFormat. Internal to the fake-quant implementation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lowbit/format/bitmod.hpp"
#include "lowbit/format/rounding.hpp"
#include "lowbit/format/scalar_format.hpp"

namespace lowbit::detail {

struct ElementPlan {
  enum Kind : int { kFallback, kFloat, kUniform, kBinary };
  Kind kind = kFallback;
  // kFloat
  int mantissa_bits = 0;
  int emin = 0;        // exponent of the lowest normal binade
  int emax_clamp = 0;  // exponents above this all overflow; keeps the magic constant finite
  bool flush = false;   // subnormals off: below 2^emin the step is 2^emin
  bool wide = false;    // E8 with bias 127 (bfloat16-like): nearest-even on the float32 bit pattern
  bool scaled = false;  // steps are normal floats, the smallest <= 1: round a / ulp with Floor
  bool is_signed = true;
  bool negative_zero = true;
  bool saturate = true;
  float overflow_value = 0;  // magnitude when rounding passes max without saturation (inf or NaN)
  float inf_value = 0;       // magnitude for an infinite input
  // kUniform: values are integer multiples of step in [lowest, max]
  float step = 1, inv_step = 1;
  float wrap_range = 0, inv_wrap_range = 0;  // 2^W steps (AP_WRAP)
  bool signed_rounding = false;  // round x / step on the signed line with hardware rounding
  float min_normal = 0;          // kFloat with flush
  FixedOverflow overflow = FixedOverflow::Sat;
  float pos_inf_value = 0, neg_inf_value = 0;
  // common
  float max_value = 0, lowest_value = 0;
  float nan_value = 0;
  MagnitudeRounding mode_pos = MagnitudeRounding::NearestEven, mode_neg = MagnitudeRounding::NearestEven;
  Rounding rounding = Rounding::NearestEven;
  bool stochastic = false;
  uint32_t seed = 0;
  // kFloat, stochastic, subnormals on, smallest step 2^(emin - M) >= 2^-125: round on the float32
  // bit pattern (RoundStochasticOnBits).
  bool stochastic_on_bits = false;
  float min_step = 0;  // 2^(emin - M)
};

ElementPlan make_plan(const ScalarFormat& f, Rounding r, uint32_t seed);

// Processes the whole SIMD vectors of [0, n) and returns how many elements it did.
size_t quantize_span_simd(const ElementPlan& p, const float* in, float* out, size_t n, uint64_t index0, float scale);
// Quantizes n contiguous floats; element k has stochastic index index0 + k. Dispatches to the best
// SIMD target; lanes the kernel cannot take go through the scalar reference.
void quantize_span(const ScalarFormat& f, const ElementPlan& p, Rounding r, const float* in, float* out, size_t n,
                   uint64_t index0);
// Same, with every element divided by `scale` before and multiplied by it after (block formats).
void quantize_span_scaled(const ScalarFormat& f, const ElementPlan& p, Rounding r, const float* in, float* out,
                          size_t n, uint64_t index0, float scale);
// Asymmetric integer grid in nearest-even: out = round(clamp(in / scale, lo, hi)) * scale, NaN -> 0.
// Whole SIMD vectors only: returns how many elements it did, the caller finishes the rest.
size_t affine_integer_simd(const float* in, float* out, size_t n, float scale, float lo, float hi);
// Whole blocks of `block` floats: amax[b] = largest finite |x| of block b, finite[b] = no NaN / inf.
void block_abs_max(const float* in, size_t blocks, size_t block, float* amax, uint8_t* finite);
// Quantizes whole blocks with per-block scales (NaN: a NaN block; 0: zeros). pow2: every scale is
// a power of two, so x / s is computed as x * (1 / s). Returns how many blocks it did (all unless
// `block` is not a multiple of the SIMD width, then none).
size_t quantize_blocks_simd(const ElementPlan& p, const float* in, float* out, size_t blocks, size_t block,
                            const float* scale, bool pow2, uint64_t index0);
// The OCP MX floor rule on a power-of-two scale: exponent floor(log2 amax) - elem_emax, clamped
// to [scale_emin, scale_emax]; above it the block is NaN when nan_above.
struct Pow2FloorScale {
  int elem_emax = 0, scale_emin = -127, scale_emax = 127;
  bool nan_above = true;
  static constexpr int kNaN = 1 << 20;
  // The scale's exponent for a block whose largest finite magnitude is amax (kNaN: a NaN block).
  int exponent(float amax) const {
    uint32_t bits;
    std::memcpy(&bits, &amax, 4);
    const int field = static_cast<int>(bits >> 23);  // floor(log2 amax) for a normal float
    int e = field > 0 ? field - 127 - elem_emax : (amax > 0 ? std::ilogb(amax) - elem_emax : scale_emin);
    if (e > scale_emax) {
      if (nan_above) return kNaN;
      e = scale_emax;
    }
    return std::max(e, scale_emin);
  }
};
// The MX floor rule and the elements fused in one pass per block (BlockScaler's pow2 shortcut,
// computed in place). Returns the blocks done: none unless `block` is a multiple of the SIMD width
// and the scale's exponents lie in [-127, 127] (scales with a float reciprocal).
size_t quantize_mx_blocks_simd(const ElementPlan& p, const Pow2FloorScale& rule, const float* in, float* out,
                               size_t blocks, size_t block, uint64_t index0);
// The nearest rule on a minifloat scale grid with zero and subnormals (NVFP4's E4M3 under an fp32
// tensor scale): scale = amax / denom rounded to the grid, ties to the even code, saturating at
// max; the block's effective scale is float(scale * tensor). Exact from a double quotient when
// denom * (a grid midpoint) has at most 50 significant bits (BlockScaler checks).
struct NearestMinifloatScale {
  double denom = 1, tensor = 1;
  int mantissa_bits = 0, emin = 0;  // scale grid: 2^emin is its smallest normal
  double min_normal = 0, max = 0;
};
// Scales computed many blocks at a time in SIMD, then the elements (x / scale, rounded, times scale,
// the reference's order). Returns the blocks done (none unless `block` is a multiple of the SIMD width).
// stream: write the output with non-temporal stores (tensors far larger than the caches).
size_t quantize_nearest_scaled_blocks_simd(const ElementPlan& p, const NearestMinifloatScale& rule, const float* in,
                                           float* out, size_t blocks, size_t block, uint64_t index0, bool stream);
// Outputs at least this large are written with non-temporal stores by the kernels that can.
inline constexpr size_t kStreamBytes = size_t{32} << 20;
// BitMoD's four candidate grids, each the symmetric base grid (integer-scaled FP3 {0,1,2,4} or FP4
// {0,1,...,12}) plus one extra value, for the SIMD kernel. Candidates 0,1 share one scale (their
// grids' largest magnitude gmax[0]), 2,3 another.
struct BitmodPlan {
  int base_mantissa_bits = 1;    // FP4 = E2M1 x 2 (1), FP3 = E2M0 (0)
  float base_max = 12;           // largest base magnitude
  float extra[4] = {};           // each candidate's extra value
  float cell_lo[4] = {}, cell_hi[4] = {};  // v rounds to the extra when cell_lo < v <= cell_hi
  double gmax[2] = {};           // scale = fp16(amax / gmax), clamped to [min_scale, max_scale]
  float min_scale = 0, max_scale = 0;
  int top_ulp_exp = 2;           // the base grid's largest step is 2^top_ulp_exp
  // Per scale (candidates 0-1, 2-3: extra values +e and -e, cells mirrored): the first and last
  // half step j of the cells, |v| in (j / 2, (j + 1) / 2] for v > 0, [j / 2, (j + 1) / 2) for v < 0;
  // 31 stands for every j from there on (a cell that ends, ends below it).
  int cell_half_steps[2][2] = {};
  // base_by_half_step[j]: the base grid's magnitude nearest (2 j + 1) / 4, j < 32. Every midpoint of
  // the base grid is a multiple of 1/2, so |v| in (j / 2, (j + 1) / 2) rounds to it.
  float base_by_half_step[32] = {};
  // The same per scale with the scale's extra magnitude in its cells (half steps cell_half_steps).
  float extra_by_half_step[2][32] = {};
  // Whether both tables stay the same from half step 15 on (FP3): then 32 entries can hold both
  // signs, indexed by F & 31 with F = floor(-2 v) clamped to [-16, 15]. Entry i < 16 is the half
  // step j = i of x <= 0, entry i >= 16 the half step j = 31 - i of x > 0. Per scale, candidate 2 s
  // (extra +e) and 2 s + 1 (-e) each have one such table of magnitudes.
  bool sign_indexed = false;
  float by_sign_index[4][32] = {};  // by candidate
  size_t group = 128;
};
BitmodPlan make_bitmod_plan(const BitmodFormat& f);
// Whole groups of `plan.group` floats from in[0]: returns the groups done (none unless the group
// is a multiple of the SIMD width). A group whose candidates the fast error sums cannot order for
// certain (or with NaN / inf) goes through format.quantize_reference.
size_t bitmod_groups_simd(const BitmodPlan& plan, const BitmodFormat& format, const float* in, float* out,
                          size_t groups);
// Largest |x| over n floats, and whether all are finite.
float abs_max(const float* in, size_t n, bool* all_finite);

}  // namespace lowbit::detail
