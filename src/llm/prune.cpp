#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/llm/quantize.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "src/quant/slices.hpp"

namespace lowbit::llm {

namespace {

void check(size_t size, int64_t rows, int64_t cols, int n, int m) {
  if (rows < 1 || cols < 1 || size != static_cast<size_t>(rows * cols))
    throw std::invalid_argument(fmt::format("pruning: {} weights are not {} x {}", size, rows, cols));
  if (m < 1 || n < 1 || n > m) throw std::invalid_argument(fmt::format("pruning: {}:{} needs 1 <= N <= M", n, m));
}

// Indices [begin, end) of a row group, sorted by ascending score: the first (size - keep) are pruned.
int pruned_in_group(int64_t size, int n, int m) {
  // A short last group keeps the same fraction, rounded up.
  return static_cast<int>(size - (size * n + m - 1) / m);
}

// Lower Cholesky factor of a symmetric positive definite matrix (row-major, n x n).
std::vector<double> cholesky_lower(const std::vector<double>& a, size_t n, const char* what) {
  std::vector<double> l(n * n, 0.0);
  for (size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (size_t k = 0; k < j; ++k) d -= l[j * n + k] * l[j * n + k];
    if (!(d > 0) || !std::isfinite(d)) throw std::runtime_error(fmt::format("{}: matrix not positive definite at pivot {}", what, j));
    l[j * n + j] = std::sqrt(d);
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

}  // namespace

void prune_magnitude(std::vector<float>& w, int64_t rows, int64_t cols, int n, int m) {
  check(w.size(), rows, cols, n, m);
  std::vector<int64_t> idx;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols; g += m) {
      const int64_t size = std::min<int64_t>(m, cols - g);
      idx.resize(static_cast<size_t>(size));
      std::iota(idx.begin(), idx.end(), g);
      float* row = w.data() + r * cols;
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return std::fabs(row[a]) < std::fabs(row[b]); });
      for (int k = 0; k < pruned_in_group(size, n, m); ++k) row[idx[static_cast<size_t>(k)]] = 0.0f;
    }
}

namespace {

// One column's weights (one per row) fake-quantized with each row's own scale (and zero point).
// Scales come from lowbit's Quantizer: for groups along the inputs (granularity Group, axis 1),
// each group's scales are taken from the current, already updated weights when the sweep reaches
// the group (GPTQ's reference without static groups; SparseGPT's updates can grow kept weights past
// the original range, which static scales would clip); otherwise once, from the weights before any
// update.
class ColumnQuantizer {
 public:
  ColumnQuantizer(const QuantizerConfig& cfg, std::span<const float> w, int64_t rows, int64_t cols)
      : cfg_(cfg), rows_(static_cast<size_t>(rows)), cols_(static_cast<size_t>(cols)) {
    if (!cfg.format.scalar())
      throw std::invalid_argument(fmt::format("SparseGPT with quantization needs a scalar format, not {}", cfg.format.to_string()));
    per_group_ = cfg.granularity == Granularity::Group && cfg.axis == 1 && cfg.group_size > 0;
    column_cfg_.granularity = Granularity::Channel;
    column_cfg_.axis = 0;
    column_cfg_.threads = 1;
    scale_.resize(rows_ * cols_);
    if (per_group_) return;
    const std::vector<int64_t> shape = {rows, cols};
    Quantizer q(cfg);
    q.observe(w, shape);
    const QuantParams params = q.compute_params();
    if (!params.zero_point.empty()) zero_.resize(rows_ * cols_);
    for (const detail::Run& run : detail::slice_layout(cfg, shape, w.size()).runs)
      for (size_t k = run.begin; k < run.begin + run.length; ++k) {
        const size_t t = (k % cols_) * rows_ + k / cols_;  // column-major: one column's scales contiguous
        scale_[t] = params.scale[run.slice];
        if (!zero_.empty()) zero_[t] = params.zero_point[run.slice];
      }
  }

