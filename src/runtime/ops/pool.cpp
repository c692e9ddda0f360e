// Pooling: MaxPool, AveragePool, LpPool and their Global forms over [N, C, spatial...] with 1 to 3
// spatial dimensions. Windows are reduced separably: the rows of a window (the outer spatial
// dimensions) are first combined element-wise into one row buffer, a contiguous loop that vectorizes,
// then each output reads its horizontal window from that buffer. Channels-last float32 inputs (the
// executor's convolutions produce them) are pooled in that layout, vectorized over the channels.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

namespace {

enum class Mode { Max, Avg, Lp };

// Planes times plane size above which a pool runs on several threads.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// The spatial dimensions padded in front to 3 (a 1-D pool is [1, 1, W], a 2-D one [1, H, W]); the
// padded dimensions have kernel, stride and dilation 1 and no pads.
struct PoolGeometry {
  int64_t planes = 0;  // N * C
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1},
      pad_begin{0, 0, 0}, pad_end{0, 0, 0};
  Shape output_shape;
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

PoolGeometry pool_geometry(const Node& n, const Shape& x) {
  if (x.size() < 3 || x.size() > 5)
    throw std::runtime_error(fmt::format("input {} must be [N, C, spatial...] with 1 to 3 spatial dimensions", shape_string(x)));
  size_t sp = x.size() - 2;
  std::vector<int64_t> kernel = n.ints("kernel_shape");
  std::vector<int64_t> strides = n.ints("strides", std::vector<int64_t>(sp, 1));
  std::vector<int64_t> dilations = n.ints("dilations", std::vector<int64_t>(sp, 1));
  std::vector<int64_t> pads = n.ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (kernel.size() != sp || strides.size() != sp || dilations.size() != sp || pads.size() != 2 * sp)
    throw std::runtime_error(fmt::format("kernel_shape, strides, dilations or pads do not match {} spatial dimensions", sp));
  std::string auto_pad = n.s("auto_pad", "NOTSET");
  bool ceil_mode = n.i("ceil_mode", 0) != 0;
  PoolGeometry g;
  g.planes = x[0] * x[1];
  g.output_shape = {x[0], x[1]};
  for (size_t k = 0; k < sp; ++k) {
    size_t a = 3 - sp + k;
    int64_t in = x[k + 2], kk = kernel[k], s = strides[k], d = dilations[k];
    if (kk < 1 || s < 1 || d < 1) throw std::runtime_error("kernel_shape, strides and dilations must be positive");
    int64_t eff = (kk - 1) * d + 1, pb = 0, pe = 0, out = 0;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + eff - in);
      // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning.
      pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
    } else if (auto_pad == "VALID" || auto_pad == "NOTSET") {
      if (auto_pad == "NOTSET") {
        pb = pads[k];
        pe = pads[k + sp];
      }
      if (pb < 0 || pe < 0 || pb >= eff || pe >= eff)
        throw std::runtime_error(fmt::format("pads {} must be at least 0 and smaller than the kernel", shape_string(pads)));
      int64_t span = in + pb + pe - eff;
      if (span < 0) throw std::runtime_error(fmt::format("kernel larger than the padded input {}", shape_string(x)));
      out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
      // With ceil_mode a last window that would start in the end padding is dropped (ONNX, PyTorch).
      if (ceil_mode && (out - 1) * s >= in + pb) --out;
    } else {
      throw std::runtime_error(fmt::format("unknown auto_pad '{}'", auto_pad));
    }
    g.in[a] = in;
    g.out[a] = out;
    g.kernel[a] = kk;
    g.stride[a] = s;
    g.dilation[a] = d;
    g.pad_begin[a] = pb;
    g.pad_end[a] = pe;
    g.output_shape.push_back(out);
  }
  return g;
}

// The kernel taps [first, last) of a window starting at `start` that fall in [lo, hi).
std::pair<int64_t, int64_t> taps(int64_t start, int64_t kernel, int64_t dilation, int64_t lo, int64_t hi) {
  int64_t first = start >= lo ? 0 : (lo - start + dilation - 1) / dilation;
  int64_t last = hi <= start ? 0 : std::min(kernel, (hi - start + dilation - 1) / dilation);
  return {first, std::max(first, last)};
}

