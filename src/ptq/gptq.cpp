#include "lowbit/ptq/gptq.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/parallel.hpp"
#include "src/quant/slices.hpp"
#include "src/runtime/ops/conv_geometry.hpp"

namespace lowbit {

// ---------------------------------------------------------------------------------------------
// Hessian

HessianAccumulator::HessianAccumulator(int64_t cols, int threads) : cols_(cols), threads_(threads) {
  if (cols < 1) throw std::invalid_argument(fmt::format("HessianAccumulator: {} columns; needs at least 1", cols));
  const size_t n = static_cast<size_t>(cols) * static_cast<size_t>(cols);
  sum_.assign(n, 0.0);
  hessian_.assign(n, 0.0);
}

void HessianAccumulator::add(const float* rows, int64_t n) {
  if (n < 0) throw std::invalid_argument("HessianAccumulator::add: negative row count");
  if (n == 0) return;
  if (!rows) throw std::invalid_argument("HessianAccumulator::add: no data");
  const size_t c = static_cast<size_t>(cols_);
  // Rows go through in slabs converted to double; within a slab, chunks of rows small enough to stay
  // in cache while each row of the sum takes them.
  constexpr size_t kSlab = 1024, kChunk = 64;
  std::vector<double> x(std::min<size_t>(kSlab, static_cast<size_t>(n)) * c);
  // Work unit u: rows u and c-1-u of the upper triangle, so that units cost the same.
  const size_t units = (c + 1) / 2;
  for (int64_t s0 = 0; s0 < n; s0 += static_cast<int64_t>(kSlab)) {
    const size_t m = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(kSlab), n - s0));
    const float* src = rows + static_cast<size_t>(s0) * c;
    for (size_t k = 0; k < m * c; ++k) x[k] = src[k];
    // Rows r0 .. r1 into row i of the sum.
    auto accumulate = [&](size_t i, size_t r0, size_t r1) {
      double* s = sum_.data() + i * c;
      for (size_t r = r0; r < r1; ++r) {
        const double a = x[r * c + i];
        if (a == 0) continue;  // post-ReLU inputs are often zero
        const double* xr = x.data() + r * c;
        for (size_t j = i; j < c; ++j) s[j] += a * xr[j];
      }
    };
    // Every entry of the sum takes the rows one by one in order, whatever the slab or thread split:
    // batches of any sizes give the very same sum as one pass.
    const bool worth_threads = static_cast<double>(m) * static_cast<double>(c) * static_cast<double>(c) > 1e7;
    parallel_chunks(units, worth_threads ? threads_ : 1, 1, [&](size_t u0, size_t u1) {
      for (size_t r0 = 0; r0 < m; r0 += kChunk) {
        const size_t r1 = std::min(m, r0 + kChunk);
        for (size_t u = u0; u < u1; ++u) {
          accumulate(u, r0, r1);
          if (c - 1 - u != u) accumulate(c - 1 - u, r0, r1);
        }
      }
    });
  }
  samples_ += n;
  stale_ = true;
}

const std::vector<double>& HessianAccumulator::hessian() const {
  if (!stale_) return hessian_;
  const size_t c = static_cast<size_t>(cols_);
  const double count = static_cast<double>(samples_);
  for (size_t i = 0; i < c; ++i)
    for (size_t j = i; j < c; ++j) hessian_[i * c + j] = hessian_[j * c + i] = 2 * sum_[i * c + j] / count;
  stale_ = false;
  return hessian_;
}

