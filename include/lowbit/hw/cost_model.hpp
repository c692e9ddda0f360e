#pragma once
// The analytical FPGA cost model of a MAC unit (AMD UltraScale+, as Yosys synthesizes it).
// Each resource is a linear combination of a few physical quantities of the unit:
//   mult_area_u / mult_area_s   A x B of the significand multiplier in LUTs (unsigned or
//                               sign-magnitude / two's complement; 0 when it goes to a DSP48E2)
//   mult_tree_u / mult_tree_s   A x B x min(A, B): the adder tree that sums its partial products
//   negate_bits    bits of integer operands turned into sign and magnitude (beside a minifloat)
//   decode_bits    exponent + mantissa bits of minifloat operands (hidden bit, specials, shift)
//   shifter        (product bits + largest shift) x min(product bits, largest shift + 1): the
//                  alignment shifter, each output bit a mux of that many product bits
//   acc_bits       the accumulator register and its adder
//   one            a constant
// The coefficients are fitted (non-negative least squares on relative error) to the Yosys sweep
// data/hw/yosys_xcup.csv by `lowbit cost fit` and kept in data/hw/cost_model_xcup.json, which is
// compiled in. The DSP count is a rule, not a fit: Yosys 0.23's mul2dsp maps a multiplier whose
// operands have at least 2 bits and whose product has at least 9 bits onto 27 x 18 signed DSP48E2s.
#include <map>
#include <string>
#include <vector>

#include "lowbit/hw/mac_config.hpp"

namespace lowbit::hw {

struct MacFeatures {
  double mult_area = 0, mult_tree = 0, negate_bits = 0, decode_bits = 0, shifter = 0, acc_bits = 0;
  bool mult_signed = false;  // a two's complement multiplier (integer operands only)
  int dsp_count = 0;  // DSP48E2s when DSP mapping is on
  // Feature vector in the order of feature_names(), for one variant (with or without DSP).
  std::vector<double> vector(bool use_dsp) const;
};

const std::vector<std::string>& feature_names();
MacFeatures mac_features(const MacConfig& c);
// DSP48E2s the multiplier of significands of these widths takes (0: it stays in LUTs).
int dsp_blocks(int a_bits, int b_bits, int product_bits);

struct MacCost {
  double lut = 0, ff = 0, carry = 0, dsp = 0;
};

// The fitted resources: "lut", "ff", "carry", each with a DSP and a no-DSP coefficient vector.
class CostModel {
 public:
  static const std::vector<std::string>& resources();  // lut, ff, carry
  static const CostModel& builtin();                   // data/hw/cost_model_xcup.json as compiled in
  static CostModel load(const std::string& path);
  static CostModel from_json(const std::string& text, const std::string& origin);
  std::string to_json() const;

  MacCost predict(const MacConfig& c, bool use_dsp) const;
  MacCost predict(const MacFeatures& f, bool use_dsp) const;
  // Coefficients of one resource and variant, in feature_names() order.
  const std::vector<double>& coefficients(const std::string& resource, bool use_dsp) const;
  void set_coefficients(const std::string& resource, bool use_dsp, std::vector<double> c);
  std::string target = "xcup";
  std::string yosys;  // the Yosys version the fit's data came from

 private:
  std::map<std::string, std::vector<double>> coefficients_;  // key "lut/dsp", "lut/nodsp", ...
};

}  // namespace lowbit::hw