struct PoolOptions {
  bool count_include_pad = false;
  int64_t p = 2;  // LpPool
};

// The horizontal windows, the same for every output row: per output column the valid taps [first, last)
// and the number of taps inside the padded row; columns [lo, hi) have every tap inside the row.
struct Columns {
  std::vector<int64_t> first, last, padded;
  int64_t lo = 0, hi = 0;
};

Columns columns(const PoolGeometry& g) {
  Columns c;
  const int64_t W = g.in[2], s = g.stride[2], k = g.kernel[2], dil = g.dilation[2], pb = g.pad_begin[2];
  for (int64_t ow = 0; ow < g.out[2]; ++ow) {
    auto [w0, w1] = taps(ow * s - pb, k, dil, 0, W);
    auto [p0, p1] = taps(ow * s - pb, k, dil, -pb, W + g.pad_end[2]);
    c.first.push_back(w0);
    c.last.push_back(w1);
    c.padded.push_back(p1 - p0);
  }
  // ow * s - pb >= 0 and ow * s - pb + (k - 1) * dil < W.
  c.lo = std::min(g.out[2], (pb + s - 1) / s);
  int64_t span = W - (k - 1) * dil + pb;
  c.hi = std::max(c.lo, span <= 0 ? 0 : std::min(g.out[2], (span + s - 1) / s));
  return c;
}

template <class T, Mode M>
T combine(T acc, T v) {
  if constexpr (M == Mode::Max)
    return v > acc ? v : acc;
  else
    return acc + v;
}

template <class T, Mode M>
void pool_plane(const T* x, T* y, const PoolGeometry& g, const Columns& cols, const PoolOptions& opt, std::vector<T>& buf) {
  const int64_t H = g.in[1], W = g.in[2], OW = g.out[2];
  const int64_t s = g.stride[2], k = g.kernel[2], dil = g.dilation[2], pb = g.pad_begin[2];
  const T init = M == Mode::Max ? std::numeric_limits<T>::lowest() : T(0);
  buf.resize(static_cast<size_t>(W));
  T* b = buf.data();
  for (int64_t od = 0; od < g.out[0]; ++od) {
    int64_t sd = od * g.stride[0] - g.pad_begin[0];
    auto [d0, d1] = taps(sd, g.kernel[0], g.dilation[0], 0, g.in[0]);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      int64_t sh = oh * g.stride[1] - g.pad_begin[1];
      auto [h0, h1] = taps(sh, g.kernel[1], g.dilation[1], 0, H);
      T* o = y + (od * g.out[1] + oh) * OW;
      int64_t rows = (d1 - d0) * (h1 - h0);
      if (rows == 0) {
        std::fill(o, o + OW, init);
        continue;
      }
      // Vertical pass: combine the window's valid rows.
      bool first = true;
      for (int64_t kd = d0; kd < d1; ++kd)
        for (int64_t kh = h0; kh < h1; ++kh) {
          const T* row = x + ((sd + kd * g.dilation[0]) * H + sh + kh * g.dilation[1]) * W;
          if constexpr (M == Mode::Lp) {
            if (first) std::fill(b, b + W, T(0));
            if (opt.p == 2)
              for (int64_t w = 0; w < W; ++w) b[w] += row[w] * row[w];
            else
              for (int64_t w = 0; w < W; ++w) b[w] += static_cast<T>(std::pow(std::abs(row[w]), static_cast<T>(opt.p)));
          } else if (first) {
            std::copy(row, row + W, b);
          } else {
            for (int64_t w = 0; w < W; ++w) b[w] = combine<T, M>(b[w], row[w]);
          }
          first = false;
        }
      // Horizontal pass: the edge columns tap by tap, the interior one tap at a time over all columns.
      auto edge = [&](int64_t ow) {
        const T* bw = b + ow * s - pb;
        T acc = init;
        for (int64_t kw = cols.first[static_cast<size_t>(ow)]; kw < cols.last[static_cast<size_t>(ow)]; ++kw)
          acc = combine<T, M>(acc, bw[kw * dil]);
        o[ow] = acc;
      };
      for (int64_t ow = 0; ow < cols.lo; ++ow) edge(ow);
      for (int64_t ow = cols.hi; ow < OW; ++ow) edge(ow);
      if (cols.lo < cols.hi) {
        const int64_t n = cols.hi - cols.lo;
        const T* b0 = b + cols.lo * s - pb;
        T* oo = o + cols.lo;
        for (int64_t i = 0; i < n; ++i) oo[i] = b0[i * s];
        for (int64_t kw = 1; kw < k; ++kw) {
          const T* bk = b0 + kw * dil;
          for (int64_t i = 0; i < n; ++i) oo[i] = combine<T, M>(oo[i], bk[i * s]);
        }
      }
      if constexpr (M == Mode::Avg) {
        int64_t padded_rows = 0;
        if (opt.count_include_pad) {
          auto [pd0, pd1] = taps(sd, g.kernel[0], g.dilation[0], -g.pad_begin[0], g.in[0] + g.pad_end[0]);
          auto [ph0, ph1] = taps(sh, g.kernel[1], g.dilation[1], -g.pad_begin[1], H + g.pad_end[1]);
          padded_rows = (pd1 - pd0) * (ph1 - ph0);
        }
        for (int64_t ow = 0; ow < OW; ++ow) {
          auto w = static_cast<size_t>(ow);
          int64_t count = opt.count_include_pad ? padded_rows * cols.padded[w] : rows * (cols.last[w] - cols.first[w]);
          o[ow] = count > 0 ? o[ow] / static_cast<T>(count) : T(0);
        }
      } else if constexpr (M == Mode::Lp) {
        for (int64_t ow = 0; ow < OW; ++ow)
          o[ow] = opt.p == 2 ? std::sqrt(o[ow]) : static_cast<T>(std::pow(o[ow], T(1) / static_cast<T>(opt.p)));
      }
    }
  }
}