namespace {

void require_plain_f32(const Tensor& x, const char* what) {
  if (x.dtype() != DType::F32) throw std::invalid_argument(fmt::format("{}: input must be float32, got {}", what, to_string(x.dtype())));
  if (x.channels_last()) throw std::invalid_argument(fmt::format("{}: input must be in plain layout", what));
}

// Geometry of a group-1 2-D convolution whose im2col rows have h_cols values; throws
// std::invalid_argument otherwise.
ConvGeometry conv_rows_geometry(const Node& conv, const Tensor& x, const Shape& w_shape, int64_t h_cols) {
  require_plain_f32(x, conv.label().c_str());
  if (x.rank() != 4 || w_shape.size() != 4)
    throw std::invalid_argument(fmt::format("{}: GPTQ input rows need a 2-D convolution, got input {} and weights {}", conv.label(),
                                            shape_string(x.shape()), shape_string(w_shape)));
  ConvGeometry g;
  try {
    g = conv_geometry(conv, x.shape(), w_shape);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(fmt::format("{}: {}", conv.label(), e.what()));
  }
  if (g.groups != 1)
    throw std::invalid_argument(fmt::format("{}: GPTQ handles convolutions with group = 1 only, this one has group = {}", conv.label(), g.groups));
  const int64_t k = x.dim(1) * g.kernel[0] * g.kernel[1];
  if (h_cols >= 0 && k != h_cols)
    throw std::invalid_argument(fmt::format("{}: rows of {} values for a Hessian of {} columns", conv.label(), k, h_cols));
  return g;
}

// The im2col rows of image n: out holds OH * OW rows of IC * kh * kw values.
void conv_rows_of_image(const ConvGeometry& g, const Tensor& x, int64_t n, float* out) {
  const int64_t ic = x.dim(1), ih = x.dim(2), iw = x.dim(3);
  const int64_t kh = g.kernel[0], kw = g.kernel[1], oh = g.output_shape[2], ow = g.output_shape[3];
  const float* img = x.data<float>() + n * ic * ih * iw;
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t xo = 0; xo < ow; ++xo)
      for (int64_t c = 0; c < ic; ++c)
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = y * g.strides[0] - g.pads_begin[0] + ky * g.dilations[0];
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t ix = xo * g.strides[1] - g.pads_begin[1] + kx * g.dilations[1];
            const bool inside = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
            *out++ = inside ? img[(c * ih + iy) * iw + ix] : 0.0f;
          }
        }
}

}  // namespace

void add_conv_input(HessianAccumulator& h, const Node& conv, const Tensor& x, const Shape& w_shape) {
  const ConvGeometry g = conv_rows_geometry(conv, x, w_shape, h.cols());
  const int64_t positions = g.output_shape[2] * g.output_shape[3];
  // Several images per add when they have few output positions (fewer, larger updates).
  const int64_t per_add = std::max<int64_t>(1, 1024 / std::max<int64_t>(1, positions));
  std::vector<float> rows(static_cast<size_t>(std::min(per_add, x.dim(0)) * positions * h.cols()));
  for (int64_t n0 = 0; n0 < x.dim(0); n0 += per_add) {
    const int64_t images = std::min(per_add, x.dim(0) - n0);
    for (int64_t n = 0; n < images; ++n) conv_rows_of_image(g, x, n0 + n, rows.data() + n * positions * h.cols());
    h.add(rows.data(), images * positions);
  }
}

void add_grouped_conv_input(std::vector<HessianAccumulator>& per_group, const Node& conv, const Tensor& x, const Shape& w_shape) {
  require_plain_f32(x, conv.label().c_str());
  const int64_t groups = conv.i("group", 1);
  if (groups < 1 || static_cast<int64_t>(per_group.size()) != groups || x.rank() != 4 || w_shape.size() != 4 || x.dim(1) % groups != 0 ||
      w_shape[0] % groups != 0 || x.dim(1) / groups != w_shape[1])
    throw std::invalid_argument(fmt::format("{}: input {} and weights {} do not make {} groups", conv.label(), shape_string(x.shape()),
                                            shape_string(w_shape), groups));
  const int64_t n = x.dim(0), in_per_group = x.dim(1) / groups, plane = x.dim(2) * x.dim(3);
  Node one = conv;
  one.attrs["group"] = Attribute{int64_t{1}};
  const Shape w_group{w_shape[0] / groups, in_per_group, w_shape[2], w_shape[3]};
  Tensor slice = Tensor::uninitialized(DType::F32, {n, in_per_group, x.dim(2), x.dim(3)});
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(x.data<float>() + (i * x.dim(1) + g * in_per_group) * plane, in_per_group * plane,
                  slice.data<float>() + i * in_per_group * plane);
    add_conv_input(per_group[static_cast<size_t>(g)], one, slice, w_group);
  }
}

std::vector<float> conv_input_rows(const Node& conv, const Tensor& x, const Shape& w_shape) {
  const ConvGeometry g = conv_rows_geometry(conv, x, w_shape, -1);
  const int64_t per_image = g.output_shape[2] * g.output_shape[3] * x.dim(1) * g.kernel[0] * g.kernel[1];
  std::vector<float> rows(static_cast<size_t>(x.dim(0) * per_image));
  for (int64_t n = 0; n < x.dim(0); ++n) conv_rows_of_image(g, x, n, rows.data() + n * per_image);
  return rows;
}

