#pragma once
// Oracles written from the format specifications, independent of ScalarFormat's arithmetic:
// decode builds each value from its bit fields; quantize enumerates every code, sorts the finite
// values, finds the two neighbours of x and applies the rounding rule and the overflow policy as
// the specifications word them (IEEE 754 / OCP / ap_fixed in UG1399 and ap_fixed_base.h).
#include <cstdint>
#include <vector>

#include "lowbit/format/scalar_format.hpp"

namespace lowbit::test {

class Oracle {
 public:
  explicit Oracle(const ScalarFormat& f);  // reads only f's parameters
  double decode(uint32_t code) const;
  double quantize(double x, Rounding r, uint32_t random24 = 0) const;
  // Every finite value, sorted, +0 and -0 merged.
  const std::vector<double>& values() const { return values_; }
  double max() const { return values_.back(); }
  double lowest() const { return values_.front(); }
  bool has_nan() const { return has_nan_; }

 private:
  double quantize_minifloat(double x, Rounding r, uint32_t random24) const;
  double quantize_uniform(double x, Rounding r, uint32_t random24) const;
  double fixed_overflow(double v) const;
  // Picks between neighbours lo < x < hi on the value line.
  double pick(double x, double lo, double hi, Rounding r, uint32_t random24) const;
  bool significand_odd(double v) const;

  ScalarFormat f_;
  std::vector<double> values_;
  std::vector<uint32_t> codes_;  // code of each value (the first code met)
  bool has_nan_ = false, has_neg_zero_ = false;
};

// Inputs that probe a format: every value, every midpoint, one float32 ulp either side of each,
// zeros, infinities, NaN and values beyond the range.
std::vector<double> probe_inputs(const std::vector<double>& values);

}  // namespace lowbit::test
