#include "src/format/block_scaler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace lowbit::detail {
namespace {
// Significant bits of a finite double (53 at most): its significand shifted until it is odd.
int significant_bits(double v) {
  if (v == 0 || !std::isfinite(v)) return 0;
  int exp = 0;
  uint64_t m = static_cast<uint64_t>(std::ldexp(std::frexp(std::fabs(v), &exp), 53));
  int bits = 53;
  while ((m & 1u) == 0) {
    m >>= 1;
    --bits;
  }
  return bits;
}

// Listing a scale format's codes costs microseconds (NVFP4's E4M3: about 4 us), more than
// quantizing a small tensor (one token's keys), so each format's grid is built once.
const ScaleGrid& scale_grid(const ScalarFormat& g) {
  static std::mutex lock;
  static std::unordered_map<std::string, std::unique_ptr<const ScaleGrid>> grids;  // by canonical spec
  std::string key = g.to_string();
  const std::lock_guard<std::mutex> guard(lock);
  if (auto it = grids.find(key); it != grids.end()) return *it->second;
  auto grid = std::make_unique<ScaleGrid>();
  std::vector<double>& values = grid->values;
  for (uint64_t c = 0; c < g.code_count(); ++c) {
    const double v = g.decode(static_cast<uint32_t>(c));
    if (std::isfinite(v) && v >= 0 && !std::signbit(v)) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (double v : values) grid->odd.push_back(g.significand_odd(v));
  // When the positive codes 0, 1, 2, ... of the scale format give the grid in order, the grid index
  // of amax / denom rounded down is its code, found from the double's bits (then corrected by one).
  grid->code_indexed = g.kind() == ScalarKind::Minifloat && g.minifloat_params().subnormals && g.minifloat_params().has_zero;
  for (size_t c = 0; grid->code_indexed && c < values.size(); ++c) grid->code_indexed = g.decode(static_cast<uint32_t>(c)) == values[c];
  return *grids.emplace(std::move(key), std::move(grid)).first->second;
}

}  // namespace

BlockScaler::BlockScaler(const BlockFormat& f, double tensor) : f_(f), tensor_(tensor) {
  const BlockParams& p = f.params();
  const ScaleSpec& s = p.scale;
  const int elem_emax = std::ilogb(p.element.max());
  if (p.rule == ScaleRule::Floor && tensor == 1.0 && s.is_power_of_two()) {
    if (s.kind == ScaleKind::Pow2) mx_ = Pow2FloorScale{elem_emax, -126, 127, false};
    else mx_ = Pow2FloorScale{elem_emax, std::ilogb(s.format->min_subnormal()), std::ilogb(s.format->max()), s.format->has_nan()};
    return;
  }
  if (s.kind != ScaleKind::Format || s.format->bits() > 12) return;  // fp32 scales: the exact slow path
  const ScalarFormat& g = *s.format;
  if (p.rule == ScaleRule::Nearest && g.kind() == ScalarKind::Minifloat && g.minifloat_params().subnormals &&
      g.minifloat_params().has_zero && g.float32_exact()) {
    // A double quotient amax / denom lies on the same side of every grid midpoint as the exact
    // ratio when denom * midpoint has <= 50 significant bits (a 24-bit amax differs from it by at
    // least 2^-50 relative, the quotient's error is 2^-53): then rounding it is exact.
    const double denom = p.element.max() * tensor;  // exact: <= 24 + 24 bits
    const int midpoint_bits = g.minifloat_params().mantissa_bits + 2;
    if (significant_bits(p.element.max()) + significant_bits(tensor) + midpoint_bits <= 50 && denom > 0 &&
        std::isfinite(denom))
      nearest_ = NearestMinifloatScale{denom, tensor, g.minifloat_params().mantissa_bits, 1 - g.minifloat_params().bias,
                                       g.min_normal(), g.max()};
  }
  grid_ = &scale_grid(g);
  denom_ = p.rule == ScaleRule::Floor ? std::ldexp(static_cast<long double>(tensor), elem_emax)
                                      : static_cast<long double>(p.element.max()) * tensor;
  // Products of a <= 12-bit scale (<= 12 significant bits) and the denominator (<= 16 + 24 bits)
  // are exact doubles; so are the differences the nearest rule compares.
  for (double v : grid_->values) products_.push_back(static_cast<double>(static_cast<long double>(v) * denom_));
  inv_denom_ = 1.0 / static_cast<double>(denom_);
  if (grid_->code_indexed) {
    mantissa_bits_ = g.minifloat_params().mantissa_bits;
    bias_ = g.minifloat_params().bias;
  }
  padded_ = 1;
  while (padded_ < products_.size()) padded_ *= 2;
  products_.resize(padded_ + 1, std::numeric_limits<double>::infinity());
}

double BlockScaler::scale(double amax) const {
  if (mx_) {
    const int e = mx_->exponent(static_cast<float>(amax));  // amax is a float32
    return e == Pow2FloorScale::kNaN ? std::numeric_limits<double>::quiet_NaN() : std::ldexp(1.0, e);
  }
  if (!grid_) return f_.block_scale(amax, tensor_);
  const BlockParams& p = f_.params();
  if (p.rule == ScaleRule::Floor && p.scale.is_power_of_two() && p.scale.format->has_nan() && amax > 0 &&
      std::ilogb(amax / static_cast<double>(denom_)) > std::ilogb(p.scale.max()))
    return std::numeric_limits<double>::quiet_NaN();
  const double target = amax;
  // i: the last grid value whose product is <= amax (or the first one when none is); a
  // branchless binary search over the products padded with +inf to a power of two.
  if (target < products_[0]) return grid_->values.front();  // below the smallest (a grid without zero)
  size_t i = 0;
  if (grid_->code_indexed) {
    const double q = target * inv_denom_;  // within a few ulps of the exact ratio; corrected below
    uint64_t bits;
    std::memcpy(&bits, &q, 8);
    const int e = static_cast<int>(bits >> 52) - 1023;
    const int emin = 1 - bias_;
    int64_t code;
    if (q == 0) code = 0;
    else if (e >= emin) code = (static_cast<int64_t>(e + bias_) << mantissa_bits_) | static_cast<int64_t>((bits >> (52 - mantissa_bits_)) & ((uint64_t{1} << mantissa_bits_) - 1));
    else code = static_cast<int64_t>(std::ldexp(q, mantissa_bits_ - emin));
    i = static_cast<size_t>(std::clamp<int64_t>(code, 0, static_cast<int64_t>(grid_->values.size()) - 1));
    while (i > 0 && products_[i] > target) --i;
    while (i + 1 < grid_->values.size() && products_[i + 1] <= target) ++i;
  } else {
    for (size_t step = padded_ / 2; step > 0; step /= 2) i = products_[i + step] <= target ? i + step : i;
  }
  const std::vector<double>& grid = grid_->values;
  if (products_[i] == target || i + 1 == grid.size()) return grid[i];
  switch (p.rule) {
    case ScaleRule::Floor: return grid[i];
    case ScaleRule::Ceil: return grid[i + 1];
    case ScaleRule::Nearest: {
      const double below = target - products_[i], above = products_[i + 1] - target;
      if (below != above) return below < above ? grid[i] : grid[i + 1];
      return grid_->odd[i] ? grid[i + 1] : grid[i];
    }
  }
  return grid[i];
}

}  // namespace lowbit::detail
