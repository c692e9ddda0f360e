// Reductions and normalizations: Softmax / LogSoftmax / Hardmax, the Reduce* family,
// ArgMax / ArgMin, LayerNormalization, InstanceNormalization and LpNormalization.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"
#include "src/runtime/ops/dispatch.hpp"

namespace lowbit {

namespace {

using namespace ops;

using SumTypes = Types<float, double, int32_t, int64_t>;

int64_t normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) throw std::runtime_error(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t dims_product(const Shape& s, int64_t from, int64_t to) {
  int64_t n = 1;
  for (int64_t d = from; d < to; ++d) n *= s[static_cast<size_t>(d)];
  return n;
}

// ---- Softmax, LogSoftmax, Hardmax ----

enum class SoftmaxKind { Softmax, LogSoftmax, Hardmax };

// One row of length n with unit stride.
template <class T>
void softmax_row(SoftmaxKind kind, const T* x, T* y, int64_t n) {
  if (n == 0) return;
  T m = x[0];
  int64_t arg = 0;
  for (int64_t d = 1; d < n; ++d)
    if (x[d] > m) {
      m = x[d];
      arg = d;
    }
  if (kind == SoftmaxKind::Hardmax) {
    std::fill(y, y + n, T(0));
    y[arg] = T(1);
    return;
  }
  T sum = 0;
  if (kind == SoftmaxKind::Softmax) {
    for (int64_t d = 0; d < n; ++d) sum += y[d] = std::exp(x[d] - m);
    const T inv = T(1) / sum;
    for (int64_t d = 0; d < n; ++d) y[d] *= inv;
  } else {
    for (int64_t d = 0; d < n; ++d) sum += std::exp(x[d] - m);
    const T shift = m + std::log(sum);
    for (int64_t d = 0; d < n; ++d) y[d] = x[d] - shift;
  }
}

// A [n, inner] block normalized along n: the per-column max and sum live in m and s, and every
// loop runs contiguously over the inner columns.
template <class T>
void softmax_columns(SoftmaxKind kind, const T* x, T* y, int64_t n, int64_t inner, std::vector<T>& m, std::vector<T>& s) {
  if (n == 0) return;
  m.assign(x, x + inner);
  for (int64_t d = 1; d < n; ++d)
    for (int64_t i = 0; i < inner; ++i) m[i] = std::max(m[i], x[d * inner + i]);
  if (kind == SoftmaxKind::Hardmax) {
    std::fill(y, y + n * inner, T(0));
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t d = 0; d < n; ++d)
        if (x[d * inner + i] == m[i]) {  // the first maximum wins
          y[d * inner + i] = T(1);
          break;
        }
    return;
  }
  s.assign(static_cast<size_t>(inner), T(0));
  for (int64_t d = 0; d < n; ++d)
    for (int64_t i = 0; i < inner; ++i) {
      T e = std::exp(x[d * inner + i] - m[i]);
      s[i] += e;
      if (kind == SoftmaxKind::Softmax) y[d * inner + i] = e;
    }
  if (kind == SoftmaxKind::Softmax) {
    for (int64_t i = 0; i < inner; ++i) s[i] = T(1) / s[i];
    for (int64_t d = 0; d < n; ++d)
      for (int64_t i = 0; i < inner; ++i) y[d * inner + i] *= s[i];
  } else {
    for (int64_t i = 0; i < inner; ++i) s[i] = m[i] + std::log(s[i]);
    for (int64_t d = 0; d < n; ++d)
      for (int64_t i = 0; i < inner; ++i) y[d * inner + i] = x[d * inner + i] - s[i];
  }
}

// Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalized over the
// flattened trailing dims; since opset 13 the normalization runs along the one axis (default -1).
class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(const KernelContext& c, SoftmaxKind kind)
      : kind_(kind), legacy_(c.graph.opset < 13), axis_(c.node.i("axis", legacy_ ? 1 : -1)), threads_(c.threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    // A scalar is a single row of one element.
    const int rank = std::max(x.rank(), 1);
    const int64_t axis = normalize_axis(axis_, rank);
    Shape shape = x.shape();
    if (shape.empty()) shape.push_back(1);
    const int64_t outer = dims_product(shape, 0, axis);
    const int64_t n = legacy_ ? dims_product(shape, axis, rank) : shape[static_cast<size_t>(axis)];
    const int64_t inner = legacy_ ? 1 : dims_product(shape, axis + 1, rank);
    dispatch(FloatTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor y(x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t block = n * inner;
#pragma omp parallel num_threads(threads_) if (x.size() >= kParallelMin && threads_ > 1)
      {
        std::vector<T> m, s;
#pragma omp for
        for (int64_t o = 0; o < outer; ++o) {
          if (inner == 1)
            softmax_row(kind_, px + o * block, py + o * block, n);
          else
            softmax_columns(kind_, px + o * block, py + o * block, n, inner, m, s);
        }
      }
      out[0] = std::move(y);
    });
  }