  // Called for every column before it is quantized, with the current weights (row-major, double):
  // a column that starts a group fixes that group's scales.
  void reach(size_t c, const std::vector<double>& w) {
    if (!per_group_ || c % static_cast<size_t>(cfg_.group_size) != 0) return;
    const size_t width = std::min(static_cast<size_t>(cfg_.group_size), cols_ - c);
    std::vector<float> group(rows_ * width);
    for (size_t r = 0; r < rows_; ++r)
      for (size_t j = 0; j < width; ++j) group[r * width + j] = static_cast<float>(w[r * cols_ + c + j]);
    QuantizerConfig row_cfg = cfg_;
    row_cfg.granularity = Granularity::Channel;
    row_cfg.axis = 0;
    Quantizer q(row_cfg);
    const int64_t shape[] = {static_cast<int64_t>(rows_), static_cast<int64_t>(width)};
    q.observe(group, shape);
    const QuantParams params = q.compute_params();
    if (!params.zero_point.empty()) zero_.resize(rows_ * cols_);
    for (size_t j = c; j < c + width; ++j)
      for (size_t r = 0; r < rows_; ++r) {
        scale_[j * rows_ + r] = params.scale[r];
        if (!zero_.empty()) zero_[j * rows_ + r] = params.zero_point[r];
      }
  }

  // in / out: column `c`, one value per row.
  void operator()(size_t c, std::span<const float> in, std::span<float> out) const {
    Quantizer cq(column_cfg_);
    QuantParams p;
    const auto first = static_cast<std::ptrdiff_t>(c * rows_), last = static_cast<std::ptrdiff_t>((c + 1) * rows_);
    p.scale.assign(scale_.begin() + first, scale_.begin() + last);
    if (!zero_.empty()) p.zero_point.assign(zero_.begin() + first, zero_.begin() + last);
    cq.set_params(std::move(p));
    const int64_t shape[] = {static_cast<int64_t>(rows_), 1};
    cq.fake_quant(in, out, shape);
  }