template <class T, Mode M>
Tensor pool(const Tensor& x, const PoolGeometry& g, const PoolOptions& opt, int threads) {
  Tensor y = Tensor::uninitialized(x.dtype(), g.output_shape);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  const Columns cols = columns(g);
  int64_t in_plane = g.in_plane(), out_plane = g.out_plane();
  bool parallel = g.planes * in_plane > kParallelElements && g.planes > 1 && threads > 1;
#pragma omp parallel num_threads(threads) if (parallel)
  {
    std::vector<T> buf;
#pragma omp for
    for (int64_t p = 0; p < g.planes; ++p) pool_plane<T, M>(xp + p * in_plane, yp + p * out_plane, g, cols, opt, buf);
  }
  return y;
}

// MaxPool with its Indices output: a direct scan of each window in row-major order, so ties give the
// first element like the reference. Indices count over the whole input; storage_order 1 numbers the
// spatial positions column-major.
template <class T>
void max_pool_with_indices(const Tensor& x, const PoolGeometry& g, bool column_major, int threads, Tensor& y, Tensor& idx) {
  y = Tensor::uninitialized(x.dtype(), g.output_shape);
  idx = Tensor::uninitialized(DType::I64, g.output_shape);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  int64_t* ip = idx.data<int64_t>();
  const int64_t D = g.in[0], H = g.in[1], W = g.in[2], in_plane = g.in_plane(), out_plane = g.out_plane();
  bool parallel = g.planes * in_plane > kParallelElements && g.planes > 1 && threads > 1;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xs = xp + p * in_plane;
    int64_t o = p * out_plane;
    for (int64_t od = 0; od < g.out[0]; ++od) {
      int64_t sd = od * g.stride[0] - g.pad_begin[0];
      auto [d0, d1] = taps(sd, g.kernel[0], g.dilation[0], 0, D);
      for (int64_t oh = 0; oh < g.out[1]; ++oh) {
        int64_t sh = oh * g.stride[1] - g.pad_begin[1];
        auto [h0, h1] = taps(sh, g.kernel[1], g.dilation[1], 0, H);
        for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          int64_t sw = ow * g.stride[2] - g.pad_begin[2];
          auto [w0, w1] = taps(sw, g.kernel[2], g.dilation[2], 0, W);
          T best = std::numeric_limits<T>::lowest();
          int64_t at = -1;
          for (int64_t kd = d0; kd < d1; ++kd)
            for (int64_t kh = h0; kh < h1; ++kh)
              for (int64_t kw = w0; kw < w1; ++kw) {
                int64_t d = sd + kd * g.dilation[0], h = sh + kh * g.dilation[1], w = sw + kw * g.dilation[2];
                T v = xs[(d * H + h) * W + w];
                if (at < 0 || v > best) {
                  best = v;
                  at = column_major ? d + h * D + w * D * H : (d * H + h) * W + w;
                }
              }
          yp[o] = best;
          ip[o] = at < 0 ? -1 : p * in_plane + at;
        }
      }
    }
  }
}

