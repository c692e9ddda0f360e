#include "lowbit/report/ticks.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::report {

double AxisScale::fraction(double v) const {
  if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  return (v - lo) / (hi - lo);
}

std::string si_label(double v) {
  static const char* const kSuffixes[] = {"", "k", "M", "G", "T", "P", "E"};
  if (v == 0 || !std::isfinite(v)) return fmt::format("{}", v);
  const double magnitude = std::fabs(v);
  if (magnitude < 1) return fmt::format("{:.3g}", v);
  int group = 0;
  double scaled = v;
  while (std::fabs(scaled) >= 999.5 && group < 6) {
    scaled /= 1000;
    ++group;
  }
  std::string digits = fmt::format("{:.3g}", scaled);
  return digits + kSuffixes[group];
}

AxisScale log_scale(double min, double max) {
  if (!(min > 0) || !(max >= min) || !std::isfinite(max)) throw std::invalid_argument(fmt::format("log scale needs 0 < min <= max, got [{}, {}]", min, max));
  AxisScale s;
  s.log = true;
  double lo_exp = std::log10(min), hi_exp = std::log10(max);
  const double span = hi_exp - lo_exp;
  const double pad = span > 0 ? 0.06 * span : 0.15;
  lo_exp -= pad;
  hi_exp += pad;
  s.lo = std::pow(10.0, lo_exp);
  s.hi = std::pow(10.0, hi_exp);
  static const std::vector<std::vector<int>> kMantissas = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  for (const std::vector<int>& mantissas : kMantissas) {
    s.ticks.clear();
    for (int e = static_cast<int>(std::floor(lo_exp)); e <= static_cast<int>(std::ceil(hi_exp)); ++e) {
      for (int m : mantissas) {
        const double v = m * std::pow(10.0, e);
        if (v >= s.lo && v <= s.hi) s.ticks.push_back({v, si_label(v)});
      }
    }
    if (s.ticks.size() >= 3) return s;
  }
  // Less than a ninth of a decade: a linear scale's ticks fit better, still drawn on the log axis.
  const AxisScale linear = linear_scale(s.lo, s.hi, 4);
  s.ticks.clear();
  for (const Tick& t : linear.ticks)
    if (t.value >= s.lo && t.value <= s.hi) s.ticks.push_back({t.value, si_label(t.value)});
  return s;
}

AxisScale linear_scale(double min, double max, int target) {
  if (!std::isfinite(min) || !std::isfinite(max) || max < min)
    throw std::invalid_argument(fmt::format("linear scale needs min <= max, got [{}, {}]", min, max));
  AxisScale s;
  const double span = max - min;
  const double pad = span > 0 ? 0.06 * span : std::max(1.0, std::fabs(min) * 0.05);
  s.lo = min - pad;
  s.hi = max + pad;
  const double raw_step = (s.hi - s.lo) / std::max(1, target);
  const double decade = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = decade;
  // The smallest 1-2-5 step not much finer than asked: at most about target * 4/3 ticks.
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * decade;
    if (step >= 0.75 * raw_step) break;
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double v = std::ceil(s.lo / step) * step; v <= s.hi + step * 1e-9; v += step) {
    const double snapped = std::round(v / step) * step;
    s.ticks.push_back({snapped, fmt::format("{:.{}f}", snapped == 0 ? 0.0 : snapped, decimals)});
  }
  return s;
}

}  // namespace lowbit::report
