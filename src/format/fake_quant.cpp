#include "lowbit/format/fake_quant.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <hwy/targets.h>

#include "lowbit/format/parallel.hpp"
#include "lowbit/format/tensor_shape.hpp"
#include "src/format/block_scaler.hpp"
#include "src/format/element_plan.hpp"

namespace lowbit {
namespace detail {

ElementPlan make_plan(const ScalarFormat& f, Rounding r, uint32_t seed) {
  ElementPlan p;
  p.mode_pos = magnitude_rounding(r, false);
  p.mode_neg = magnitude_rounding(r, true);
  p.rounding = r;
  p.stochastic = r == Rounding::Stochastic;
  p.seed = seed;
  p.max_value = static_cast<float>(f.max());
  p.lowest_value = static_cast<float>(f.lowest());
  p.nan_value = static_cast<float>(f.quantize(std::numeric_limits<double>::quiet_NaN(), r));
  switch (f.kind()) {
    case ScalarKind::Binary:
      if (r != Rounding::Down && r != Rounding::Up && r != Rounding::NearestDown && r != Rounding::Stochastic)
        p.kind = ElementPlan::kBinary;
      return p;
    case ScalarKind::Integer:
    case ScalarKind::Fixed: {
      if (!f.float32_exact()) return p;
      p.kind = ElementPlan::kUniform;
      p.step = f.kind() == ScalarKind::Integer
                   ? 1.0f
                   : std::ldexp(1.0f, f.fixed_params().int_bits - f.fixed_params().width);
      if (!std::isfinite(p.step * 0x1p24f)) return p.kind = ElementPlan::kFallback, p;
      if (f.kind() == ScalarKind::Fixed) {
        const FixedParams& fx = f.fixed_params();
        p.overflow = fx.overflow;
        if (p.overflow == FixedOverflow::SatSym && !fx.is_signed) p.overflow = FixedOverflow::Sat;
        if (fx.overflow == FixedOverflow::WrapSm || (fx.overflow == FixedOverflow::Wrap && fx.saturation_bits > 0))
          p.kind = ElementPlan::kFallback;
      }
      p.scaled = p.step <= 1.0f && p.step >= 0x1p-126f;
      p.inv_step = 1.0f / p.step;
      p.wrap_range = p.max_value - p.lowest_value + p.step;
      p.inv_wrap_range = 1.0f / p.wrap_range;
      p.signed_rounding = p.scaled && r != Rounding::NearestAway && r != Rounding::NearestZero && r != Rounding::Stochastic;
      p.pos_inf_value = static_cast<float>(f.quantize(std::numeric_limits<double>::infinity(), r));
      p.neg_inf_value = static_cast<float>(f.quantize(-std::numeric_limits<double>::infinity(), r));
      return p;
    }
    case ScalarKind::Minifloat: break;
  }
  const MinifloatParams& m = f.minifloat_params();
  if (!m.has_zero) return p;
  p.mantissa_bits = m.mantissa_bits;
  p.emin = 1 - m.bias;
  p.emax_clamp = std::ilogb(f.max()) + 1;
  p.flush = !m.subnormals;
  p.min_normal = static_cast<float>(f.min_normal());
  p.is_signed = m.has_sign;
  p.negative_zero = f.has_negative_zero();
  p.saturate = m.saturate;
  p.overflow_value = m.specials == Specials::Ieee ? std::numeric_limits<float>::infinity()
                                                  : std::numeric_limits<float>::quiet_NaN();
  p.inf_value = std::fabs(static_cast<float>(f.quantize(std::numeric_limits<double>::infinity(), r)));
  if (std::isnan(p.inf_value)) p.inf_value = std::numeric_limits<float>::quiet_NaN();
  const bool nearest_even = r == Rounding::NearestEven;
  if (m.exponent_bits == 8 && m.bias == 127 && m.subnormals) {
    p.wide = true;
    p.kind = nearest_even ? ElementPlan::kFloat : ElementPlan::kFallback;
    return p;
  }
  // magic = 2^(ulp exponent + 23) and twice it must stay finite floats.
  if (p.emax_clamp - p.mantissa_bits + 24 > 127) return p;
  p.kind = ElementPlan::kFloat;
  // Dividing by the step (multiplying by its inverse) stays exact when the smallest step is a
  // normal float32 no larger than 1 (below the normal range a could underflow when scaled).
  const int min_step_exp = p.flush ? p.emin : p.emin - p.mantissa_bits;
  p.scaled = min_step_exp >= -126 && min_step_exp <= 0;
  // Stochastic rounding on the bit pattern needs the smallest step times 2^-24 (the random
  // threshold below it) to be a float32 without rounding.
  // (Shift counts stay below 32 with at most 22 mantissa bits.)
  p.stochastic_on_bits = p.stochastic && !p.flush && p.emin - p.mantissa_bits >= -125 && p.mantissa_bits <= 22;
  p.min_step = std::ldexp(1.0f, p.emin - p.mantissa_bits);
  return p;
}

BitmodPlan make_bitmod_plan(const BitmodFormat& f) {
  BitmodPlan p;
  const int base_bits = f.params().base_bits;
  p.base_mantissa_bits = base_bits == 4 ? 1 : 0;
  p.group = static_cast<size_t>(f.params().group_size);
  // Built once: constructing the format enumerates its 65,536 codes (about 4 ms, which was most of
  // the time of a BitMoD call on a 64K-element tensor).
  static const ScalarFormat float16 = ScalarFormat::minifloat({5, 10, true, 15, Specials::Ieee, true, true, true});
  p.min_scale = static_cast<float>(float16.quantize(1e-5));
  p.max_scale = static_cast<float>(float16.quantize(1e4));
  double base_max = 0;
  const auto& grids = f.grids();
  for (size_t c = 0; c < 4; ++c) {
    const std::vector<double>& g = grids[c];
    for (size_t i = 0; i < g.size(); ++i) {
      if (std::find(g.begin(), g.end(), -g[i]) != g.end()) {
        base_max = std::max(base_max, std::fabs(g[i]));
        continue;
      }
      // The extra value: the one whose negation is not in the grid. Its cell runs between the
      // midpoints with its neighbours (open below, closed above: ties go to the lower value).
      p.extra[c] = static_cast<float>(g[i]);
      p.cell_lo[c] = i > 0 ? static_cast<float>((g[i - 1] + g[i]) / 2) : -std::numeric_limits<float>::infinity();
      p.cell_hi[c] = i + 1 < g.size() ? static_cast<float>((g[i] + g[i + 1]) / 2) : std::numeric_limits<float>::infinity();
    }
  }
  p.base_max = static_cast<float>(base_max);
  p.top_ulp_exp = std::ilogb(base_max) - p.base_mantissa_bits;
  // The kernel takes candidates 2 and 3 as the asymmetry extras beyond the base grid's ends.
  if (!(std::isinf(p.cell_hi[2]) && std::isinf(p.cell_lo[3]) && std::isfinite(p.cell_lo[2]) && std::isfinite(p.cell_hi[3])))
    throw std::logic_error("bitmod candidates 2 and 3 must extend the grid's ends");
  // The half-step table reaches |v| = 16: the grid's clamp must start below.
  if (p.base_max + std::ldexp(1.0f, p.top_ulp_exp) / 2 > 16) throw std::logic_error("bitmod: the base grid must clamp below 16");
  for (int s = 0; s < 2; ++s) {
    const int c = 2 * s;
    const float lo = p.cell_lo[c], hi = p.cell_hi[c];
    // Cells from half step 1 on: zeros take the base value (0) in every candidate.
    if (!(p.extra[c] > 0 && p.extra[c + 1] == -p.extra[c] && p.cell_lo[c + 1] == -hi && p.cell_hi[c + 1] == -lo && lo >= 0.5f &&
          2 * lo == std::floor(2 * lo) && 2 * lo < 31 && (std::isinf(hi) || (2 * hi == std::floor(2 * hi) && hi > lo && 2 * hi <= 31))))
      throw std::logic_error("bitmod: each scale's extras must be +-e with mirrored cells on multiples of 1/2 in [1/2, 16)");
    p.cell_half_steps[s][0] = static_cast<int>(2 * lo);
    p.cell_half_steps[s][1] = std::isinf(hi) ? 31 : static_cast<int>(2 * hi) - 1;
  }
  std::vector<double> base;  // the base grid: candidate 0's values but its extra
  for (double g : grids[0])
    if (g != p.extra[0]) base.push_back(g);
  for (size_t i = 0; i + 1 < base.size(); ++i) {
    const double mid = (base[i] + base[i + 1]) / 2;
    if (mid * 2 != std::floor(mid * 2)) throw std::logic_error("bitmod: base grid midpoints must be multiples of 1/2");
  }
  for (int j = 0; j < 32; ++j) {
    const double at = (2.0 * j + 1) / 4;
    double nearest = base.front();
    for (double g : base)
      if (std::fabs(g - at) < std::fabs(nearest - at)) nearest = g;
    p.base_by_half_step[j] = static_cast<float>(std::fabs(nearest));
    for (int i = 0; i < 2; ++i)
      p.extra_by_half_step[i][j] = j >= p.cell_half_steps[i][0] && j <= p.cell_half_steps[i][1] ? p.extra[2 * i] : p.base_by_half_step[j];
  }
  p.sign_indexed = true;
  for (int j = 15; j < 32; ++j)
    p.sign_indexed = p.sign_indexed && p.base_by_half_step[j] == p.base_by_half_step[15] &&
                     p.extra_by_half_step[0][j] == p.extra_by_half_step[0][15] && p.extra_by_half_step[1][j] == p.extra_by_half_step[1][15];
  for (int c = 0; c < 4; ++c) {
    // Candidate 2 s's extra is +e: x > 0 takes the extra table, x <= 0 the base one; 2 s + 1 the reverse.
    const float* positive = c % 2 == 0 ? p.extra_by_half_step[c / 2] : p.base_by_half_step;
    const float* other = c % 2 == 0 ? p.base_by_half_step : p.extra_by_half_step[c / 2];
    for (int i = 0; i < 32; ++i) p.by_sign_index[c][i] = i < 16 ? other[i] : positive[31 - i];
  }
  p.gmax[0] = std::max(-grids[0].front(), grids[0].back());
  p.gmax[1] = std::max(-grids[2].front(), grids[2].back());
  return p;
}

namespace {
void quantize_tail(const ScalarFormat& f, Rounding r, uint32_t seed, const float* in, float* out, size_t n,
                   uint64_t index0, float scale) {
  for (size_t k = 0; k < n; ++k) {
    const float v = scale == 1.0f ? in[k] : in[k] / scale;
    const float q = static_cast<float>(f.quantize(v, r, stochastic_bits(seed, index0 + k)));
    out[k] = scale == 1.0f ? q : q * scale;
  }
}
}  // namespace

void quantize_span_scaled(const ScalarFormat& f, const ElementPlan& p, Rounding r, const float* in, float* out,
                          size_t n, uint64_t index0, float scale) {
  size_t done = 0;
  while (done < n) {
    // Keep each SIMD call inside one 2^32 block of indices (the hash takes the low 32 bits per lane).
    const uint64_t idx = index0 + done;
    const size_t to_boundary = static_cast<size_t>(std::min<uint64_t>(n - done, (uint64_t{1} << 32) - (idx & 0xFFFFFFFFu)));
    size_t k = 0;
    if (p.kind != ElementPlan::kFallback) k = quantize_span_simd(p, in + done, out + done, to_boundary, idx, scale);
    quantize_tail(f, r, p.seed, in + done + k, out + done + k, to_boundary - k, idx + k, scale);
    done += to_boundary;
  }
}

void quantize_span(const ScalarFormat& f, const ElementPlan& p, Rounding r, const float* in, float* out, size_t n,
                   uint64_t index0) {
  quantize_span_scaled(f, p, r, in, out, n, index0, 1.0f);
}

}  // namespace detail

namespace {

Rounding rounding_for(const Format& f, const FakeQuantOptions& opt) {
  if (opt.rounding) return *opt.rounding;
  if (auto s = f.scalar()) return s->default_rounding();
  if (auto b = f.block()) return b->element().default_rounding();
  return Rounding::NearestEven;
}

std::vector<int64_t> shape_or_flat(std::span<const int64_t> shape, size_t n) {
  if (shape.empty()) return {static_cast<int64_t>(n)};
  return {shape.begin(), shape.end()};
}

void require_float32_exact(const ScalarFormat& s) {
  if (!s.float32_exact())
    throw FormatError(fmt::format("{} has values that are not float32; fake quantization to float32 would round twice",
                                  s.to_string()));
}

void check_sizes(std::span<const float> in, std::span<float> out) {
  if (in.size() != out.size())
    throw std::invalid_argument(fmt::format("fake_quant: input has {} elements, output {}", in.size(), out.size()));
}

void fake_quant_block(const BlockFormat& bf, std::span<const float> in, std::span<float> out,
                      std::span<const int64_t> shape, Rounding r, const FakeQuantOptions& opt) {
  const std::vector<int64_t> dims = shape_or_flat(shape, in.size());
  const AxisView view = axis_view(dims, bf.params().axis, in.size());
  if (view.inner != 1) {  // blocks not contiguous: the reference handles strided blocks
    bf.quantize_reference(in, out, dims, r, opt.seed);
    return;
  }
  float tensor = 1.0f;
  if (bf.params().tensor_scale) {
    // The largest finite |x| of the whole tensor, on every thread (on one, this read of the input
    // cost a third of NVFP4's time with 2 threads).
    float amax = 0;
    std::mutex combine;
    parallel_chunks(in.size(), opt.threads, 4096, [&](size_t b, size_t e) {
      bool finite = true;
      const float part = detail::abs_max(in.data() + b, e - b, &finite);
      const std::lock_guard<std::mutex> lock(combine);
      amax = std::max(amax, part);
    });
    tensor = bf.tensor_scale_for(amax);
  }
  const ScalarFormat& elem = bf.element();
  const detail::ElementPlan plan = detail::make_plan(elem, r, opt.seed);
  const detail::BlockScaler scaler(bf, tensor);
  const size_t bs = static_cast<size_t>(bf.params().block_size);
  const size_t rows = static_cast<size_t>(view.outer), len = static_cast<size_t>(view.length);
  const bool pow2 = bf.params().scale.is_power_of_two() && !bf.params().tensor_scale;
  const bool stream = in.size() * sizeof(float) >= detail::kStreamBytes;
  auto effective_scale = [&](bool finite, float amax) -> float {
    if (!finite) return std::numeric_limits<float>::quiet_NaN();
    return static_cast<float>(scaler.scale(amax) * tensor);
  };
  if (len % bs == 0 && plan.kind != detail::ElementPlan::kFallback) {
    // Every block is whole and contiguous: amax, scales and elements in SIMD over block ranges.
    parallel_chunks(rows * len / bs, opt.threads, 1, [&](size_t b0, size_t b1) {
      if (const auto mx = scaler.pow2_floor();
          mx && detail::quantize_mx_blocks_simd(plan, *mx, in.data() + b0 * bs, out.data() + b0 * bs, b1 - b0, bs, b0 * bs) == b1 - b0)
        return;
      if (const auto& nearest = scaler.nearest_minifloat();
          nearest && detail::quantize_nearest_scaled_blocks_simd(plan, *nearest, in.data() + b0 * bs, out.data() + b0 * bs,
                                                                 b1 - b0, bs, b0 * bs, stream) == b1 - b0)
        return;
      constexpr size_t kBatch = 1024;
      std::vector<float> amax(kBatch), scale(kBatch);
      std::vector<uint8_t> finite(kBatch);
      for (size_t b = b0; b < b1; b += kBatch) {
        const size_t nb = std::min(kBatch, b1 - b);
        const float* src = in.data() + b * bs;
        detail::block_abs_max(src, nb, bs, amax.data(), finite.data());
        for (size_t k = 0; k < nb; ++k) scale[k] = effective_scale(finite[k], amax[k]);
        const size_t done = detail::quantize_blocks_simd(plan, src, out.data() + b * bs, nb, bs, scale.data(), pow2, b * bs);
        for (size_t k = done; k < nb; ++k) {  // blocks the SIMD kernel leaves (sizes not a multiple of its width)
          const size_t begin = (b + k) * bs;
          if (std::isnan(scale[k])) std::fill_n(out.data() + begin, bs, std::numeric_limits<float>::quiet_NaN());
          else if (scale[k] == 0) std::fill_n(out.data() + begin, bs, 0.0f);
          else detail::quantize_span_scaled(elem, plan, r, in.data() + begin, out.data() + begin, bs, begin, scale[k]);
        }
      }
    });
    return;
  }
  const size_t blocks_per_row = (len + bs - 1) / bs;
  parallel_chunks(rows * blocks_per_row, opt.threads, 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      const size_t row = b / blocks_per_row, k0 = (b % blocks_per_row) * bs;
      const size_t begin = row * len + k0, n = std::min(bs, len - k0);
      bool finite = true;
      const float amax = detail::abs_max(in.data() + begin, n, &finite);
      const float eff = effective_scale(finite, amax);
      if (std::isnan(eff)) {
        std::fill_n(out.data() + begin, n, std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      if (eff == 0) {
        std::fill_n(out.data() + begin, n, 0.0f);
        continue;
      }
      detail::quantize_span_scaled(elem, plan, r, in.data() + begin, out.data() + begin, n, begin, eff);
    }
  });
}

// A BitMoD format's plan, built once per format: building it takes about a microsecond, which a
// small tensor (one token's keys) would otherwise pay on every call.
const detail::BitmodPlan& cached_bitmod_plan(const BitmodFormat& f) {
  static std::mutex lock;
  static std::vector<std::pair<BitmodParams, std::unique_ptr<const detail::BitmodPlan>>> plans;  // a few formats
  const std::lock_guard<std::mutex> guard(lock);
  for (const auto& [params, plan] : plans)
    if (params == f.params()) return *plan;
  plans.emplace_back(f.params(), std::make_unique<const detail::BitmodPlan>(detail::make_bitmod_plan(f)));
  return *plans.back().second;
}

}  // namespace

void fake_quant(const Format& f, std::span<const float> in, std::span<float> out, std::span<const int64_t> shape,
                const FakeQuantOptions& opt) {
  check_sizes(in, out);
  const Rounding r = rounding_for(f, opt);
  if (auto s = f.scalar()) {
    require_float32_exact(*s);
    const detail::ElementPlan plan = detail::make_plan(*s, r, opt.seed);
    parallel_chunks(in.size(), opt.threads, 64, [&](size_t b, size_t e) {
      detail::quantize_span(*s, plan, r, in.data() + b, out.data() + b, e - b, b);
    });
    return;
  }
  if (auto b = f.block()) {
    fake_quant_block(*b, in, out, shape, r, opt);
    return;
  }
  const BitmodFormat& bm = *f.bitmod();
  const size_t gs = static_cast<size_t>(bm.params().group_size);
  const detail::BitmodPlan& plan = cached_bitmod_plan(bm);
  parallel_chunks(in.size(), opt.threads, gs, [&](size_t b, size_t e) {
    const size_t done = detail::bitmod_groups_simd(plan, bm, in.data() + b, out.data() + b, (e - b) / gs) * gs;
    bm.quantize_reference(in.subspan(b + done, e - b - done), out.subspan(b + done, e - b - done));
  });
}

void fake_quant_reference(const Format& f, std::span<const float> in, std::span<float> out,
                          std::span<const int64_t> shape, const FakeQuantOptions& opt) {
  check_sizes(in, out);
  const Rounding r = rounding_for(f, opt);
  if (auto s = f.scalar()) {
    require_float32_exact(*s);
    for (size_t i = 0; i < in.size(); ++i)
      out[i] = static_cast<float>(s->quantize(in[i], r, stochastic_bits(opt.seed, i)));
    return;
  }
  if (auto b = f.block()) {
    b->quantize_reference(in, out, shape_or_flat(shape, in.size()), r, opt.seed);
    return;
  }
  f.bitmod()->quantize_reference(in, out);
}

std::string simd_target() {
  const int64_t t = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(t & -t);  // Highway numbers better targets with lower bits
}

std::vector<std::string> available_simd_targets() {
  std::vector<std::string> names;
  const int64_t compiled = HWY_TARGETS, supported = hwy::SupportedTargets();
  for (int64_t bit = 1; bit != 0 && bit <= compiled; bit <<= 1)
    if ((compiled & bit) && ((supported & bit) || bit == HWY_SCALAR || bit == HWY_EMU128)) names.push_back(hwy::TargetName(bit));
  return names;
}

bool restrict_simd_target(std::string_view name) {
  if (name == "all") {
    hwy::SetSupportedTargetsForTest(0);
    return true;
  }
  for (int64_t bit = 1; bit != 0 && bit <= HWY_TARGETS; bit <<= 1) {
    if (!(HWY_TARGETS & bit) || name != hwy::TargetName(bit)) continue;
    // This target and every weaker one (Highway numbers weaker targets with higher bits).
    hwy::SetSupportedTargetsForTest(HWY_TARGETS & ~(bit - 1));
    return true;
  }
  return false;
}

}  // namespace lowbit
