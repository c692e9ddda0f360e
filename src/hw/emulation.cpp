#include "lowbit/hw/emulation.hpp"

#include <cmath>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::hw {

std::vector<ProductTable::Value> ProductTable::values_of(const ScalarFormat& f, int lsb_exponent) {
  std::vector<Value> out(f.code_count());
  for (uint64_t c = 0; c < f.code_count(); ++c) {
    const double v = f.decode(static_cast<uint32_t>(c));
    if (!std::isfinite(v)) continue;  // zero contribution
    if (v == 0) {
      out[c].finite = true;
      continue;
    }
    int e;
    const double m = std::frexp(v, &e);  // v = m * 2^e, 0.5 <= |m| < 1
    // Every format value has at most 17 significant bits: scale m to an integer.
    double sig = std::ldexp(m, 53);
    e -= 53;
    while (std::fmod(sig, 2.0) == 0) {
      sig /= 2;
      ++e;
    }
    if (e < lsb_exponent)
      throw std::logic_error(fmt::format("{}: value {} lies below the decode lsb 2^{}", f.to_string(), v, lsb_exponent));
    out[c] = {static_cast<int64_t>(sig), e - lsb_exponent, true};
  }
  return out;
}

ProductTable::ProductTable(const ScalarFormat& weight, const ScalarFormat& activation, int lsb_exponent) {
  weight_lsb_ = operand_decode(weight).lsb_exponent;
  activation_lsb_ = lsb_exponent - weight_lsb_;
  weight_ = values_of(weight, weight_lsb_);
  activation_ = values_of(activation, activation_lsb_);
}

WideInt ProductTable::times(const Value& x, const Value& y) {
  return WideInt(x.significand * y.significand).shifted_left(x.exponent + y.exponent);
}

WideInt ProductTable::product(uint32_t weight_code, uint32_t activation_code) const {
  if (weight_code >= weight_.size() || activation_code >= activation_.size())
    throw std::out_of_range(fmt::format("code pair ({}, {}) out of range", weight_code, activation_code));
  return times(weight_[weight_code], activation_[activation_code]);
}

namespace {

// The extreme products are products of extreme operand values.
template <class Pick>
WideInt extreme(const auto& w, const auto& a, auto times, Pick better) {
  auto extremes = [](const auto& values) {
    auto value = [](const auto& v) { return WideInt(v.significand).shifted_left(v.exponent); };
    std::optional<std::decay_t<decltype(values.front())>> lo, hi;
    for (const auto& v : values) {
      if (!v.finite) continue;
      if (!lo || value(v) < value(*lo)) lo = v;
      if (!hi || value(v) > value(*hi)) hi = v;
    }
    if (!lo) throw std::invalid_argument("a format without finite values cannot feed a MAC");
    return std::pair{*lo, *hi};
  };
  const auto [wl, wh] = extremes(w);
  const auto [al, ah] = extremes(a);
  WideInt best = times(wl, al);
  for (const WideInt& p : {times(wl, ah), times(wh, al), times(wh, ah)})
    if (better(p, best)) best = p;
  return best;
}

}  // namespace

WideInt ProductTable::min_product() const {
  return extreme(weight_, activation_, times, [](const WideInt& x, const WideInt& y) { return x < y; });
}

WideInt ProductTable::max_product() const {
  return extreme(weight_, activation_, times, [](const WideInt& x, const WideInt& y) { return x > y; });
}

MacEmulator::MacEmulator(const MacConfig& c)
    : plan_(plan_accumulator(c)), table_(c.weight, c.activation, plan_.product_lsb_exponent) {}

void MacEmulator::step(uint32_t weight_code, uint32_t activation_code) {
  const WideInt p = table_.product(weight_code, activation_code);
  if (plan_.sign_magnitude && p.negative()) acc_ += -((-p).shifted_right(plan_.dropped_lsbs));
  else acc_ += p.shifted_right(plan_.dropped_lsbs);
}

double MacEmulator::value() const {
  // Exact while the accumulator has at most 53 significant bits; a rounded figure otherwise.
  const std::string s = acc_.to_string();
  return std::ldexp(std::strtod(s.c_str(), nullptr), plan_.lsb_exponent);
}

}  // namespace lowbit::hw