// Max or average pooling of a channels-last float32 tensor ([N, spatial..., C] in memory): each output
// pixel combines the C-vectors of its window, contiguous loops over the channels. The output stays
// channels-last.
template <Mode M>
Tensor pool_channels_last(const Tensor& x, const PoolGeometry& g, const PoolOptions& opt, int threads) {
  require_dtype(x, DType::F32, "a channels-last input");
  const int64_t C = x.shape()[1], H = g.in[1], W = g.in[2], out_plane = g.out_plane();
  const int64_t pixels = x.shape()[0] * out_plane;
  Tensor y = Tensor::uninitialized(DType::F32, g.output_shape);
  y.set_channels_last(true);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  bool parallel = x.size() > kParallelElements && pixels > 1 && threads > 1;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t q = 0; q < pixels; ++q) {
    int64_t n = q / out_plane, r = q % out_plane;
    int64_t od = r / (g.out[1] * g.out[2]), oh = r / g.out[2] % g.out[1], ow = r % g.out[2];
    int64_t sd = od * g.stride[0] - g.pad_begin[0], sh = oh * g.stride[1] - g.pad_begin[1],
            sw = ow * g.stride[2] - g.pad_begin[2];
    auto [d0, d1] = taps(sd, g.kernel[0], g.dilation[0], 0, g.in[0]);
    auto [h0, h1] = taps(sh, g.kernel[1], g.dilation[1], 0, H);
    auto [w0, w1] = taps(sw, g.kernel[2], g.dilation[2], 0, W);
    float* o = yp + q * C;
    bool first = true;
    for (int64_t kd = d0; kd < d1; ++kd)
      for (int64_t kh = h0; kh < h1; ++kh)
        for (int64_t kw = w0; kw < w1; ++kw) {
          int64_t d = sd + kd * g.dilation[0], h = sh + kh * g.dilation[1], w = sw + kw * g.dilation[2];
          const float* p = xp + (((n * g.in[0] + d) * H + h) * W + w) * C;
          if (first)
            std::copy(p, p + C, o);
          else if constexpr (M == Mode::Max)
            for (int64_t c = 0; c < C; ++c) o[c] = p[c] > o[c] ? p[c] : o[c];
          else
            for (int64_t c = 0; c < C; ++c) o[c] += p[c];
          first = false;
        }
    if (first) std::fill(o, o + C, M == Mode::Max ? std::numeric_limits<float>::lowest() : 0.f);
    if constexpr (M == Mode::Avg) {
      int64_t count = (d1 - d0) * (h1 - h0) * (w1 - w0);
      if (opt.count_include_pad) {
        auto [pd0, pd1] = taps(sd, g.kernel[0], g.dilation[0], -g.pad_begin[0], g.in[0] + g.pad_end[0]);
        auto [ph0, ph1] = taps(sh, g.kernel[1], g.dilation[1], -g.pad_begin[1], H + g.pad_end[1]);
        auto [pw0, pw1] = taps(sw, g.kernel[2], g.dilation[2], -g.pad_begin[2], W + g.pad_end[2]);
        count = (pd1 - pd0) * (ph1 - ph0) * (pw1 - pw0);
      }
      float scale = count > 0 ? 1.f / static_cast<float>(count) : 0.f;
      for (int64_t c = 0; c < C; ++c) o[c] *= scale;
    }
  }
  return y;
}

