#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/llm/quantize.hpp"

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

void prune_sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m, double damp) {
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
  for (size_t i = 0; i < C; ++i) {
    if (i % static_cast<size_t>(m) == 0) {
      const size_t size = std::min<size_t>(static_cast<size_t>(m), C - i);
      const int drop = pruned_in_group(static_cast<int64_t>(size), n, m);
      for (size_t r = 0; r < R; ++r) {
        idx.resize(size);
        std::iota(idx.begin(), idx.end(), i);
        auto score = [&](size_t j) { const double v = wd[r * C + j] / u(j, j); return v * v; };
        std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score(a) < score(b); });
        for (int k = 0; k < drop; ++k) pruned[r * C + idx[static_cast<size_t>(k)]] = 1;
      }
    }
    const double d = u(i, i);
    for (size_t r = 0; r < R; ++r) {
      if (!pruned[r * C + i]) continue;
      const double err = wd[r * C + i] / d;
      wd[r * C + i] = 0;
      for (size_t j = i + 1; j < C; ++j) wd[r * C + j] -= err * u(i, j);
    }
  }
  for (size_t k = 0; k < w.size(); ++k) w[k] = pruned[k] ? 0.0f : static_cast<float>(wd[k]);
}

}  // namespace lowbit::llm
