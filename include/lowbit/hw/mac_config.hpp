#pragma once
// A multiply-accumulate unit for one (weight format, activation format) pair and a dot-product
// length n: how each operand decodes into hardware fields, and the exact accumulator width.
//
// Every scalar format of 2 to 16 bits decodes to value = significand * 2^(shift + lsb_exponent):
//   integer / fixed point: the code itself is the significand (two's complement or unsigned),
//     shift = 0, lsb_exponent = 0 (integer) or I - W (fixed point: the binary point is tracked);
//   minifloat: sign bit, significand = hidden bit . mantissa (subnormals: hidden 0, same binade
//     as exponent field 1), shift = biased exponent - 1 (or the field itself without a zero), and
//     lsb_exponent = 1 - bias - M.
// A narrower register than exact keeps the top bits: low product bits are dropped (see
// AccumulatorPlan::sign_magnitude for the rounding).
// Special codes (inf / NaN of ieee, fn and fnuz) decode to a zero significand: they add nothing to
// the sum. The fnuz NaN code already has a zero significand, so fnuz costs no logic; ieee and fn
// cost a comparator on the exponent (and mantissa) field. Quantizers never produce them.
#include <cstdint>
#include <optional>
#include <string>

#include "lowbit/format/scalar_format.hpp"
#include "lowbit/hw/wide_int.hpp"

namespace lowbit::hw {

struct OperandDecode {
  int code_bits = 0;
  bool is_minifloat = false;
  // Integer / fixed: the significand is the code, signed or unsigned, `code_bits` wide.
  // Minifloat: an unsigned magnitude of `significand_bits` (M + 1) and a separate sign bit (if any).
  bool significand_signed = false;
  bool has_sign_bit = false;  // minifloat sign bit
  int significand_bits = 0;
  int magnitude_bits = 0;  // unsigned magnitude in a sign-magnitude MAC: M + 1, or the code width
  // Bits the largest finite magnitude needs (M when every normal binade holds specials, as in
  // IEEE-like e1mM): what synthesis is left with once constant bits are optimized away.
  int effective_magnitude_bits = 0;
  int max_shift = 0;      // largest exponent shift of a finite non-zero code
  int shift_bits = 0;     // width of the shift field (0 for integers)
  int lsb_exponent = 0;   // value of significand 1 at shift 0 is 2^lsb_exponent
  // Operand width in the formula: integer / fixed r, minifloat 2^E + M - 1.
  int formula_bits = 0;
};

// Decode plan of one operand; throws std::invalid_argument for formats a MAC cannot take
// (binary, block-scaled, BitMoD, more than 16 bits).
OperandDecode operand_decode(const ScalarFormat& f);

struct MacConfig {
  ScalarFormat weight;
  ScalarFormat activation;
  uint64_t n = 1;                   // dot-product length
  std::optional<int> acc_bits;      // narrower (drops low bits) or wider than exact; default exact

  // "int4 x e4m3:specials=fn n=64" (plus " acc=W" when set).
  std::string to_string() const;
  // File- and Verilog-safe identifier: "int4_x_e4m3_fn_n64".
  std::string identifier() const;
};

// Parses "--w" / "--a" specs; throws FormatError or std::invalid_argument with a clear message.
MacConfig make_mac_config(const std::string& weight, const std::string& activation, uint64_t n,
                          std::optional<int> acc_bits = std::nullopt);

struct AccumulatorPlan {
  OperandDecode weight, activation;
  WideInt min_product, max_product;  // over finite codes, in units of 2^(lsb_w + lsb_a)
  int product_lsb_exponent = 0;      // lsb_w + lsb_a
  int exact_bits = 0;      // smallest register holding every sum of n products exactly
  bool exact_signed = true;  // false when no product is negative (unsigned register)
  int formula_bits = 0;    // issue formula: f_w + f_a + ceil(log2 n) + 1
  int bits = 0;            // the register built: exact_bits or the user's acc_bits
  int dropped_lsbs = 0;    // low product bits dropped when the register is narrower than exact
  bool is_signed = true;   // register read as two's complement
  // With a minifloat operand the product is formed in sign-magnitude (integer operands become
  // sign and magnitude) and a narrower register truncates each product's magnitude (toward zero);
  // integers and fixed point alone form a two's complement product and truncate by floor.
  bool sign_magnitude = false;
  int lsb_exponent = 0;    // weight of the register's bit 0: 2^lsb_exponent
};

AccumulatorPlan plan_accumulator(const MacConfig& c);

int ceil_log2(uint64_t n);

}  // namespace lowbit::hw