// Global max or average of a channels-last float32 tensor. The result [N, C, 1, ...] has the same
// bytes in both layouts, so it is returned plain.
template <Mode M>
Tensor global_pool_channels_last(const Tensor& x, int threads) {
  require_dtype(x, DType::F32, "a channels-last input");
  const int64_t N = x.shape()[0], C = x.shape()[1], pixels = N * C > 0 ? x.size() / (N * C) : 0;
  Shape shape = x.shape();
  std::fill(shape.begin() + 2, shape.end(), 1);
  Tensor y = Tensor::uninitialized(DType::F32, shape);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  bool parallel = x.size() > kParallelElements && N > 1 && threads > 1;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t n = 0; n < N; ++n) {
    float* o = yp + n * C;
    std::fill(o, o + C, M == Mode::Max ? std::numeric_limits<float>::lowest() : 0.f);
    for (int64_t q = 0; q < pixels; ++q) {
      const float* p = xp + (n * pixels + q) * C;
      if constexpr (M == Mode::Max)
        for (int64_t c = 0; c < C; ++c) o[c] = p[c] > o[c] ? p[c] : o[c];
      else
        for (int64_t c = 0; c < C; ++c) o[c] += p[c];
    }
    if constexpr (M == Mode::Avg) {
      float scale = pixels > 0 ? 1.f / static_cast<float>(pixels) : 0.f;
      for (int64_t c = 0; c < C; ++c) o[c] *= scale;
    }
  }
  return y;
}

bool wants_output(const Node& n, size_t k) { return k < n.outputs.size() && !n.outputs[k].empty(); }

std::runtime_error unsupported_type(const Tensor& x) {
  return std::runtime_error(fmt::format("element type {} is not supported", to_string(x.dtype())));
}

using PoolFn = void (*)(const Node&, int threads, const Tensor& x, std::span<Tensor> out);

class PoolKernel final : public Kernel {
 public:
  PoolKernel(const KernelContext& c, PoolFn f, bool channels_last) : node_(c.node), threads_(c.threads), f_(f),
                                                                     channels_last_(channels_last) {}
  bool accepts_channels_last(size_t k) const override { return k == 0 && channels_last_; }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override { f_(node_, threads_, input(in, 0), out); }

 private:
  const Node& node_;
  int threads_;
  PoolFn f_;
  bool channels_last_;
};

KernelFactory pool_kernel(PoolFn f, bool channels_last) {
  return [f, channels_last](const KernelContext& c) { return std::make_unique<PoolKernel>(c, f, channels_last); };
}

void max_pool(const Node& n, int threads, const Tensor& x, std::span<Tensor> out) {
  PoolGeometry g = pool_geometry(n, x.shape());
  if (x.channels_last()) {
    out[0] = pool_channels_last<Mode::Max>(x, g, {}, threads);
    return;
  }
  if (wants_output(n, 1)) {
    int64_t order = n.i("storage_order", 0);
    if (order != 0 && order != 1) throw std::runtime_error(fmt::format("storage_order must be 0 or 1, got {}", order));
    switch (x.dtype()) {
      case DType::F32: max_pool_with_indices<float>(x, g, order == 1, threads, out[0], out[1]); break;
      case DType::F64: max_pool_with_indices<double>(x, g, order == 1, threads, out[0], out[1]); break;
      case DType::I8: max_pool_with_indices<int8_t>(x, g, order == 1, threads, out[0], out[1]); break;
      case DType::U8: max_pool_with_indices<uint8_t>(x, g, order == 1, threads, out[0], out[1]); break;
      default: throw unsupported_type(x);
    }
    return;
  }
  switch (x.dtype()) {
    case DType::F32: out[0] = pool<float, Mode::Max>(x, g, {}, threads); break;
    case DType::F64: out[0] = pool<double, Mode::Max>(x, g, {}, threads); break;
    case DType::I8: out[0] = pool<int8_t, Mode::Max>(x, g, {}, threads); break;
    case DType::U8: out[0] = pool<uint8_t, Mode::Max>(x, g, {}, threads); break;
    default: throw unsupported_type(x);
  }
}

