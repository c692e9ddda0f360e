#include "lowbit/hw/fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/hw/sweep.hpp"

namespace lowbit::hw {
namespace {

// Unconstrained least squares on the columns `cols_used` of A (modified Gram-Schmidt QR).
std::vector<double> least_squares(const std::vector<double>& a, int rows, int cols, const std::vector<double>& b,
                                  const std::vector<int>& cols_used) {
  const size_t k = cols_used.size();
  std::vector<std::vector<double>> q(k, std::vector<double>(static_cast<size_t>(rows)));
  std::vector<std::vector<double>> r(k, std::vector<double>(k, 0.0));
  for (size_t j = 0; j < k; ++j)
    for (int i = 0; i < rows; ++i) q[j][static_cast<size_t>(i)] = a[static_cast<size_t>(i * cols + cols_used[j])];
  for (size_t j = 0; j < k; ++j) {
    for (size_t p = 0; p < j; ++p) {
      double d = 0;
      for (int i = 0; i < rows; ++i) d += q[p][static_cast<size_t>(i)] * q[j][static_cast<size_t>(i)];
      r[p][j] = d;
      for (int i = 0; i < rows; ++i) q[j][static_cast<size_t>(i)] -= d * q[p][static_cast<size_t>(i)];
    }
    double norm = 0;
    for (int i = 0; i < rows; ++i) norm += q[j][static_cast<size_t>(i)] * q[j][static_cast<size_t>(i)];
    norm = std::sqrt(norm);
    r[j][j] = norm;
    if (norm > 1e-12)
      for (int i = 0; i < rows; ++i) q[j][static_cast<size_t>(i)] /= norm;
  }
  std::vector<double> qtb(k, 0.0), x(k, 0.0);
  for (size_t j = 0; j < k; ++j)
    for (int i = 0; i < rows; ++i) qtb[j] += q[j][static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
  for (size_t jj = k; jj-- > 0;) {
    double s = qtb[jj];
    for (size_t p = jj + 1; p < k; ++p) s -= r[jj][p] * x[p];
    x[jj] = std::fabs(r[jj][jj]) > 1e-12 ? s / r[jj][jj] : 0.0;  // a column that is all zeros gets 0
  }
  return x;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double actual(const SynthRow& r, const std::string& resource) {
  if (resource == "lut") return r.counts.lut;
  if (resource == "ff") return r.counts.ff;
  if (resource == "carry") return r.counts.carry;
  return r.counts.dsp;
}

double predicted(const MacCost& c, const std::string& resource) {
  if (resource == "lut") return c.lut;
  if (resource == "ff") return c.ff;
  if (resource == "carry") return c.carry;
  return c.dsp;
}

bool row_held_out(const SynthRow& r) { return held_out(r.weight, r.activation, r.n, r.acc_request); }

}  // namespace

std::vector<double> nonnegative_least_squares(const std::vector<double>& a, int rows, int cols, const std::vector<double>& b) {
  if (rows <= 0 || cols <= 0 || a.size() != static_cast<size_t>(rows * cols) || b.size() != static_cast<size_t>(rows))
    throw std::invalid_argument("nonnegative_least_squares: inconsistent sizes");
  std::vector<double> x(static_cast<size_t>(cols), 0.0);
  std::vector<bool> passive(static_cast<size_t>(cols), false);
  auto gradient = [&] {
    std::vector<double> w(static_cast<size_t>(cols), 0.0);
    for (int i = 0; i < rows; ++i) {
      double res = b[static_cast<size_t>(i)];
      for (int j = 0; j < cols; ++j) res -= a[static_cast<size_t>(i * cols + j)] * x[static_cast<size_t>(j)];
      for (int j = 0; j < cols; ++j) w[static_cast<size_t>(j)] += a[static_cast<size_t>(i * cols + j)] * res;
    }
    return w;
  };
  double scale = 0;
  for (double v : a) scale = std::max(scale, std::fabs(v));
  for (double v : b) scale = std::max(scale, std::fabs(v));
  const double tol = 1e-10 * std::max(1.0, scale * scale) * rows;
  for (int outer = 0; outer < 3 * cols + 10; ++outer) {
    const std::vector<double> w = gradient();
    int best = -1;
    for (int j = 0; j < cols; ++j)
      if (!passive[static_cast<size_t>(j)] && w[static_cast<size_t>(j)] > tol && (best < 0 || w[static_cast<size_t>(j)] > w[static_cast<size_t>(best)]))
        best = j;
    if (best < 0) break;
    passive[static_cast<size_t>(best)] = true;
    for (int inner = 0; inner < 3 * cols + 10; ++inner) {
      std::vector<int> used;
      for (int j = 0; j < cols; ++j)
        if (passive[static_cast<size_t>(j)]) used.push_back(j);
      const std::vector<double> z_used = least_squares(a, rows, cols, b, used);
      std::vector<double> z(static_cast<size_t>(cols), 0.0);
      for (size_t k = 0; k < used.size(); ++k) z[static_cast<size_t>(used[k])] = z_used[k];
      bool feasible = true;
      for (int j : used) feasible &= z[static_cast<size_t>(j)] > 0;
      if (feasible) {
        x = z;
        break;
      }
      double alpha = 1.0;
      for (int j : used)
        if (z[static_cast<size_t>(j)] <= 0) alpha = std::min(alpha, x[static_cast<size_t>(j)] / (x[static_cast<size_t>(j)] - z[static_cast<size_t>(j)]));
      for (int j = 0; j < cols; ++j) x[static_cast<size_t>(j)] += alpha * (z[static_cast<size_t>(j)] - x[static_cast<size_t>(j)]);
      for (int j : used)
        if (x[static_cast<size_t>(j)] <= 1e-12) passive[static_cast<size_t>(j)] = false, x[static_cast<size_t>(j)] = 0;
    }
  }
  return x;
}

std::vector<ResourceError> evaluate_cost_model(const CostModel& model, const std::vector<SynthRow>& rows, bool on_held_out) {
  std::vector<ResourceError> out;
  for (const std::string resource : {"lut", "ff", "carry", "dsp"}) {
    for (bool dsp : {true, false}) {
      if (resource == "dsp" && !dsp) continue;
      std::vector<double> errors;
      ResourceError e;
      e.resource = resource == "lut" ? "LUT" : resource == "ff" ? "FF" : resource == "carry" ? "CARRY" : "DSP";
      e.use_dsp = dsp;
      for (const SynthRow& r : rows) {
        if (r.use_dsp != dsp || row_held_out(r) != on_held_out) continue;
        const double truth = actual(r, resource);
        const double guess = predicted(model.predict(r.config(), dsp), resource);
        if (std::lround(guess) == std::lround(truth)) ++e.exact;
        // Percentages of a zero count are undefined: a DSP row with no DSP counts as 0 % when
        // the model also says 0, and 100 % otherwise.
        errors.push_back(truth != 0 ? 100.0 * std::fabs(guess - truth) / truth : (std::lround(guess) == 0 ? 0.0 : 100.0));
      }
      e.rows = static_cast<int>(errors.size());
      e.median_ape = median(errors);
      e.max_ape = errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end());
      out.push_back(e);
    }
  }
  return out;
}

FitResult fit_cost_model(const std::vector<SynthRow>& rows) {
  if (rows.empty()) throw std::invalid_argument("no synthesis rows to fit");
  FitResult fit;
  fit.model.yosys = rows.front().yosys;
  const int cols = static_cast<int>(feature_names().size());
  std::set<std::string> train_configs, held_configs;
  for (const SynthRow& r : rows)
    (row_held_out(r) ? held_configs : train_configs).insert(r.config().to_string());
  fit.train_configs = static_cast<int>(train_configs.size());
  fit.held_out_configs = static_cast<int>(held_configs.size());
  for (const std::string& resource : CostModel::resources()) {
    for (bool dsp : {true, false}) {
      // Relative error is what matters: each row is divided by its measured count.
      std::vector<double> a, b;
      int n = 0;
      for (const SynthRow& r : rows) {
        if (r.use_dsp != dsp || row_held_out(r)) continue;
        const double truth = actual(r, resource);
        if (truth <= 0) continue;
        for (double x : mac_features(r.config()).vector(dsp)) a.push_back(x / truth);
        b.push_back(1.0);
        ++n;
      }
      if (n < cols) throw std::invalid_argument(fmt::format("only {} training rows for {} ({}), need at least {}", n, resource, dsp ? "DSP" : "no DSP", cols));
      fit.model.set_coefficients(resource, dsp, nonnegative_least_squares(a, n, cols, b));
    }
  }
  fit.train = evaluate_cost_model(fit.model, rows, false);
  fit.held_out = evaluate_cost_model(fit.model, rows, true);
  return fit;
}

std::string format_fit_report(const FitResult& fit) {
  std::string s = fmt::format("cost model fit: {} configurations for the fit, {} held out (fixed 30 % split by a hash of each configuration)\n",
                              fit.train_configs, fit.held_out_configs);
  s += "coefficients (per feature: " + fmt::format("{}", fmt::join(feature_names(), ", ")) + ")\n";
  for (const auto& r : CostModel::resources())
    for (bool dsp : {true, false}) {
      std::string line;
      for (double c : fit.model.coefficients(r, dsp)) line += fmt::format(" {:8.4f}", c);
      s += fmt::format("  {:<6} {:<7}{}\n", r, dsp ? "DSP" : "no DSP", line);
    }
  auto table = [&](const std::vector<ResourceError>& errors, const char* title) {
    s += fmt::format("{}\n  {:<16} {:>5} {:>9} {:>9} {:>7}\n", title, "resource", "rows", "median %", "max %", "exact");
    for (const ResourceError& e : errors)
      s += fmt::format("  {:<16} {:>5} {:>9.2f} {:>9.2f} {:>7}\n", fmt::format("{} ({})", e.resource, e.use_dsp ? "DSP" : "no DSP"), e.rows,
                       e.median_ape, e.max_ape, e.exact);
  };
  table(fit.held_out, "held-out error (absolute percentage error against Yosys)");
  table(fit.train, "training error");
  return s;
}

}  // namespace lowbit::hw
