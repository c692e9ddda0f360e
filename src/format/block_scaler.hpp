#pragma once
// Block scales, fast: the same values as BlockFormat::block_scale (tests hold them equal), from a
// power-of-two shortcut (OCP MX floor rule) or a table of the scale grid times the denominator.
#include <cstdint>
#include <optional>
#include <vector>

#include "lowbit/format/block_format.hpp"
#include "src/format/element_plan.hpp"

namespace lowbit::detail {

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
  // Table: grid values g_i ascending and their products with the denominator.
  std::vector<double> grid_;
  std::vector<double> products_;
  size_t padded_ = 1;
  bool code_indexed_ = false;
  int mantissa_bits_ = 0, bias_ = 0;
  std::vector<bool> odd_;
  long double denom_ = 1;
  double inv_denom_ = 1;
};

}  // namespace lowbit::detail
