#pragma once
// Fitting the cost model to synthesized configurations and measuring it on held-out ones.
#include <string>
#include <vector>

#include "lowbit/hw/cost_model.hpp"
#include "lowbit/hw/yosys.hpp"

namespace lowbit::hw {

// min ||A x - b||_2 subject to x >= 0 (Lawson and Hanson's active-set method). A is row-major
// rows x cols.
std::vector<double> nonnegative_least_squares(const std::vector<double>& a, int rows, int cols, const std::vector<double>& b);

struct ResourceError {
  std::string resource;  // "LUT", "FF", "CARRY", "DSP"
  bool use_dsp = true;
  int rows = 0;
  double median_ape = 0, max_ape = 0;  // absolute percentage error, %
  int exact = 0;                       // rows predicted exactly (after rounding)
};

struct FitResult {
  CostModel model;
  int train_configs = 0, held_out_configs = 0;
  std::vector<ResourceError> train, held_out;
};

// Fits on the rows outside the held-out split (see held_out() in sweep.hpp), evaluates on both.
FitResult fit_cost_model(const std::vector<SynthRow>& rows);
// Error of `model` on the held-out (or the training) rows.
std::vector<ResourceError> evaluate_cost_model(const CostModel& model, const std::vector<SynthRow>& rows, bool on_held_out);
std::string format_fit_report(const FitResult& fit);

}  // namespace lowbit::hw