 private:
  SoftmaxKind kind_;
  bool legacy_;
  int64_t axis_;
  int threads_;
};

// ---- Reduce* ----

enum class ReduceOp { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

// Output o of a reduction folds the input elements at base[o] + offsets[r] for every r.
struct ReducePlan {
  Shape out_shape;
  std::vector<int64_t> base;
  std::vector<int64_t> offsets;
  bool contiguous = true;  // offsets == 0, 1, 2, ...: the reduced dims are the trailing ones
};

ReducePlan plan_reduce(const Shape& shape, const std::vector<bool>& reduced, bool keepdims) {
  ReducePlan p;
  const size_t rank = shape.size();
  std::vector<int64_t> stride(rank, 1);
  for (size_t d = rank; d-- > 1;) stride[d - 1] = stride[d] * shape[d];
  p.base = {0};
  p.offsets = {0};
  for (size_t d = 0; d < rank; ++d) {
    if (reduced[d] && keepdims) p.out_shape.push_back(1);
    if (!reduced[d]) p.out_shape.push_back(shape[d]);
    std::vector<int64_t>& v = reduced[d] ? p.offsets : p.base;
    std::vector<int64_t> next;
    next.reserve(v.size() * static_cast<size_t>(shape[d]));
    for (int64_t b : v)
      for (int64_t i = 0; i < shape[d]; ++i) next.push_back(b + i * stride[d]);
    v = std::move(next);
  }
  for (size_t r = 0; r < p.offsets.size() && p.contiguous; ++r) p.contiguous = p.offsets[r] == static_cast<int64_t>(r);
  return p;
}

template <class T, class Acc, class F>
Acc fold(const T* src, const ReducePlan& p, Acc acc, F f) {
  const int64_t n = static_cast<int64_t>(p.offsets.size());
  if (p.contiguous) {
    for (int64_t r = 0; r < n; ++r) acc = f(acc, src[r]);
  } else {
    const int64_t* off = p.offsets.data();
    for (int64_t r = 0; r < n; ++r) acc = f(acc, src[off[r]]);
  }
  return acc;
}

// y[o] = value(o) for every output o.
template <class T, class F>
void for_outputs(const ReducePlan& p, T* y, int64_t work, int threads, F value) {
  const int64_t n = static_cast<int64_t>(p.base.size());
#pragma omp parallel for num_threads(threads) if (work >= kParallelMin && threads > 1)
  for (int64_t o = 0; o < n; ++o) y[o] = value(o);
}

template <class T>
void reduce(ReduceOp op, const T* x, const ReducePlan& p, T* y, int threads) {
  // Sums accumulate in double (or int64): the loops do not vectorize anyway without fast-math.
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  const int64_t count = static_cast<int64_t>(p.offsets.size());
  const int64_t work = count * static_cast<int64_t>(p.base.size());
  const int64_t* base = p.base.data();
  auto sum_of = [&](int64_t o, auto map) { return fold(x + base[o], p, Acc(0), [&](Acc a, T v) { return a + map(v); }); };
  auto identity = [](T v) { return static_cast<Acc>(v); };
  auto square = [](T v) { return static_cast<Acc>(v) * static_cast<Acc>(v); };
  auto magnitude = [](T v) { return static_cast<Acc>(v < 0 ? -static_cast<Acc>(v) : static_cast<Acc>(v)); };
  constexpr T lowest = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
  constexpr T highest = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  auto max_of = [&](int64_t o) { return fold(x + base[o], p, lowest, [](T a, T v) { return v > a ? v : a; }); };
  auto min_of = [&](int64_t o) { return fold(x + base[o], p, highest, [](T a, T v) { return v < a ? v : a; }); };
  auto as_t = [](auto v) { return static_cast<T>(v); };
  switch (op) {
    case ReduceOp::Sum:
      for_outputs(p, y, work, threads, [&](int64_t o) { return as_t(sum_of(o, identity)); });
      break;
    case ReduceOp::Mean:
      for_outputs(p, y, work, threads, [&](int64_t o) {
        if constexpr (std::is_floating_point_v<T>)
          return as_t(sum_of(o, identity) / static_cast<Acc>(count));
        else
          return as_t(count ? sum_of(o, identity) / count : 0);
      });
      break;
    case ReduceOp::Max:
      for_outputs(p, y, work, threads, max_of);
      break;
    case ReduceOp::Min:
      for_outputs(p, y, work, threads, min_of);
      break;
    case ReduceOp::Prod:
      for_outputs(p, y, work, threads, [&](int64_t o) {
        return as_t(fold(x + base[o], p, Acc(1), [](Acc a, T v) { return a * static_cast<Acc>(v); }));
      });
      break;
    case ReduceOp::L1:
      for_outputs(p, y, work, threads, [&](int64_t o) { return as_t(sum_of(o, magnitude)); });
      break;
    case ReduceOp::L2:
      for_outputs(p, y, work, threads, [&](int64_t o) { return as_t(std::sqrt(static_cast<double>(sum_of(o, square)))); });
      break;
    case ReduceOp::SumSquare:
      for_outputs(p, y, work, threads, [&](int64_t o) { return as_t(sum_of(o, square)); });
      break;
    case ReduceOp::LogSum:
      for_outputs(p, y, work, threads, [&](int64_t o) { return as_t(std::log(static_cast<double>(sum_of(o, identity)))); });
      break;
    case ReduceOp::LogSumExp:
      // log(sum(exp(x - m))) + m with m the maximum, so that exp cannot overflow.
      for_outputs(p, y, work, threads, [&](int64_t o) {
        const double m = static_cast<double>(max_of(o));
        if (std::isinf(m)) return as_t(m);
        double s = fold(x + base[o], p, 0.0, [m](double a, T v) { return a + std::exp(static_cast<double>(v) - m); });
        return as_t(std::log(s) + m);
      });
      break;
  }
}

// axes come from the attribute, except for ReduceSum since opset 13 (optional input 1).
class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const KernelContext& c, ReduceOp op)
      : op_(op),
        axes_from_input_(op == ReduceOp::Sum && c.graph.opset >= 13),
        axes_(c.node.ints("axes")),
        keepdims_(c.node.i("keepdims", 1) != 0),
        noop_with_empty_axes_(c.node.i("noop_with_empty_axes", 0) != 0),
        threads_(c.threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && in.size() > 1 && in[1]) axes = in[1]->to_ints();
    if (axes.empty() && noop_with_empty_axes_) {
      out[0] = x;
      return;
    }
    std::vector<bool> reduced(static_cast<size_t>(x.rank()), axes.empty());
    for (int64_t a : axes) reduced[static_cast<size_t>(normalize_axis(a, x.rank()))] = true;
    ReducePlan p = plan_reduce(x.shape(), reduced, keepdims_);
    auto go = [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor y(x.dtype(), p.out_shape);
      reduce(op_, x.data<T>(), p, y.data<T>(), threads_);
      out[0] = std::move(y);
    };
    if (op_ == ReduceOp::Max || op_ == ReduceOp::Min)
      dispatch(NumericTypes{}, x.dtype(), go);
    else
      dispatch(SumTypes{}, x.dtype(), go);
  }

 private:
  ReduceOp op_;
  bool axes_from_input_;
  std::vector<int64_t> axes_;
  bool keepdims_;
  bool noop_with_empty_axes_;
  int threads_;
};