void add_gemm_input(HessianAccumulator& h, const Node& gemm, const Tensor& a) {
  require_plain_f32(a, gemm.label().c_str());
  if (a.rank() != 2) throw std::invalid_argument(fmt::format("{}: input A must be 2-D, got {}", gemm.label(), shape_string(a.shape())));
  const bool trans = gemm.i("transA", 0) != 0;
  const int64_t m = trans ? a.dim(1) : a.dim(0), k = trans ? a.dim(0) : a.dim(1);
  if (k != h.cols())
    throw std::invalid_argument(fmt::format("{}: rows of {} values for a Hessian of {} columns", gemm.label(), k, h.cols()));
  if (!trans) {
    h.add(a.data<float>(), m);
    return;
  }
  std::vector<float> rows(static_cast<size_t>(m * k));
  const float* src = a.data<float>();
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < m; ++j) rows[static_cast<size_t>(j * k + i)] = src[i * m + j];
  h.add(rows.data(), m);
}

void add_matmul_input(HessianAccumulator& h, const Tensor& x) {
  require_plain_f32(x, "MatMul");
  const int64_t k = x.rank() == 0 ? 1 : x.dim(-1);
  if (k != h.cols())
    throw std::invalid_argument(fmt::format("MatMul: input {} has rows of {} values for a Hessian of {} columns", shape_string(x.shape()), k,
                                            h.cols()));
  h.add(x.data<float>(), x.size() / k);
}

void add_layer_input(HessianAccumulator& h, const Node& layer, const Tensor& x, const Shape& w_shape) {
  if (layer.op_type == "Conv") return add_conv_input(h, layer, x, w_shape);
  if (layer.op_type == "Gemm") return add_gemm_input(h, layer, x);
  if (layer.op_type == "MatMul") return add_matmul_input(h, x);
  throw std::invalid_argument(fmt::format("{}: GPTQ handles Conv, Gemm and MatMul layers", layer.label()));
}

// ---------------------------------------------------------------------------------------------
// GPTQ

namespace {

// Four partial sums: shorter dependency chains than one running sum.
double dot(const double* a, const double* b, size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k) s0 += a[k] * b[k];
  return (s0 + s1) + (s2 + s3);
}

// U (upper triangular, row-major) with H^-1 = U^T U: the upper Cholesky factor of the inverse.
// If H = R R^T with R upper triangular (Cholesky with the order of rows and columns reversed), then
// H^-1 = R^-T R^-1 and U = R^-1, which spares forming H^-1 and factoring it again.
std::vector<double> inverse_upper_cholesky(const std::vector<double>& h, size_t n) {
  std::vector<double> r(n * n, 0.0);
  for (size_t j = n; j-- > 0;) {
    const double* rj = r.data() + j * n;
    const size_t tail = n - j - 1;
    const double s = h[j * n + j] - dot(rj + j + 1, rj + j + 1, tail);
    if (!(s > 0) || !std::isfinite(s))
      throw std::runtime_error(fmt::format("GPTQ: the damped Hessian is not positive definite (pivot {} of {}); raise damp", n - j, n));
    const double d = std::sqrt(s);
    r[j * n + j] = d;
    for (size_t i = 0; i < j; ++i) {
      const double* ri = r.data() + i * n;
      r[i * n + j] = (h[i * n + j] - dot(ri + j + 1, rj + j + 1, tail)) / d;
    }
  }
  // U = R^-1, row by row from the bottom: U[i][j] = -(sum_{i<k<=j} R[i][k] U[k][j]) / R[i][i].
  std::vector<double> u(n * n, 0.0), acc(n);
  for (size_t i = n; i-- > 0;) {
    std::fill(acc.begin() + static_cast<std::ptrdiff_t>(i), acc.end(), 0.0);
    for (size_t k = i + 1; k < n; ++k) {
      const double a = r[i * n + k];
      const double* uk = u.data() + k * n;
      for (size_t j = k; j < n; ++j) acc[j] += a * uk[j];
    }
    const double d = r[i * n + i];
    u[i * n + i] = 1 / d;
    for (size_t j = i + 1; j < n; ++j) u[i * n + j] = -acc[j] / d;
  }
  return u;
}

