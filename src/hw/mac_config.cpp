#include "lowbit/hw/mac_config.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/format.hpp"
#include "lowbit/hw/emulation.hpp"

namespace lowbit::hw {

int ceil_log2(uint64_t n) {
  int k = 0;
  while ((uint64_t{1} << k) < n) ++k;
  return k;
}

namespace {

int bits_for(uint64_t max_value) {
  int k = 0;
  while (k < 63 && (uint64_t{1} << k) <= max_value) ++k;
  return k;
}

bool is_special(Specials s, uint32_t exponent_field, uint32_t mantissa_field, int E, int M) {
  const uint32_t all_e = (1u << E) - 1, all_m = (1u << M) - 1;
  if (s == Specials::Ieee) return exponent_field == all_e;
  if (s == Specials::Fn) return exponent_field == all_e && mantissa_field == all_m;
  return false;  // fnuz's NaN is the negative-zero code: zero significand already
}

OperandDecode minifloat_decode(const ScalarFormat& f) {
  const MinifloatParams& p = f.minifloat_params();
  OperandDecode d;
  d.code_bits = f.bits();
  d.is_minifloat = true;
  d.has_sign_bit = p.has_sign;
  d.significand_bits = p.mantissa_bits + 1;
  d.magnitude_bits = d.significand_bits;
  const int E = p.exponent_bits, M = p.mantissa_bits;
  d.lsb_exponent = (p.has_zero ? 1 : 0) - p.bias - M;
  int max_shift = 0;
  bool finite_normal = false;
  for (uint32_t ef = 0; ef < (1u << E); ++ef) {
    bool any_finite = false;
    for (uint32_t mf = 0; mf < (1u << M); ++mf) any_finite |= !is_special(p.specials, ef, mf, E, M);
    const int shift = p.has_zero ? (ef == 0 ? 0 : static_cast<int>(ef) - 1) : static_cast<int>(ef);
    if (any_finite && !(ef == 0 && p.has_zero && !p.subnormals)) max_shift = std::max(max_shift, shift);
    if (any_finite && (ef != 0 || !p.has_zero)) finite_normal = true;
  }
  d.effective_magnitude_bits = finite_normal ? M + 1 : std::max(M, 1);
  d.max_shift = max_shift;
  d.shift_bits = bits_for(static_cast<uint64_t>(max_shift));
  d.formula_bits = (1 << E) + M - 1;
  return d;
}

}  // namespace

OperandDecode operand_decode(const ScalarFormat& f) {
  if (f.bits() > 16) throw std::invalid_argument(fmt::format("{}: a MAC takes formats of at most 16 bits", f.to_string()));
  OperandDecode d;
  d.code_bits = f.bits();
  switch (f.kind()) {
    case ScalarKind::Binary:
      throw std::invalid_argument("binary (+-1) operands are XNOR-popcount hardware, not a MAC; use int2n or int2");
    case ScalarKind::Integer:
      d.significand_signed = f.integer_params().is_signed;
      d.significand_bits = d.magnitude_bits = d.effective_magnitude_bits = f.bits();
      d.formula_bits = f.bits();
      return d;
    case ScalarKind::Fixed:
      d.significand_signed = f.fixed_params().is_signed;
      d.significand_bits = d.magnitude_bits = d.effective_magnitude_bits = f.bits();
      d.lsb_exponent = f.fixed_params().int_bits - f.fixed_params().width;
      d.formula_bits = f.bits();
      return d;
    case ScalarKind::Minifloat: return minifloat_decode(f);
  }
  throw std::invalid_argument("unknown scalar kind");
}

std::string MacConfig::to_string() const {
  std::string s = fmt::format("{} x {} n={}", weight.to_string(), activation.to_string(), n);
  if (acc_bits) s += fmt::format(" acc={}", *acc_bits);
  return s;
}

std::string MacConfig::identifier() const {
  auto clean = [](const std::string& spec) {
    std::string out;
    for (char c : spec) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out.push_back(c);
      else if (c == '-') out += "m";
      else if (!out.empty() && out.back() != '_') out.push_back('_');
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
  };
  std::string s = fmt::format("{}_x_{}_n{}", clean(weight.to_string()), clean(activation.to_string()), n);
  if (acc_bits) s += fmt::format("_acc{}", *acc_bits);
  return s;
}

MacConfig make_mac_config(const std::string& weight, const std::string& activation, uint64_t n,
                          std::optional<int> acc_bits) {
  auto scalar = [](const std::string& spec, const char* role) {
    const Format f = Format::parse(spec);
    if (!f.scalar())
      throw std::invalid_argument(fmt::format("{} format '{}' is not a scalar format; a MAC takes integer, minifloat or fixed point", role, spec));
    return *f.scalar();
  };
  if (n < 1 || n > (uint64_t{1} << 40)) throw std::invalid_argument(fmt::format("dot-product length n must be 1..2^40, got {}", n));
  if (acc_bits && (*acc_bits < 2 || *acc_bits > 960))
    throw std::invalid_argument(fmt::format("accumulator width must be 2..960 bits, got {}", *acc_bits));
  MacConfig c{scalar(weight, "weight"), scalar(activation, "activation"), n, acc_bits};
  operand_decode(c.weight);
  operand_decode(c.activation);
  return c;
}

namespace {

struct Range {
  WideInt lo, hi;
};

WideInt truncate(const WideInt& p, int dropped, bool toward_zero) {
  if (toward_zero && p.negative()) return -((-p).shifted_right(dropped));
  return p.shifted_right(dropped);
}

// Register width for sums in [n*lo, n*hi]; unsigned when nothing is negative.
int width_of(const Range& r, bool& is_signed) {
  is_signed = r.lo.negative();
  if (!is_signed) return r.hi.unsigned_width();
  return std::max(r.lo.signed_width(), r.hi.signed_width());
}

}  // namespace

AccumulatorPlan plan_accumulator(const MacConfig& c) {
  AccumulatorPlan p;
  p.weight = operand_decode(c.weight);
  p.activation = operand_decode(c.activation);
  p.product_lsb_exponent = p.weight.lsb_exponent + p.activation.lsb_exponent;
  const ProductTable table(c.weight, c.activation, p.product_lsb_exponent);
  p.min_product = table.min_product();
  p.max_product = table.max_product();
  p.exact_bits = width_of({p.min_product.times(c.n), p.max_product.times(c.n)}, p.exact_signed);
  p.formula_bits = p.weight.formula_bits + p.activation.formula_bits + ceil_log2(c.n) + 1;
  p.is_signed = p.exact_signed;
  p.bits = p.exact_bits;
  p.sign_magnitude = p.weight.is_minifloat || p.activation.is_minifloat;
  if (c.acc_bits && *c.acc_bits < p.exact_bits) {
    // Drop the fewest low bits such that n products, each truncated to the register's lsb, still fit.
    int dropped = 0;
    bool sign = p.exact_signed;
    auto width_after = [&](int d) {
      return width_of({truncate(p.min_product, d, p.sign_magnitude).times(c.n), truncate(p.max_product, d, p.sign_magnitude).times(c.n)},
                      sign);
    };
    while (dropped <= p.exact_bits && width_after(dropped) > *c.acc_bits) ++dropped;
    if (width_after(dropped) > *c.acc_bits)
      throw std::invalid_argument(fmt::format("{}: a {}-bit accumulator cannot hold {} products even with every low bit dropped; "
                                              "it needs at least {} bits", c.to_string(), *c.acc_bits, c.n, width_after(dropped)));
    p.dropped_lsbs = dropped;
    p.is_signed = sign;
  }
  if (c.acc_bits) p.bits = *c.acc_bits;
  p.lsb_exponent = p.product_lsb_exponent + p.dropped_lsbs;
  return p;
}

}  // namespace lowbit::hw
