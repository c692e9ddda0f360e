#include "lowbit/hw/cost_model.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::hw {

extern const char* const kBuiltinCostModelJson;

namespace {

std::string key(const std::string& resource, bool use_dsp) { return resource + (use_dsp ? "/dsp" : "/nodsp"); }

}  // namespace

const std::vector<std::string>& feature_names() {
  static const std::vector<std::string> names = {"one",         "mult_area_u", "mult_tree_u", "mult_area_s", "mult_tree_s",
                                                 "negate_bits", "decode_bits", "shifter",     "acc_bits"};
  return names;
}

std::vector<double> MacFeatures::vector(bool use_dsp) const {
  const bool in_dsp = use_dsp && dsp_count > 0;
  const double area = in_dsp ? 0.0 : mult_area, tree = in_dsp ? 0.0 : mult_tree;
  return {1.0, mult_signed ? 0.0 : area, mult_signed ? 0.0 : tree, mult_signed ? area : 0.0, mult_signed ? tree : 0.0,
          negate_bits, decode_bits, shifter, acc_bits};
}

int dsp_blocks(int a_bits, int b_bits, int product_bits) {
  if (a_bits < 2 || b_bits < 2 || product_bits < 9) return 0;
  const int big = std::max(a_bits, b_bits), small = std::min(a_bits, b_bits);
  return ((big + 26) / 27) * ((small + 17) / 18);
}

MacFeatures mac_features(const MacConfig& c) {
  const AccumulatorPlan p = plan_accumulator(c);
  const OperandDecode &w = p.weight, &a = p.activation;
  MacFeatures f;
  // The multiplier as generated (see verilog.cpp).
  int wa, aa, core_bits;
  if (!p.sign_magnitude) {
    // Two's complement: an unsigned operand by a signed one gains a bit.
    const bool mixed = w.significand_signed != a.significand_signed;
    wa = w.significand_bits + (mixed && !w.significand_signed ? 1 : 0);
    aa = a.significand_bits + (mixed && !a.significand_signed ? 1 : 0);
    core_bits = w.significand_bits + a.significand_bits;
  } else {
    wa = w.effective_magnitude_bits;
    aa = a.effective_magnitude_bits;
    core_bits = wa + aa;
    for (const OperandDecode* d : {&w, &a})
      if (!d->is_minifloat && d->significand_signed) f.negate_bits += d->code_bits;  // integer to sign-magnitude
  }
  f.mult_area = static_cast<double>(wa) * aa;
  f.mult_tree = f.mult_area * std::min(wa, aa);
  f.mult_signed = !p.sign_magnitude && (w.significand_signed || a.significand_signed);
  for (const OperandDecode* d : {&w, &a})
    if (d->is_minifloat) f.decode_bits += d->code_bits - (d->has_sign_bit ? 1 : 0);
  const int max_shift = w.max_shift + a.max_shift;
  // Each output bit of the alignment shifter selects one of min(product bits, shift range) bits.
  if (w.shift_bits > 0 || a.shift_bits > 0) f.shifter = static_cast<double>(core_bits + max_shift) * std::min(core_bits, max_shift + 1);
  f.acc_bits = p.bits;
  f.dsp_count = dsp_blocks(wa, aa, core_bits);
  return f;
}

const std::vector<std::string>& CostModel::resources() {
  static const std::vector<std::string> r = {"lut", "ff", "carry"};
  return r;
}

const std::vector<double>& CostModel::coefficients(const std::string& resource, bool use_dsp) const {
  auto it = coefficients_.find(key(resource, use_dsp));
  if (it == coefficients_.end()) throw std::invalid_argument(fmt::format("cost model has no coefficients for '{}'", key(resource, use_dsp)));
  return it->second;
}

void CostModel::set_coefficients(const std::string& resource, bool use_dsp, std::vector<double> c) {
  if (c.size() != feature_names().size())
    throw std::invalid_argument(fmt::format("'{}': {} coefficients, expected {}", key(resource, use_dsp), c.size(), feature_names().size()));
  coefficients_[key(resource, use_dsp)] = std::move(c);
}

MacCost CostModel::predict(const MacFeatures& f, bool use_dsp) const {
  const std::vector<double> x = f.vector(use_dsp);
  auto dot = [&](const std::string& r) {
    const auto& c = coefficients(r, use_dsp);
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += c[i] * x[i];
    return s;
  };
  return {dot("lut"), dot("ff"), dot("carry"), use_dsp ? static_cast<double>(f.dsp_count) : 0.0};
}

MacCost CostModel::predict(const MacConfig& c, bool use_dsp) const { return predict(mac_features(c), use_dsp); }

std::string CostModel::to_json() const {
  nlohmann::ordered_json j;
  j["target"] = target;
  j["yosys"] = yosys;
  j["features"] = feature_names();
  nlohmann::ordered_json coeffs;
  for (const auto& r : resources())
    for (bool dsp : {true, false}) coeffs[key(r, dsp)] = coefficients(r, dsp);
  j["coefficients"] = coeffs;
  return j.dump(2);
}

CostModel CostModel::from_json(const std::string& text, const std::string& origin) {
  CostModel m;
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.at("features").get<std::vector<std::string>>() != feature_names())
      throw std::invalid_argument(fmt::format("{}: features {} do not match this lowbit's {}", origin, j.at("features").dump(),
                                              nlohmann::json(feature_names()).dump()));
    m.target = j.at("target").get<std::string>();
    m.yosys = j.value("yosys", "");
    for (const auto& r : resources())
      for (bool dsp : {true, false}) m.set_coefficients(r, dsp, j.at("coefficients").at(key(r, dsp)).get<std::vector<double>>());
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(fmt::format("{}: not a lowbit cost model ({})", origin, e.what()));
  }
  return m;
}

CostModel CostModel::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot read cost model {}", path));
  std::ostringstream s;
  s << in.rdbuf();
  return from_json(s.str(), path);
}

const CostModel& CostModel::builtin() {
  static const CostModel m = from_json(kBuiltinCostModelJson, "the built-in cost model (data/hw/cost_model_xcup.json)");
  return m;
}

}  // namespace lowbit::hw