void check_sizes(size_t w_size, int64_t rows, int64_t cols, size_t h_size, const char* what) {
  if (rows < 1 || cols < 1) throw std::invalid_argument(fmt::format("{}: {} x {} weights; both must be at least 1", what, rows, cols));
  if (w_size != static_cast<size_t>(rows * cols))
    throw std::invalid_argument(fmt::format("{}: {} weights do not make {} x {}", what, w_size, rows, cols));
  if (h_size != static_cast<size_t>(cols * cols))
    throw std::invalid_argument(fmt::format("{}: the Hessian has {} entries; {} columns need {} x {}", what, h_size, cols, cols, cols));
}

}  // namespace

GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, const std::vector<double>& hessian,
                         const QuantizerConfig& cfg, const GptqOptions& opt, std::span<const int64_t> weight_shape) {
  if (!cfg.format.scalar())
    throw std::invalid_argument(fmt::format("GPTQ needs a scalar format, not {} (block and BitMoD formats carry their own scales)",
                                            cfg.format.to_string()));
  check_sizes(w.size(), rows, cols, hessian.size(), "GPTQ");
  const Shape shape = weight_shape.empty() ? Shape{rows, cols} : Shape(weight_shape.begin(), weight_shape.end());
  if (shape_size(shape) != rows * cols)
    throw std::invalid_argument(fmt::format("GPTQ: weight shape {} does not hold {} x {} weights", shape_string(shape), rows, cols));
  if (!(opt.damp >= 0) || !std::isfinite(opt.damp)) throw std::invalid_argument(fmt::format("GPTQ: damp must be >= 0, got {}", opt.damp));
  if (opt.block_size < 1) throw std::invalid_argument(fmt::format("GPTQ: block size must be at least 1, got {}", opt.block_size));
  for (size_t k = 0; k < w.size(); ++k)
    if (!std::isfinite(w[k])) throw std::invalid_argument(fmt::format("GPTQ: weight {} is not finite ({})", k, w[k]));
  for (size_t k = 0; k < hessian.size(); ++k)
    if (!std::isfinite(hessian[k])) throw std::invalid_argument(fmt::format("GPTQ: Hessian entry {} is not finite", k));

  const size_t R = static_cast<size_t>(rows), C = static_cast<size_t>(cols);
  GptqResult result;
  std::vector<double> h = hessian;
  // Dead inputs (always zero on the calibration data): their weights cannot matter; zero them, as the
  // reference implementation does, before the scales are taken.
  std::vector<float> w0(w.begin(), w.end());
  for (size_t i = 0; i < C; ++i) {
    if (h[i * C + i] != 0) continue;
    h[i * C + i] = 1;
    for (size_t r = 0; r < R; ++r) w0[r * C + i] = 0;
    ++result.dead_columns;
  }

  // Scales of every slice from the weights before any update, by lowbit's own observer and rules.
  Quantizer q(cfg);
  q.observe(w0, shape);
  result.params = q.compute_params();
  // Scale (and zero point) of every element, columns contiguous: colscale[c * R + r].
  std::vector<float> colscale(R * C), colzero(result.params.zero_point.empty() ? 0 : R * C);
  for (const detail::Run& run : detail::slice_layout(cfg, shape, w.size()).runs)
    for (size_t k = run.begin; k < run.begin + run.length; ++k) {
      const size_t t = (k % C) * R + k / C;
      colscale[t] = result.params.scale[run.slice];
      if (!colzero.empty()) colzero[t] = result.params.zero_point[run.slice];
    }

  std::vector<size_t> perm(C);
  std::iota(perm.begin(), perm.end(), size_t{0});
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) { return h[a * C + a] > h[b * C + b]; });
  std::vector<double> hp(C * C);
  double mean_diag = 0;
  for (size_t i = 0; i < C; ++i) mean_diag += h[i * C + i];
  mean_diag /= static_cast<double>(C);
  for (size_t i = 0; i < C; ++i)
    for (size_t j = 0; j < C; ++j) hp[i * C + j] = h[perm[i] * C + perm[j]];
  for (size_t i = 0; i < C; ++i) hp[i * C + i] += opt.damp * mean_diag;
  const std::vector<double> u = inverse_upper_cholesky(hp, C);

  // Work on the transpose in quantization order: column k of W is wt[k * R ...], contiguous.
  std::vector<double> wt(C * R);
  for (size_t k = 0; k < C; ++k)
    for (size_t r = 0; r < R; ++r) wt[k * R + r] = w0[r * C + perm[k]];

  // One column at a time through the Quantizer, one scale per element (row).
  QuantizerConfig colcfg = cfg;
  colcfg.granularity = Granularity::Channel;
  colcfg.axis = 0;
  colcfg.threads = 1;
  const Shape colshape{rows, 1};
  std::vector<float> colin(R), colq(R);
  auto quantize_column = [&](size_t orig) {
    colcfg.seed = cfg.seed ^ static_cast<uint32_t>(orig * 0x9E3779B9u);  // stochastic rounding: other bits per column
    Quantizer cq(colcfg);
    QuantParams p;
    p.scale.assign(colscale.begin() + static_cast<std::ptrdiff_t>(orig * R), colscale.begin() + static_cast<std::ptrdiff_t>((orig + 1) * R));
    if (!colzero.empty())
      p.zero_point.assign(colzero.begin() + static_cast<std::ptrdiff_t>(orig * R), colzero.begin() + static_cast<std::ptrdiff_t>((orig + 1) * R));
    cq.set_params(std::move(p));
    cq.fake_quant(colin, colq, colshape);
  };

  result.weights.assign(R * C, 0.0f);
  const size_t block = static_cast<size_t>(opt.block_size);
  std::vector<double> err(block * R);
  for (size_t i1 = 0; i1 < C; i1 += block) {
    const size_t i2 = std::min(C, i1 + block);
    for (size_t i = i1; i < i2; ++i) {
      const double* wi = wt.data() + i * R;
      for (size_t r = 0; r < R; ++r) colin[r] = static_cast<float>(wi[r]);
      quantize_column(perm[i]);
      const double d = u[i * C + i];
      double* e = err.data() + (i - i1) * R;
      for (size_t r = 0; r < R; ++r) {
        result.weights[r * C + perm[i]] = colq[r];
        e[r] = (wi[r] - colq[r]) / d;
      }
      for (size_t j = i + 1; j < i2; ++j) {
        const double a = u[i * C + j];
        double* wj = wt.data() + j * R;
        for (size_t r = 0; r < R; ++r) wj[r] -= e[r] * a;
      }
    }
    // Lazy batch update: the block's errors reach the later columns all at once.
    parallel_chunks(C - i2, cfg.threads, 1, [&](size_t b, size_t end) {
      for (size_t j = i2 + b; j < i2 + end; ++j) {
        double* wj = wt.data() + j * R;
        size_t i = i1;
        for (; i + 4 <= i2; i += 4) {  // four error columns per pass over column j
          const double a0 = u[i * C + j], a1 = u[(i + 1) * C + j], a2 = u[(i + 2) * C + j], a3 = u[(i + 3) * C + j];
          const double* e0 = err.data() + (i - i1) * R;
          const double *e1 = e0 + R, *e2 = e1 + R, *e3 = e2 + R;
          for (size_t r = 0; r < R; ++r) wj[r] -= (e0[r] * a0 + e1[r] * a1) + (e2[r] * a2 + e3[r] * a3);
        }
        for (; i < i2; ++i) {
          const double a = u[i * C + j];
          const double* e = err.data() + (i - i1) * R;
          for (size_t r = 0; r < R; ++r) wj[r] -= e[r] * a;
        }
      }
    });
  }
  return result;
}

