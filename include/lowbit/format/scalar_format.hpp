#pragma once
// Scalar number formats: integers, binary, minifloats (ExMy) and fixed point (ap_fixed semantics).
// This is the scalar reference: plain double arithmetic, every step exact. Fast kernels are
// tested bit for bit against it.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "lowbit/format/rounding.hpp"

namespace lowbit {

// Thrown for an invalid format specification; the message is one line saying what is wrong.
struct FormatError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

enum class ScalarKind : uint8_t { Integer, Binary, Minifloat, Fixed };

// Special values of a minifloat.
//   Ieee: the all-ones exponent holds +-inf (mantissa 0) and NaN (otherwise).
//   Fn:   finite, NaN only at the all-ones code (OCP E4M3).
//   Fnuz: finite, NaN at the negative-zero code, no -0 (needs a sign bit).
//   None: every code is a finite number (Brevitas; OCP FP6/FP4).
enum class Specials : uint8_t { Ieee, Fn, Fnuz, None };

// ap_fixed overflow modes.
enum class FixedOverflow : uint8_t { Sat, SatZero, SatSym, Wrap, WrapSm };

struct IntegerParams {
  int bits = 8;
  bool is_signed = true;
  bool narrow = false;  // symmetric range: no -2^(bits-1)
  bool operator==(const IntegerParams&) const = default;
};

struct MinifloatParams {
  int exponent_bits = 4;
  int mantissa_bits = 3;
  bool has_sign = true;
  int bias = 7;
  Specials specials = Specials::Ieee;
  bool subnormals = true;  // false: codes with a zero exponent field decode to zero (flush)
  bool has_zero = true;    // false: the zero-exponent binade is normal and there is no zero (E8M0)
  bool saturate = true;    // false: overflow goes to inf (ieee) or NaN (fn, fnuz)
  bool operator==(const MinifloatParams&) const = default;
  static int default_bias(int exponent_bits) { return (1 << (exponent_bits - 1)) - 1; }
};

struct FixedParams {
  int width = 8;         // W: total bits
  int int_bits = 0;      // I: integer bits, sign included for signed; may be < 0 or > W
  bool is_signed = true; // ap_fixed vs ap_ufixed
  Rounding quantization = Rounding::Down;  // AP_TRN by default, as ap_fixed
  FixedOverflow overflow = FixedOverflow::Wrap;
  int saturation_bits = 0;  // N
  bool operator==(const FixedParams&) const = default;
};

class ScalarFormat {
 public:
  static ScalarFormat integer(IntegerParams p);
  static ScalarFormat binary();
  static ScalarFormat minifloat(MinifloatParams p);
  static ScalarFormat fixed(FixedParams p);

  ScalarKind kind() const { return kind_; }
  const IntegerParams& integer_params() const { return int_; }
  const MinifloatParams& minifloat_params() const { return mf_; }
  const FixedParams& fixed_params() const { return fx_; }

  int bits() const { return bits_; }
  uint64_t code_count() const { return uint64_t{1} << bits_; }

  // Value of a code (NaN / inf for special codes). Codes must be < code_count().
  double decode(uint32_t code) const;
  // Nearest representable value under `r` (fixed point ignores `r` unless given explicitly
  // through quantize_with; its own quantization mode is its default rounding).
  double quantize(double x, Rounding r, uint32_t random24 = 0) const;
  double quantize(double x) const { return quantize(x, default_rounding()); }
  // Bit code of quantize(x, r); quantize(x) == decode(encode(x)) always. Formats without a NaN
  // code map NaN to code 0.
  uint32_t encode(double x, Rounding r, uint32_t random24 = 0) const;
  uint32_t encode(double x) const { return encode(x, default_rounding()); }
  // Code of a representable value (the value must be exactly representable; NaN -> NaN code).
  uint32_t code_of(double value) const;

  Rounding default_rounding() const;
  // Whether the significand of representable value v ends in an odd digit (the tie rule of
  // NearestEven). With no mantissa bits, a normal's significand is the single digit 1: odd.
  bool significand_odd(double v) const;

  double max() const { return max_; }          // largest finite value
  double lowest() const { return lowest_; }    // most negative finite value (or smallest, if unsigned)
  double min_normal() const { return min_normal_; }      // smallest positive normal (minifloat) / step
  double min_subnormal() const { return min_positive_; } // smallest positive value
  uint64_t finite_values() const { return finite_values_; }  // distinct finite values (+0 and -0 once)
  bool has_nan() const { return has_nan_; }
  bool has_inf() const { return has_inf_; }
  bool has_negative_zero() const;
  // Dynamic range: log2(max / smallest positive value).
  double dynamic_range_binades() const;
  // Every value is exactly a float32 (fake quantization of float tensors needs this).
  bool float32_exact() const { return float32_exact_; }

  std::string to_string() const;  // canonical spec
  bool operator==(const ScalarFormat& o) const;

 private:
  ScalarFormat() = default;
  void compute_properties();
  double quantize_integer(double x, Rounding r, uint32_t random24) const;
  double quantize_binary(double x, Rounding r, uint32_t random24) const;
  double quantize_minifloat(double x, Rounding r, uint32_t random24) const;
  double quantize_fixed(double x, Rounding r, uint32_t random24) const;
  double minifloat_overflow(MagnitudeRounding m, bool infinite_input) const;
  double fixed_out_of_range(double v) const;

  ScalarKind kind_ = ScalarKind::Integer;
  IntegerParams int_{};
  MinifloatParams mf_{};
  FixedParams fx_{};
  int bits_ = 0;
  double max_ = 0, lowest_ = 0, min_normal_ = 0, min_positive_ = 0;
  uint64_t finite_values_ = 0;
  bool has_nan_ = false, has_inf_ = false, float32_exact_ = true;
};

// The unsigned format of the same width: a signed minifloat's sign bit becomes one more mantissa
// bit (e4m3 -> ue4m4, same exponent width, bias and specials), a signed integer's one more value
// bit (int8, int8n -> uint8). nullopt for unsigned formats, specials=fnuz, binary and fixed point.
std::optional<ScalarFormat> unsigned_of_same_width(const ScalarFormat& f);

}  // namespace lowbit
