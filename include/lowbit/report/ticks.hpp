#pragma once
// Axis ticks for the plots: a log axis labelled 1k 10k 1M, and a linear one at 1-2-5 steps.
#include <string>
#include <vector>

namespace lowbit::report {

struct Tick {
  double value = 0;
  std::string label;
};

struct AxisScale {
  double lo = 0, hi = 1;  // the drawn range (data values, not logarithms)
  bool log = false;
  std::vector<Tick> ticks;
  // 0 at lo, 1 at hi.
  double fraction(double v) const;
};

// "950", "1k", "2.5k", "10k", "1M", "1.2G", "3T": three significant digits at most.
std::string si_label(double v);

// A log scale around [min, max] (positive values; padded by a little on each side) with at least
// three ticks: decades, else 1-2-5 per decade, else 1..9 per decade.
AxisScale log_scale(double min, double max);
// A linear scale around [min, max] with ticks at a 1-2-5 step, about `target` of them.
AxisScale linear_scale(double min, double max, int target = 6);

}  // namespace lowbit::report