GptqResult gptq_quantize_layer(const Node& layer, const Tensor& w, const std::vector<double>& hessian, const QuantizerConfig& cfg,
                               const GptqOptions& opt) {
  if (w.dtype() != DType::F32) throw std::invalid_argument(fmt::format("{}: GPTQ needs float32 weights", layer.label()));
  if (layer.op_type == "Conv" && layer.i("group", 1) != 1)
    throw std::invalid_argument(fmt::format("{}: GPTQ handles convolutions with group = 1 only, this one has group = {}", layer.label(),
                                            layer.i("group", 1)));
  const bool direct = layer.op_type == "Conv" || (layer.op_type == "Gemm" && layer.i("transB", 0) != 0);
  if (direct) {
    if (w.rank() < 2) throw std::invalid_argument(fmt::format("{}: weights {} are not a matrix", layer.label(), shape_string(w.shape())));
    return gptq_quantize(w.span<float>(), w.dim(0), w.size() / w.dim(0), hessian, cfg, opt, w.shape());
  }
  if (layer.op_type != "Gemm" && layer.op_type != "MatMul")
    throw std::invalid_argument(fmt::format("{}: GPTQ handles Conv, Gemm and MatMul layers", layer.label()));
  if (w.rank() != 2)
    throw std::invalid_argument(fmt::format("{}: GPTQ needs 2-D weights [K, N], got {}", layer.label(), shape_string(w.shape())));
  // [K, N]: quantize the transpose [N, K], with the config's axes turned with it.
  const int64_t k = w.dim(0), n = w.dim(1);
  QuantizerConfig c = cfg;
  if (c.granularity == Granularity::Token)
    throw std::invalid_argument(fmt::format("{}: token granularity does not apply to weights", layer.label()));
  if (c.granularity == Granularity::Channel || c.granularity == Granularity::Group) {
    if (c.axis < -2 || c.axis > 1) throw std::invalid_argument(fmt::format("{}: axis {} out of range for 2-D weights", layer.label(), c.axis));
    c.axis = 1 - (c.axis < 0 ? c.axis + 2 : c.axis);
  }
  const float* src = w.data<float>();
  std::vector<float> t(static_cast<size_t>(k * n));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < n; ++j) t[static_cast<size_t>(j * k + i)] = src[i * n + j];
  GptqResult res = gptq_quantize(t, n, k, hessian, c, opt);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < n; ++j) t[static_cast<size_t>(i * n + j)] = res.weights[static_cast<size_t>(j * k + i)];
  res.weights = std::move(t);
  return res;
}