 private:
  QuantizerConfig cfg_;
  QuantizerConfig column_cfg_ = cfg_;
  size_t rows_, cols_;
  bool per_group_ = false;
  std::vector<float> scale_, zero_;
};

// SparseGPT over the columns left to right: at the start of every M-column group, each row's mask
// by w^2 / [U]_jj^2 on the current (already updated) weights (with quantization, by
// (w^2 - (w - q(w))^2) / [U]_jj^2: keeping costs the rounding error); then each column's target is
// 0 for a pruned weight and, when `quantize` is given, the quantized value for a kept one (kept
// weights stay as they are otherwise); the error (w - target) / U_ii goes to the later columns
// through row i of U, the upper Cholesky factor of H^-1.
void sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m, double damp,
               ColumnQuantizer* quantize) {
  check(w.size(), rows, cols, n, m);
  const size_t C = static_cast<size_t>(cols), R = static_cast<size_t>(rows);
  if (hessian.size() != C * C) throw std::invalid_argument(fmt::format("SparseGPT: Hessian of {} entries for {} columns", hessian.size(), cols));
  // Dead inputs get a unit diagonal (their weights are then pruned first by the score).
  std::vector<double> h = hessian;
  double mean = 0;
  for (size_t i = 0; i < C; ++i) {
    if (h[i * C + i] == 0) h[i * C + i] = 1;
    mean += h[i * C + i];
  }
  mean /= static_cast<double>(C);
  for (size_t i = 0; i < C; ++i) h[i * C + i] += damp * mean;
  // H^-1 from its Cholesky factor, then U upper with H^-1 = U^T U (the Cholesky factor of H^-1
  // with the order reversed: U = L'^T where H^-1 = L' L'^T).
  const std::vector<double> l = cholesky_lower(h, C, "SparseGPT Hessian");
  std::vector<double> linv(C * C, 0.0);  // L^-1, lower
  for (size_t j = 0; j < C; ++j) {
    linv[j * C + j] = 1 / l[j * C + j];
    for (size_t i = j + 1; i < C; ++i) {
      double s = 0;
      for (size_t k = j; k < i; ++k) s -= l[i * C + k] * linv[k * C + j];
      linv[i * C + j] = s / l[i * C + i];
    }
  }
  std::vector<double> hinv(C * C, 0.0);  // L^-T L^-1
  for (size_t i = 0; i < C; ++i)
    for (size_t j = 0; j <= i; ++j) {
      double s = 0;
      for (size_t k = i; k < C; ++k) s += linv[k * C + i] * linv[k * C + j];
      hinv[i * C + j] = hinv[j * C + i] = s;
    }
  // Upper U with U^T U = H^-1: U^T is the lower Cholesky factor of H^-1.
  const std::vector<double> ut = cholesky_lower(hinv, C, "SparseGPT inverse Hessian");
  auto u = [&](size_t i, size_t j) { return ut[j * C + i]; };

  std::vector<double> wd(w.begin(), w.end());
  std::vector<uint8_t> pruned(R * C, 0);
  std::vector<size_t> idx;
  std::vector<float> column(R), target(R);
  std::vector<double> keep_cost(R * static_cast<size_t>(m), 0.0);  // [r][j - i]: (w - q(w))^2 of keeping
  for (size_t i = 0; i < C; ++i) {
    if (i % static_cast<size_t>(m) == 0) {
      const size_t size = std::min<size_t>(static_cast<size_t>(m), C - i);
      const int drop = pruned_in_group(static_cast<int64_t>(size), n, m);
      // With quantization a kept weight costs its rounding error too: prune where the cost of
      // pruning exceeds that of keeping by the least.
      if (quantize)
        for (size_t j = i; j < i + size; ++j) {
          quantize->reach(j, wd);
          for (size_t r = 0; r < R; ++r) column[r] = static_cast<float>(wd[r * C + j]);
          (*quantize)(j, column, target);
          for (size_t r = 0; r < R; ++r) {
            const double e = wd[r * C + j] - target[r];
            keep_cost[r * static_cast<size_t>(m) + (j - i)] = e * e;
          }
        }
      for (size_t r = 0; r < R; ++r) {
        idx.resize(size);
        std::iota(idx.begin(), idx.end(), i);
        auto score = [&](size_t j) {
          const double v = wd[r * C + j];
          return (v * v - keep_cost[r * static_cast<size_t>(m) + (j - i)]) / (u(j, j) * u(j, j));
        };
        std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score(a) < score(b); });
        for (int k = 0; k < drop; ++k) pruned[r * C + idx[static_cast<size_t>(k)]] = 1;
      }
    }
    if (quantize) {
      for (size_t r = 0; r < R; ++r) column[r] = static_cast<float>(wd[r * C + i]);
      (*quantize)(i, column, target);
    }
    const double d = u(i, i);
    for (size_t r = 0; r < R; ++r) {
      const bool cut = pruned[r * C + i];
      if (!cut && !quantize) continue;
      const double goal = cut ? 0.0 : static_cast<double>(target[r]);
      const double err = (wd[r * C + i] - goal) / d;
      wd[r * C + i] = goal;
      for (size_t j = i + 1; j < C; ++j) wd[r * C + j] -= err * u(i, j);
    }
  }
  for (size_t k = 0; k < w.size(); ++k) w[k] = pruned[k] ? 0.0f : static_cast<float>(wd[k]);
}

}  // namespace

void prune_sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m, double damp) {
  sparsegpt(w, rows, cols, hessian, n, m, damp, nullptr);
}

void prune_quantize_sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m,
                              const QuantizerConfig& quant, double damp) {
  check(w.size(), rows, cols, n, m);
  ColumnQuantizer quantize(quant, w, rows, cols);
  sparsegpt(w, rows, cols, hessian, n, m, damp, &quantize);
}

}  // namespace lowbit::llm