// ---- ArgMax / ArgMin ----

class ArgKernel final : public Kernel {
 public:
  ArgKernel(const KernelContext& c, bool max)
      : max_(max),
        axis_(c.node.i("axis", 0)),
        keepdims_(c.node.i("keepdims", 1) != 0),
        last_(c.node.i("select_last_index", 0) != 0),
        threads_(c.threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const int64_t axis = normalize_axis(axis_, x.rank());
    const Shape& s = x.shape();
    const int64_t outer = dims_product(s, 0, axis), n = s[static_cast<size_t>(axis)];
    const int64_t inner = dims_product(s, axis + 1, x.rank());
    Shape out_shape = s;
    if (keepdims_)
      out_shape[static_cast<size_t>(axis)] = 1;
    else
      out_shape.erase(out_shape.begin() + axis);
    Tensor y(DType::I64, out_shape);
    int64_t* py = y.data<int64_t>();
    dispatch(NumericTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      const bool max = max_, last = last_;
#pragma omp parallel for num_threads(threads_) if (x.size() >= kParallelMin && threads_ > 1)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const T* v = px + o * n * inner + i;
          int64_t arg = 0;
          for (int64_t d = 1; d < n; ++d) {
            T a = v[d * inner], b = v[arg * inner];
            bool better = max ? (a > b) : (a < b);
            if (better || (last && a == b)) arg = d;
          }
          py[o * inner + i] = arg;
        }
    });
    out[0] = std::move(y);
  }

 private:
  bool max_;
  int64_t axis_;
  bool keepdims_;
  bool last_;
  int threads_;
};

