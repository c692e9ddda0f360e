#pragma once
// Block scales, fast: the same values as BlockFormat::block_scale (tests hold them equal), from a
// power-of-two shortcut (OCP MX floor rule) or a table of the scale grid times the denominator.
#include <cstdint>
#include <optional>
#include <vector>

#include "lowbit/format/block_format.hpp"
#include "src/format/element_plan.hpp"

namespace lowbit::detail {

// A scale format's values >= 0 ascending, whether each one's significand is odd, and whether the
// positive codes 0, 1, 2, ... give them in order (then a value's index is its code).
struct ScaleGrid {
  std::vector<double> values;
  std::vector<bool> odd;
  bool code_indexed = false;
};

class BlockScaler {
 public:
  BlockScaler(const BlockFormat& f, double tensor);
  // Scale of a block with finite largest magnitude amax (NaN for a NaN block).
  double scale(double amax) const;
  // The OCP MX floor rule's parameters when this scaler is that shortcut.
  const std::optional<Pow2FloorScale>& pow2_floor() const { return mx_; }
  // The nearest rule on a minifloat grid with zero and subnormals, when exact in double lanes.
  const std::optional<NearestMinifloatScale>& nearest_minifloat() const { return nearest_; }

 private:
  const BlockFormat& f_;
  double tensor_;
  std::optional<Pow2FloorScale> mx_;  // OCP MX floor rule on an E8M0 / pow2 scale, no tensor scale
  std::optional<NearestMinifloatScale> nearest_;
  // Table: the scale format's grid (cached per format) and its values' products with the denominator.
  const ScaleGrid* grid_ = nullptr;
  std::vector<double> products_;
  size_t padded_ = 1;
  int mantissa_bits_ = 0, bias_ = 0;
  long double denom_ = 1;
  double inv_denom_ = 1;
};

}  // namespace lowbit::detail