GptqResult gptq_quantize_grouped_conv(const Node& conv, const Tensor& w, const std::vector<std::vector<double>>& hessians,
                                      const QuantizerConfig& cfg, const GptqOptions& opt) {
  const int64_t groups = conv.i("group", 1);
  if (conv.op_type != "Conv" || w.dtype() != DType::F32 || w.rank() < 3 || groups < 1 || w.dim(0) % groups != 0 ||
      static_cast<int64_t>(hessians.size()) != groups)
    throw std::invalid_argument(fmt::format("{}: weights {} and {} Hessians do not make {} groups", conv.label(), shape_string(w.shape()),
                                            hessians.size(), groups));
  if (cfg.granularity != Granularity::Channel || cfg.axis != 0)
    throw std::invalid_argument(fmt::format("{}: GPTQ of a grouped convolution needs per-output-channel scales (axis 0)", conv.label()));
  const int64_t rows = w.dim(0) / groups, cols = w.size() / w.dim(0);
  Shape group_shape = w.shape();
  group_shape[0] = rows;
  GptqResult out;
  out.weights.reserve(static_cast<size_t>(w.size()));
  for (int64_t g = 0; g < groups; ++g) {
    std::span<const float> wg(w.data<float>() + g * rows * cols, static_cast<size_t>(rows * cols));
    GptqResult r = gptq_quantize(wg, rows, cols, hessians[static_cast<size_t>(g)], cfg, opt, group_shape);
    out.weights.insert(out.weights.end(), r.weights.begin(), r.weights.end());
    out.params.scale.insert(out.params.scale.end(), r.params.scale.begin(), r.params.scale.end());
    out.params.zero_point.insert(out.params.zero_point.end(), r.params.zero_point.begin(), r.params.zero_point.end());
    out.dead_columns += r.dead_columns;
  }
  return out;
}

double layer_output_error(std::span<const float> w, std::span<const float> wq, int64_t rows, int64_t cols, const std::vector<double>& hessian) {
  check_sizes(w.size(), rows, cols, hessian.size(), "layer_output_error");
  if (wq.size() != w.size())
    throw std::invalid_argument(fmt::format("layer_output_error: {} quantized weights for {} weights", wq.size(), w.size()));
  const size_t C = static_cast<size_t>(cols), R = static_cast<size_t>(rows);
  // Eight rows of D = W - Wq per pass over H: t_b = H d_b, then d_b . t_b.
  constexpr size_t kRows = 8;
  std::vector<double> d(kRows * C), t(kRows * C);
  double total = 0;
  for (size_t r0 = 0; r0 < R; r0 += kRows) {
    const size_t m = std::min(kRows, R - r0);
    for (size_t k = 0; k < m * C; ++k) d[k] = static_cast<double>(w[r0 * C + k]) - wq[r0 * C + k];
    std::fill(t.begin(), t.end(), 0.0);
    for (size_t i = 0; i < C; ++i) {
      const double* hi = hessian.data() + i * C;
      for (size_t b = 0; b < m; ++b) {
        const double a = d[b * C + i];
        if (a == 0) continue;
        double* tb = t.data() + b * C;
        for (size_t j = 0; j < C; ++j) tb[j] += a * hi[j];
      }
    }
    for (size_t k = 0; k < m * C; ++k) total += d[k] * t[k];
  }
  return total;
}

}  // namespace lowbit