// ---- Normalizations ----

// t's values broadcast (unidirectionally) to `shape`, flattened.
template <class T>
std::vector<T> expand_to(const Tensor& t, const Shape& shape, const char* what) {
  const size_t rank = shape.size();
  const Shape& ts = t.shape();
  bool ok = ts.size() <= rank;
  for (size_t j = 0; ok && j < ts.size(); ++j) ok = ts[j] == 1 || ts[j] == shape[rank - ts.size() + j];
  if (!ok) throw std::runtime_error(fmt::format("{} {} does not broadcast to {}", what, shape_string(ts), shape_string(shape)));
  const T* src = t.data<T>();
  std::vector<T> v(static_cast<size_t>(shape_size(shape)));
  if (static_cast<int64_t>(v.size()) == t.size()) {
    std::copy(src, src + t.size(), v.begin());
    return v;
  }
  // Source strides per target dim, 0 where t is broadcast.
  std::vector<int64_t> stride(rank, 0);
  int64_t st = 1;
  for (size_t j = ts.size(); j-- > 0;) {
    if (ts[j] != 1) stride[rank - ts.size() + j] = st;
    st *= ts[j];
  }
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t rem = static_cast<int64_t>(i), off = 0;
    for (size_t d = rank; d-- > 0;) {
      off += rem % shape[d] * stride[d];
      rem /= shape[d];
    }
    v[i] = src[off];
  }
  return v;
}