template <Mode M>
void float_pool(const Node& n, int threads, const Tensor& x, std::span<Tensor> out) {
  PoolGeometry g = pool_geometry(n, x.shape());
  PoolOptions opt{n.i("count_include_pad", 0) != 0, n.i("p", 2)};
  if (M == Mode::Lp && opt.p < 1) throw std::runtime_error(fmt::format("p must be at least 1, got {}", opt.p));
  if constexpr (M != Mode::Lp) {
    if (x.channels_last()) {
      out[0] = pool_channels_last<M>(x, g, opt, threads);
      return;
    }
  }
  switch (x.dtype()) {
    case DType::F32: out[0] = pool<float, M>(x, g, opt, threads); break;
    case DType::F64: out[0] = pool<double, M>(x, g, opt, threads); break;
    default: throw unsupported_type(x);
  }
}

// A contiguous reduction written with independent partial results so that it vectorizes.
template <class T, Mode M>
T reduce_plane(const T* x, int64_t n, int64_t p) {
  constexpr int kLanes = 8;
  T acc[kLanes];
  std::fill(acc, acc + kLanes, M == Mode::Max ? std::numeric_limits<T>::lowest() : T(0));
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      T v = x[i + j];
      if constexpr (M == Mode::Max)
        acc[j] = v > acc[j] ? v : acc[j];
      else if constexpr (M == Mode::Avg)
        acc[j] += v;
      else
        acc[j] += p == 2 ? v * v : static_cast<T>(std::pow(std::abs(v), static_cast<T>(p)));
    }
  for (; i < n; ++i) {
    T v = x[i];
    if constexpr (M == Mode::Max)
      acc[0] = v > acc[0] ? v : acc[0];
    else if constexpr (M == Mode::Avg)
      acc[0] += v;
    else
      acc[0] += p == 2 ? v * v : static_cast<T>(std::pow(std::abs(v), static_cast<T>(p)));
  }
  T r = acc[0];
  for (int j = 1; j < kLanes; ++j) r = M == Mode::Max ? (acc[j] > r ? acc[j] : r) : r + acc[j];
  if constexpr (M == Mode::Avg) r = n > 0 ? r / static_cast<T>(n) : T(0);
  if constexpr (M == Mode::Lp) r = p == 2 ? std::sqrt(r) : static_cast<T>(std::pow(r, T(1) / static_cast<T>(p)));
  return r;
}

template <class T, Mode M>
Tensor global_pool(const Tensor& x, int64_t p, int threads) {
  Shape shape = x.shape();
  int64_t planes = shape[0] * shape[1];
  int64_t n = planes > 0 ? x.size() / planes : 0;
  std::fill(shape.begin() + 2, shape.end(), 1);
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  bool parallel = x.size() > kParallelElements && planes > 1 && threads > 1;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t q = 0; q < planes; ++q) yp[q] = reduce_plane<T, M>(xp + q * n, n, p);
  return y;
}

template <Mode M>
void global_pool_op(const Node& n, int threads, const Tensor& x, std::span<Tensor> out) {
  if (x.rank() < 2) throw std::runtime_error(fmt::format("input {} must be [N, C, ...]", shape_string(x.shape())));
  int64_t p = n.i("p", 2);
  if (M == Mode::Lp && p < 1) throw std::runtime_error(fmt::format("p must be at least 1, got {}", p));
  if constexpr (M != Mode::Lp) {
    if (x.channels_last()) {
      out[0] = global_pool_channels_last<M>(x, threads);
      return;
    }
  }
  switch (x.dtype()) {
    case DType::F32: out[0] = global_pool<float, M>(x, p, threads); break;
    case DType::F64: out[0] = global_pool<double, M>(x, p, threads); break;
    default: throw unsupported_type(x);
  }
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  // MaxPool takes channels-last input unless it must also give Indices (which count NCHW positions).
  r.add("", "MaxPool", [](const KernelContext& c) {
    return std::make_unique<PoolKernel>(c, max_pool, !wants_output(c.node, 1));
  });
  r.add("", "AveragePool", pool_kernel(float_pool<Mode::Avg>, true));
  r.add("", "LpPool", pool_kernel(float_pool<Mode::Lp>, false));
  r.add("", "GlobalMaxPool", pool_kernel(global_pool_op<Mode::Max>, true));
  r.add("", "GlobalAveragePool", pool_kernel(global_pool_op<Mode::Avg>, true));
  r.add("", "GlobalLpPool", pool_kernel(global_pool_op<Mode::Lp>, false));
}

}  // namespace lowbit
