#pragma once
// The C++ reference of a MAC unit, built from lowbit's format decode only (not from the hardware
// decode plan): each code's value, each product exact, summed in a wide integer accumulator.
#include <cstdint>
#include <vector>

#include "lowbit/format/scalar_format.hpp"
#include "lowbit/hw/mac_config.hpp"
#include "lowbit/hw/wide_int.hpp"

namespace lowbit::hw {

// Exact products of every (weight code, activation code) pair in units of 2^lsb_exponent.
// Non-finite codes (inf, NaN) contribute zero, as in the hardware.
class ProductTable {
 public:
  ProductTable(const ScalarFormat& weight, const ScalarFormat& activation, int lsb_exponent);
  WideInt product(uint32_t weight_code, uint32_t activation_code) const;
  WideInt min_product() const;
  WideInt max_product() const;

 private:
  // A finite value as odd_significand * 2^exponent (exponent relative to the operand's lsb).
  struct Value {
    int64_t significand = 0;
    int exponent = 0;
    bool finite = false;  // non-finite codes count as zero but are not values of the format
  };
  static std::vector<Value> values_of(const ScalarFormat& f, int lsb_exponent);
  static WideInt times(const Value& x, const Value& y);
  std::vector<Value> weight_, activation_;
  int weight_lsb_ = 0, activation_lsb_ = 0;
};

// acc <= acc + product / 2^dropped (floor, or toward zero for sign-magnitude products; see
// AccumulatorPlan), reset to zero; the register holds `bits` bits.
class MacEmulator {
 public:
  explicit MacEmulator(const MacConfig& c);
  void reset() { acc_ = WideInt(0); }
  void step(uint32_t weight_code, uint32_t activation_code);
  const WideInt& accumulator() const { return acc_; }
  const AccumulatorPlan& plan() const { return plan_; }
  // The accumulator's value: accumulator() * 2^plan().lsb_exponent.
  double value() const;

 private:
  AccumulatorPlan plan_;
  ProductTable table_;
  WideInt acc_{0};
};

}  // namespace lowbit::hw