// LayerNormalization (opset 17): normalizes over dims [axis, rank); Mean and InvStdDev are
// float32 (stash_type 1) with the normalized dims kept as 1.
class LayerNormKernel final : public Kernel {
 public:
  explicit LayerNormKernel(const KernelContext& c)
      : axis_(c.node.i("axis", -1)), epsilon_(c.node.f("epsilon", 1e-5f)), threads_(c.threads) {
    if (c.node.i("stash_type", 1) != 1) throw std::runtime_error("only stash_type 1 (float32) is supported");
  }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const int64_t axis = normalize_axis(axis_, x.rank());
    const int64_t outer = dims_product(x.shape(), 0, axis), n = dims_product(x.shape(), axis, x.rank());
    const Shape norm_shape(x.shape().begin() + axis, x.shape().end());
    Shape stat_shape = x.shape();
    std::fill(stat_shape.begin() + axis, stat_shape.end(), 1);
    Tensor mean(DType::F32, stat_shape), inv_std(DType::F32, stat_shape);
    float* pm = mean.data<float>();
    float* pi = inv_std.data<float>();
    dispatch(FloatTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<T> scale, bias;
      if (in.size() > 1 && in[1]) {
        if (in[1]->dtype() != x.dtype()) throw std::runtime_error("Scale must have the input's type");
        scale = expand_to<T>(*in[1], norm_shape, "Scale");
      }
      if (in.size() > 2 && in[2]) {
        if (in[2]->dtype() != x.dtype()) throw std::runtime_error("B must have the input's type");
        bias = expand_to<T>(*in[2], norm_shape, "B");
      }
      Tensor y(x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const T* ps = scale.empty() ? nullptr : scale.data();
      const T* pb = bias.empty() ? nullptr : bias.data();
      const float eps = epsilon_;
#pragma omp parallel for num_threads(threads_) if (x.size() >= kParallelMin && threads_ > 1)
      for (int64_t o = 0; o < outer; ++o) {
        const T* r = px + o * n;
        T* w = py + o * n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += r[i];
        const float m = static_cast<float>(sum / static_cast<double>(n));
        double sq = 0;
        for (int64_t i = 0; i < n; ++i) sq += (r[i] - m) * (r[i] - m);
        const float inv = 1.0f / std::sqrt(static_cast<float>(sq / static_cast<double>(n)) + eps);
        pm[o] = m;
        pi[o] = inv;
        for (int64_t i = 0; i < n; ++i) w[i] = static_cast<T>((r[i] - m) * inv);
        if (ps)
          for (int64_t i = 0; i < n; ++i) w[i] *= ps[i];
        if (pb)
          for (int64_t i = 0; i < n; ++i) w[i] += pb[i];
      }
      out[0] = std::move(y);
    });
    if (out.size() > 1) out[1] = std::move(mean);
    if (out.size() > 2) out[2] = std::move(inv_std);
  }

 private:
  int64_t axis_;
  float epsilon_;
  int threads_;
};

// InstanceNormalization: each (n, c) plane of [N, C, ...] normalized over its spatial dims, then
// scale[c] and B[c].
class InstanceNormKernel final : public Kernel {
 public:
  explicit InstanceNormKernel(const KernelContext& c) : epsilon_(c.node.f("epsilon", 1e-5f)), threads_(c.threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const Tensor& scale = input(in, 1, "scale");
    const Tensor& bias = input(in, 2, "B");
    if (x.rank() < 2) throw std::runtime_error(fmt::format("input must have rank 2 or more, got {}", shape_string(x.shape())));
    const int64_t batch = x.dim(0), channels = x.dim(1), plane = dims_product(x.shape(), 2, x.rank());
    if (scale.size() != channels || bias.size() != channels)
      throw std::runtime_error(fmt::format("scale {} and B {} must have {} values", shape_string(scale.shape()),
                                           shape_string(bias.shape()), channels));
    dispatch(FloatTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (scale.dtype() != x.dtype() || bias.dtype() != x.dtype()) throw std::runtime_error("scale and B must have the input's type");
      Tensor y(x.dtype(), x.shape());
      const T* px = x.data<T>();
      const T* ps = scale.data<T>();
      const T* pb = bias.data<T>();
      T* py = y.data<T>();
      const double eps = epsilon_;
#pragma omp parallel for num_threads(threads_) if (x.size() >= kParallelMin && threads_ > 1)
      for (int64_t k = 0; k < batch * channels; ++k) {
        const T* r = px + k * plane;
        T* w = py + k * plane;
        double sum = 0;
        for (int64_t i = 0; i < plane; ++i) sum += r[i];
        const double m = sum / static_cast<double>(plane);
        double sq = 0;
        for (int64_t i = 0; i < plane; ++i) sq += (r[i] - m) * (r[i] - m);
        const T a = static_cast<T>(static_cast<double>(ps[k % channels]) / std::sqrt(sq / static_cast<double>(plane) + eps));
        const T b = static_cast<T>(static_cast<double>(pb[k % channels]) - m * a);
        for (int64_t i = 0; i < plane; ++i) w[i] = r[i] * a + b;
      }
      out[0] = std::move(y);
    });
  }

 private:
  float epsilon_;
  int threads_;
};

// LpNormalization: x divided by its L1 or L2 norm along `axis` (an all-zero vector stays zero).
class LpNormKernel final : public Kernel {
 public:
  explicit LpNormKernel(const KernelContext& c) : axis_(c.node.i("axis", -1)), p_(c.node.i("p", 2)), threads_(c.threads) {
    if (p_ != 1 && p_ != 2) throw std::runtime_error(fmt::format("p must be 1 or 2, got {}", p_));
  }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const int64_t axis = normalize_axis(axis_, x.rank());
    const int64_t outer = dims_product(x.shape(), 0, axis), n = x.dim(static_cast<int>(axis));
    const int64_t inner = dims_product(x.shape(), axis + 1, x.rank());
    dispatch(FloatTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor y(x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const bool l1 = p_ == 1;
#pragma omp parallel for num_threads(threads_) if (x.size() >= kParallelMin && threads_ > 1)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const T* r = px + o * n * inner + i;
          T* w = py + o * n * inner + i;
          double norm = 0;
          for (int64_t d = 0; d < n; ++d) norm += l1 ? std::fabs(static_cast<double>(r[d * inner])) : static_cast<double>(r[d * inner]) * r[d * inner];
          if (!l1) norm = std::sqrt(norm);
          const double inv = norm > 0 ? 1.0 / norm : 0.0;
          for (int64_t d = 0; d < n; ++d) w[d * inner] = static_cast<T>(r[d * inner] * inv);
        }
      out[0] = std::move(y);
    });
  }

 private:
  int64_t axis_;
  int64_t p_;
  int threads_;
};

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  auto softmax = [&](const char* op, SoftmaxKind kind) {
    r.add("", op, [kind](const KernelContext& c) { return std::make_unique<SoftmaxKernel>(c, kind); });
  };
  softmax("Softmax", SoftmaxKind::Softmax);
  softmax("LogSoftmax", SoftmaxKind::LogSoftmax);
  softmax("Hardmax", SoftmaxKind::Hardmax);

  auto reduce_op = [&](const char* op, ReduceOp kind) {
    r.add("", op, [kind](const KernelContext& c) { return std::make_unique<ReduceKernel>(c, kind); });
  };
  reduce_op("ReduceSum", ReduceOp::Sum);
  reduce_op("ReduceMean", ReduceOp::Mean);
  reduce_op("ReduceMax", ReduceOp::Max);
  reduce_op("ReduceMin", ReduceOp::Min);
  reduce_op("ReduceProd", ReduceOp::Prod);
  reduce_op("ReduceL1", ReduceOp::L1);
  reduce_op("ReduceL2", ReduceOp::L2);
  reduce_op("ReduceLogSum", ReduceOp::LogSum);
  reduce_op("ReduceLogSumExp", ReduceOp::LogSumExp);
  reduce_op("ReduceSumSquare", ReduceOp::SumSquare);

  r.add("", "ArgMax", [](const KernelContext& c) { return std::make_unique<ArgKernel>(c, true); });
  r.add("", "ArgMin", [](const KernelContext& c) { return std::make_unique<ArgKernel>(c, false); });
  r.add("", "LayerNormalization", [](const KernelContext& c) { return std::make_unique<LayerNormKernel>(c); });
  r.add("", "InstanceNormalization", [](const KernelContext& c) { return std::make_unique<InstanceNormKernel>(c); });
  r.add("", "LpNormalization", [](const KernelContext& c) { return std::make_unique<LpNormKernel>(c); });
}

}  // namespace lowbit
