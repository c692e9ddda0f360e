// Element-wise operators: unary math and activations, binary arithmetic and comparisons with
// multidirectional (numpy) broadcasting, variadic Sum / Mean / Max / Min, Where and Cast.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"
#include "src/runtime/ops/dispatch.hpp"

namespace lowbit {

namespace {

using namespace ops;

using SignedTypes = Types<float, double, int8_t, int16_t, int32_t, int64_t>;
using AllTypes = Types<float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, int64_t, bool>;
using PowTypes = Types<float, double, int32_t, int64_t>;

void require_same_dtype(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw std::runtime_error(fmt::format("input types differ: {} and {}", to_string(a.dtype()), to_string(b.dtype())));
}

// body(begin, end) over [0, n), split across threads when n is large.
template <class F>
void parallel_ranges(int64_t n, int threads, F&& body) {
  if (threads <= 1 || n < kParallelMin) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(threads)
  for (int p = 0; p < threads; ++p) body(n * p / threads, n * (p + 1) / threads);
}

// ---- Broadcasting ----

// Multidirectional broadcast of K input shapes. Dimensions of size 1 are dropped and adjacent
// dimensions that every input walks the same way are merged, so same-shape operands become one
// contiguous run, a scalar operand a run with stride 0 and the per-channel pattern
// [N,C,H,W] op [C,1,1] becomes [N,C,HW] with the channel operand constant along the inner run.
template <size_t K>
class Broadcast {
 public:
  explicit Broadcast(const std::array<const Shape*, K>& shapes) {
    size_t rank = 0;
    for (const Shape* s : shapes) rank = std::max(rank, s->size());
    out_shape_.assign(rank, 1);
    for (const Shape* s : shapes) {
      size_t off = rank - s->size();
      for (size_t j = 0; j < s->size(); ++j) {
        int64_t& o = out_shape_[off + j];
        int64_t d = (*s)[j];
        if (o == 1)
          o = d;
        else if (d != 1 && d != o)
          throw std::runtime_error(fmt::format("shapes {} do not broadcast", shape_list(shapes)));
      }
    }
    size_ = shape_size(out_shape_);
    std::array<std::vector<int64_t>, K> full;
    for (size_t k = 0; k < K; ++k) {
      const Shape& s = *shapes[k];
      size_t off = rank - s.size();
      full[k].assign(rank, 0);
      int64_t stride = 1;
      for (size_t j = s.size(); j-- > 0;) {
        if (s[j] != 1) full[k][off + j] = stride;
        stride *= s[j];
      }
    }
    for (size_t d = 0; d < rank; ++d) {
      if (out_shape_[d] == 1) continue;
      bool merge = !dims_.empty();
      for (size_t k = 0; k < K && merge; ++k) merge = strides_[k].back() == full[k][d] * out_shape_[d];
      if (merge) {
        dims_.back() *= out_shape_[d];
        for (size_t k = 0; k < K; ++k) strides_[k].back() = full[k][d];
      } else {
        dims_.push_back(out_shape_[d]);
        for (size_t k = 0; k < K; ++k) strides_[k].push_back(full[k][d]);
      }
    }
    if (dims_.empty()) {
      dims_.push_back(1);
      for (size_t k = 0; k < K; ++k) strides_[k].push_back(0);
    }
  }

  const Shape& out_shape() const { return out_shape_; }
  // Input k's stride along the inner run: 1, or 0 where it is broadcast.
  int64_t inner_stride(size_t k) const { return strides_[k].back(); }

  // Calls body(offsets, pos, n) for runs that cover the output once: input k's run starts at
  // element offsets[k] and advances by inner_stride(k); the output's run is [pos, pos + n).
  template <class F>
  void run(int threads, F&& body) const {
    if (size_ == 0) return;
    if (threads <= 1 || size_ < kParallelMin) {
      walk(0, size_, body);
      return;
    }
#pragma omp parallel for num_threads(threads)
    for (int p = 0; p < threads; ++p) walk(size_ * p / threads, size_ * (p + 1) / threads, body);
  }

 private:
  static std::string shape_list(const std::array<const Shape*, K>& shapes) {
    std::vector<std::string> v;
    for (const Shape* s : shapes) v.push_back(shape_string(*s));
    return fmt::format("{}", fmt::join(v, " and "));
  }

  template <class F>
  void walk(int64_t begin, int64_t end, F& body) const {
    const size_t outer = dims_.size() - 1;
    const int64_t inner = dims_.back();
    std::vector<int64_t> idx(outer, 0);
    std::array<int64_t, K> base{};
    int64_t row = begin / inner, j = begin % inner;
    for (size_t d = outer; d-- > 0;) {
      idx[d] = row % dims_[d];
      row /= dims_[d];
      for (size_t k = 0; k < K; ++k) base[k] += idx[d] * strides_[k][d];
    }
    for (int64_t pos = begin; pos < end;) {
      int64_t n = std::min(inner - j, end - pos);
      std::array<int64_t, K> off;
      for (size_t k = 0; k < K; ++k) off[k] = base[k] + j * strides_[k][outer];
      body(off, pos, n);
      pos += n;
      j = 0;
      for (size_t d = outer; d-- > 0;) {
        for (size_t k = 0; k < K; ++k) base[k] += strides_[k][d];
        if (++idx[d] < dims_[d]) break;
        for (size_t k = 0; k < K; ++k) base[k] -= strides_[k][d] * dims_[d];
        idx[d] = 0;
      }
    }
  }

  Shape out_shape_;
  int64_t size_ = 0;
  std::vector<int64_t> dims_;
  std::array<std::vector<int64_t>, K> strides_;
};

// One contiguous run of a binary op; the branches give the compiler simple loops to vectorize.
template <class A, class B, class O, class F>
void binary_run(const A* a, int64_t sa, const B* b, int64_t sb, O* o, int64_t n, const F& f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(f(a[i], b[i]));
  } else if (sa == 1) {
    const B bv = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(f(a[i], bv));
  } else if (sb == 1) {
    const A av = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(f(av, b[i]));
  } else {
    const O v = static_cast<O>(f(*a, *b));
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

// out = f(a, b) with a and b read as a_shape / b_shape (the tensors' own shapes, except under
// the legacy broadcast of opset < 7).
template <class A, class B, class O, class F>
Tensor binary(const Tensor& a, const Shape& a_shape, const Tensor& b, const Shape& b_shape, const F& f, int threads) {
  Broadcast<2> bc({&a_shape, &b_shape});
  Tensor out = Tensor::uninitialized(dtype_of<O>(), bc.out_shape());
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* po = out.data<O>();
  const int64_t sa = bc.inner_stride(0), sb = bc.inner_stride(1);
  bc.run(threads, [&](const std::array<int64_t, 2>& off, int64_t pos, int64_t n) {
    binary_run(pa + off[0], sa, pb + off[1], sb, po + pos, n, f);
  });
  return out;
}

template <class T, class F>
Tensor unary(const Tensor& x, const F& f, int threads) {
  Tensor y = Tensor::uninitialized(x.dtype(), x.shape());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  parallel_ranges(x.size(), threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) py[i] = static_cast<T>(f(px[i]));
  });
  return y;
}

// ---- Unary operators ----

template <class Ts, class F>
class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(F f, int threads) : f_(std::move(f)), threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    dispatch(Ts{}, x.dtype(), [&](auto tag) { out[0] = unary<typename decltype(tag)::type>(x, f_, threads_); });
  }

 private:
  F f_;
  int threads_;
};

template <class Ts, class F>
std::unique_ptr<Kernel> make_unary(const KernelContext& c, F f) {
  return std::make_unique<UnaryKernel<Ts, F>>(std::move(f), c.threads);
}

template <class Ts, class F>
void add_unary(OpRegistry& r, const char* op, F f) {
  r.add("", op, [f](const KernelContext& c) { return make_unary<Ts>(c, f); });
}

// A test on float elements with a bool result (IsNaN, IsInf).
template <class Ts, class F>
class PredicateKernel final : public Kernel {
 public:
  PredicateKernel(F f, int threads) : f_(std::move(f)), threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    dispatch(Ts{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor y(DType::Bool, x.shape());
      const T* px = x.data<T>();
      bool* py = y.data<bool>();
      parallel_ranges(x.size(), threads_, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) py[i] = f_(px[i]);
      });
      out[0] = std::move(y);
    });
  }

 private:
  F f_;
  int threads_;
};

template <class T>
T sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

void register_unary(OpRegistry& r) {
  add_unary<SignedTypes>(r, "Relu", [](auto x) { return x > 0 ? x : decltype(x)(0); });
  add_unary<FloatTypes>(r, "Sigmoid", [](auto x) { return sigmoid(x); });
  add_unary<FloatTypes>(r, "Tanh", [](auto x) { return std::tanh(x); });
  add_unary<FloatTypes>(r, "Erf", [](auto x) { return std::erf(x); });
  add_unary<FloatTypes>(r, "Exp", [](auto x) { return std::exp(x); });
  add_unary<FloatTypes>(r, "Log", [](auto x) { return std::log(x); });
  add_unary<FloatTypes>(r, "Sqrt", [](auto x) { return std::sqrt(x); });
  add_unary<FloatTypes>(r, "Reciprocal", [](auto x) { return decltype(x)(1) / x; });
  add_unary<FloatTypes>(r, "Floor", [](auto x) { return std::floor(x); });
  add_unary<FloatTypes>(r, "Ceil", [](auto x) { return std::ceil(x); });
  // nearbyint in the default rounding mode rounds halves to even, as ONNX Round asks.
  add_unary<FloatTypes>(r, "Round", [](auto x) { return std::nearbyint(x); });
  add_unary<FloatTypes>(r, "Sin", [](auto x) { return std::sin(x); });
  add_unary<FloatTypes>(r, "Cos", [](auto x) { return std::cos(x); });
  add_unary<FloatTypes>(r, "Tan", [](auto x) { return std::tan(x); });
  add_unary<FloatTypes>(r, "Asin", [](auto x) { return std::asin(x); });
  add_unary<FloatTypes>(r, "Acos", [](auto x) { return std::acos(x); });
  add_unary<FloatTypes>(r, "Atan", [](auto x) { return std::atan(x); });
  add_unary<FloatTypes>(r, "Sinh", [](auto x) { return std::sinh(x); });
  add_unary<FloatTypes>(r, "Cosh", [](auto x) { return std::cosh(x); });
  add_unary<FloatTypes>(r, "Asinh", [](auto x) { return std::asinh(x); });
  add_unary<FloatTypes>(r, "Acosh", [](auto x) { return std::acosh(x); });
  add_unary<FloatTypes>(r, "Atanh", [](auto x) { return std::atanh(x); });
  add_unary<FloatTypes>(r, "Softplus", [](auto x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); });
  add_unary<FloatTypes>(r, "Softsign", [](auto x) { return x / (decltype(x)(1) + std::fabs(x)); });
  add_unary<FloatTypes>(r, "HardSwish", [](auto x) {
    using T = decltype(x);
    return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
  });
  add_unary<NumericTypes>(r, "Abs", [](auto x) {
    using T = decltype(x);
    if constexpr (std::is_unsigned_v<T>)
      return x;
    else
      return static_cast<T>(x < 0 ? -x : x);
  });
  add_unary<SignedTypes>(r, "Neg", [](auto x) { return static_cast<decltype(x)>(-x); });
  add_unary<NumericTypes>(r, "Sign", [](auto x) {
    using T = decltype(x);
    if constexpr (std::is_unsigned_v<T>)
      return static_cast<T>(x > 0);
    else
      return static_cast<T>((x > 0) - (x < 0));
  });
  add_unary<Types<bool>>(r, "Not", [](bool x) { return !x; });

  r.add("", "HardSigmoid", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 0.2f), beta = c.node.f("beta", 0.5f);
    return make_unary<FloatTypes>(c, [alpha, beta](auto x) {
      using T = decltype(x);
      return std::max(T(0), std::min(T(1), T(alpha) * x + T(beta)));
    });
  });
  r.add("", "LeakyRelu", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 0.01f);
    return make_unary<FloatTypes>(c, [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * x : x; });
  });
  r.add("", "Elu", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 1.0f);
    return make_unary<FloatTypes>(c, [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * std::expm1(x) : x; });
  });
  r.add("", "Selu", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 1.67326319217681884765625f), gamma = c.node.f("gamma", 1.05070102214813232421875f);
    return make_unary<FloatTypes>(c, [alpha, gamma](auto x) {
      using T = decltype(x);
      return x > 0 ? T(gamma) * x : T(gamma) * T(alpha) * std::expm1(x);
    });
  });
  r.add("", "Celu", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 1.0f);
    return make_unary<FloatTypes>(c, [alpha](auto x) {
      using T = decltype(x);
      return std::max(T(0), x) + std::min(T(0), T(alpha) * std::expm1(x / T(alpha)));
    });
  });
  r.add("", "Shrink", [](const KernelContext& c) {
    double lambd = c.node.f("lambd", 0.5f), bias = c.node.f("bias", 0.0f);
    return make_unary<NumericTypes>(c, [lambd, bias](auto x) {
      double v = static_cast<double>(x);
      return static_cast<decltype(x)>(v < -lambd ? v + bias : v > lambd ? v - bias : 0.0);
    });
  });
  r.add("", "IsNaN", [](const KernelContext& c) {
    return std::make_unique<PredicateKernel<FloatTypes, bool (*)(double)>>([](double x) { return std::isnan(x); }, c.threads);
  });
  r.add("", "IsInf", [](const KernelContext& c) {
    bool negative = c.node.i("detect_negative", 1) != 0, positive = c.node.i("detect_positive", 1) != 0;
    auto f = [negative, positive](auto x) { return std::isinf(x) && (x < 0 ? negative : positive); };
    return std::make_unique<PredicateKernel<FloatTypes, decltype(f)>>(f, c.threads);
  });
  r.add("", "ThresholdedRelu", [](const KernelContext& c) {
    float alpha = c.node.f("alpha", 1.0f);
    return make_unary<FloatTypes>(c, [alpha](auto x) { return x > decltype(x)(alpha) ? x : decltype(x)(0); });
  });
}

// Clip: bounds are attributes before opset 11 (float only), optional scalar inputs 1 and 2 since.
class ClipKernel final : public Kernel {
 public:
  explicit ClipKernel(int threads) : threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    dispatch(NumericTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T lo = bound<T>(in, 1, std::numeric_limits<T>::lowest(), x);
      T hi = bound<T>(in, 2, std::numeric_limits<T>::max(), x);
      out[0] = unary<T>(x, [lo, hi](T v) { return std::min(std::max(v, lo), hi); }, threads_);
    });
  }

 private:
  template <class T>
  static T bound(std::span<const Tensor* const> in, size_t k, T def, const Tensor& x) {
    if (k >= in.size() || !in[k] || in[k]->size() == 0) return def;
    require_same_dtype(x, *in[k]);
    if (in[k]->size() != 1) throw std::runtime_error(fmt::format("bound {} must be a scalar, got shape {}", k, shape_string(in[k]->shape())));
    return in[k]->data<T>()[0];
  }
  int threads_;
};

// ---- Binary operators ----

// Before opset 7, binary operators broadcast only with broadcast=1, aligning B with A at `axis`
// (or at A's trailing dims without it). Returns the shape B is read as.
Shape legacy_b_shape(const Node& n, int64_t opset, const Shape& a, const Shape& b) {
  if (opset >= 7 || n.i("broadcast", 0) == 0) return b;
  if (!n.has("axis")) return b;
  int64_t rank = static_cast<int64_t>(a.size()), axis = n.i("axis", 0);
  if (axis < 0) axis += rank;
  int64_t tail = rank - axis - static_cast<int64_t>(b.size());
  if (axis < 0 || tail < 0)
    throw std::runtime_error(fmt::format("axis {} does not fit shapes {} and {}", n.i("axis", 0), shape_string(a), shape_string(b)));
  Shape s(static_cast<size_t>(axis), 1);
  s.insert(s.end(), b.begin(), b.end());
  s.insert(s.end(), static_cast<size_t>(tail), 1);
  return s;
}

template <class T>
T int_div(T x, T y) {
  // x / -1 is negation; spelled out because INT_MIN / -1 traps on x86.
  if constexpr (std::is_signed_v<T>)
    if (y == -1) return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));
  return static_cast<T>(x / y);
}

struct DivOp {
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>)
      return x / y;
    else
      return int_div(x, y);
  }
};

// Mod with fmod = 0: the result takes the divisor's sign (Python's %); with fmod = 1: the
// dividend's (C's fmod and %).
struct ModOp {
  bool fmod;
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      T m = std::fmod(x, y);
      if (!fmod && m != 0 && ((m < 0) != (y < 0))) m += y;
      return m;
    } else if constexpr (std::is_unsigned_v<T>) {
      return static_cast<T>(x % y);
    } else {
      if (y == -1) return 0;  // INT_MIN % -1 traps on x86
      T m = static_cast<T>(x % y);
      if (!fmod && m != 0 && ((m < 0) != (y < 0))) m = static_cast<T>(m + y);
      return m;
    }
  }
};

// BitShift on unsigned types; shifting by the type's width or more gives 0.
struct BitShiftOp {
  bool left;
  template <class T>
  T operator()(T x, T y) const {
    if (y >= std::numeric_limits<T>::digits) return 0;
    return static_cast<T>(left ? x << y : x >> y);
  }
};

template <class Ts, bool kBoolOut, class F>
class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(const KernelContext& c, F f, bool integer_divisor)
      : node_(c.node), opset_(c.graph.opset), f_(std::move(f)), threads_(c.threads), integer_divisor_(integer_divisor) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& a = input(in, 0);
    const Tensor& b = input(in, 1);
    require_same_dtype(a, b);
    Shape b_shape = legacy_b_shape(node_, opset_, a.shape(), b.shape());
    dispatch(Ts{}, a.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using O = std::conditional_t<kBoolOut, bool, T>;
      if constexpr (std::is_integral_v<T>)
        if (integer_divisor_) {
          const T* pb = b.data<T>();
          for (int64_t i = 0; i < b.size(); ++i)
            if (pb[i] == 0) throw std::runtime_error("integer division by zero");
        }
      out[0] = binary<T, T, O>(a, a.shape(), b, b_shape, f_, threads_);
    });
  }

 private:
  const Node& node_;
  int64_t opset_;
  F f_;
  int threads_;
  bool integer_divisor_;
};

template <class Ts, bool kBoolOut = false, class F>
void add_binary(OpRegistry& r, const char* op, F f, bool integer_divisor = false) {
  r.add("", op, [f, integer_divisor](const KernelContext& c) {
    return std::make_unique<BinaryKernel<Ts, kBoolOut, F>>(c, f, integer_divisor);
  });
}

// Integer power by squaring (exact where double is not); negative exponents truncate like C.
template <class T>
T int_pow(T x, int64_t y) {
  if (y < 0) return x == 1 ? T(1) : x == -1 ? (y % 2 ? T(-1) : T(1)) : T(0);
  using U = std::make_unsigned_t<T>;  // unsigned arithmetic wraps instead of overflowing
  U result = 1, base = static_cast<U>(x);
  for (; y > 0; y >>= 1) {
    if (y & 1) result = static_cast<U>(result * base);
    base = static_cast<U>(base * base);
  }
  return static_cast<T>(result);
}

template <class A, class B>
A pow_value(A x, B y) {
  if constexpr (std::is_same_v<A, B> && std::is_floating_point_v<A>) {
    return std::pow(x, y);
  } else if constexpr (std::is_integral_v<A> && std::is_integral_v<B>) {
    return int_pow(x, static_cast<int64_t>(y));
  } else {
    return static_cast<A>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  }
}

// Pow: the output has the base's type; the exponent may be of another numeric type.
class PowKernel final : public Kernel {
 public:
  explicit PowKernel(const KernelContext& c) : node_(c.node), opset_(c.graph.opset), threads_(c.threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& a = input(in, 0);
    const Tensor& b = input(in, 1);
    Shape b_shape = legacy_b_shape(node_, opset_, a.shape(), b.shape());
    dispatch(PowTypes{}, a.dtype(), [&](auto ta) {
      using A = typename decltype(ta)::type;
      dispatch(PowTypes{}, b.dtype(), [&](auto tb) {
        using B = typename decltype(tb)::type;
        out[0] = binary<A, B, A>(a, a.shape(), b, b_shape, [](A x, B y) { return pow_value(x, y); }, threads_);
      });
    });
  }

 private:
  const Node& node_;
  int64_t opset_;
  int threads_;
};

// PRelu: y = x < 0 ? slope * x : x, slope broadcast to x's shape. Before opset 7 the slope
// holds one value per channel (dim 1) or a single shared value.
class PReluKernel final : public Kernel {
 public:
  PReluKernel(int64_t opset, int threads) : opset_(opset), threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const Tensor& slope = input(in, 1, "slope");
    require_same_dtype(x, slope);
    Shape slope_shape = slope.shape();
    if (opset_ < 7 && x.rank() >= 2 && slope.size() == x.dim(1)) {
      slope_shape.assign(static_cast<size_t>(x.rank() - 1), 1);
      slope_shape[0] = x.dim(1);
    }
    dispatch(SignedTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor y = binary<T, T, T>(x, x.shape(), slope, slope_shape, [](T v, T s) { return v < 0 ? static_cast<T>(s * v) : v; }, threads_);
      if (y.shape() != x.shape())
        throw std::runtime_error(fmt::format("slope {} does not broadcast to input {}", shape_string(slope.shape()), shape_string(x.shape())));
      out[0] = std::move(y);
    });
  }

 private:
  int64_t opset_;
  int threads_;
};

// Sum, Mean, Max, Min: any number of inputs, all broadcast together.
template <class Ts, class F>
class VariadicKernel final : public Kernel {
 public:
  VariadicKernel(F f, bool mean, int threads) : f_(std::move(f)), mean_(mean), threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    std::vector<const Tensor*> xs;
    for (const Tensor* t : in)
      if (t) xs.push_back(t);
    if (xs.empty()) throw std::runtime_error("needs at least one input");
    for (const Tensor* t : xs) require_same_dtype(*xs[0], *t);
    dispatch(Ts{}, xs[0]->dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor acc = xs.size() == 1 ? *xs[0] : binary<T, T, T>(*xs[0], xs[0]->shape(), *xs[1], xs[1]->shape(), f_, threads_);
      for (size_t k = 2; k < xs.size(); ++k) acc = binary<T, T, T>(acc, acc.shape(), *xs[k], xs[k]->shape(), f_, threads_);
      if constexpr (std::is_floating_point_v<T>)
        if (mean_) {
          const T n = static_cast<T>(xs.size());
          acc = unary<T>(acc, [n](T v) { return v / n; }, threads_);
        }
      out[0] = std::move(acc);
    });
  }

 private:
  F f_;
  bool mean_;
  int threads_;
};

template <class Ts, class F>
void add_variadic(OpRegistry& r, const char* op, F f, bool mean = false) {
  r.add("", op, [f, mean](const KernelContext& c) { return std::make_unique<VariadicKernel<Ts, F>>(f, mean, c.threads); });
}

// Max / Min: a NaN operand gives NaN, as in numpy.
struct MaxOp {
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>)
      if (std::isnan(x) || std::isnan(y)) return x + y;
    return x >= y ? x : y;
  }
};
struct MinOp {
  template <class T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>)
      if (std::isnan(x) || std::isnan(y)) return x + y;
    return x <= y ? x : y;
  }
};

// Where(cond, x, y), all three broadcast together.
class WhereKernel final : public Kernel {
 public:
  explicit WhereKernel(int threads) : threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& c = input(in, 0, "condition");
    const Tensor& x = input(in, 1, "X");
    const Tensor& y = input(in, 2, "Y");
    require_dtype(c, DType::Bool, "condition");
    require_same_dtype(x, y);
    Broadcast<3> bc({&c.shape(), &x.shape(), &y.shape()});
    dispatch(AllTypes{}, x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor o(x.dtype(), bc.out_shape());
      const bool* pc = c.data<bool>();
      const T* px = x.data<T>();
      const T* py = y.data<T>();
      T* po = o.data<T>();
      const int64_t sc = bc.inner_stride(0), sx = bc.inner_stride(1), sy = bc.inner_stride(2);
      bc.run(threads_, [&](const std::array<int64_t, 3>& off, int64_t pos, int64_t n) {
        const bool* rc = pc + off[0];
        const T* rx = px + off[1];
        const T* ry = py + off[2];
        for (int64_t i = 0; i < n; ++i) po[pos + i] = rc[i * sc] ? rx[i * sx] : ry[i * sy];
      });
      out[0] = std::move(o);
    });
  }

 private:
  int threads_;
};

void register_binary(OpRegistry& r) {
  add_binary<NumericTypes>(r, "Add", [](auto x, auto y) { return x + y; });
  add_binary<NumericTypes>(r, "Sub", [](auto x, auto y) { return x - y; });
  add_binary<NumericTypes>(r, "Mul", [](auto x, auto y) { return x * y; });
  add_binary<NumericTypes>(r, "Div", DivOp{}, true);
  r.add("", "Mod", [](const KernelContext& c) {
    ModOp op{c.node.i("fmod", 0) != 0};
    return std::make_unique<BinaryKernel<NumericTypes, false, ModOp>>(c, op, true);
  });
  r.add("", "Pow", [](const KernelContext& c) { return std::make_unique<PowKernel>(c); });
  r.add("", "PRelu", [](const KernelContext& c) { return std::make_unique<PReluKernel>(c.graph.opset, c.threads); });

  add_binary<AllTypes, true>(r, "Equal", [](auto x, auto y) { return x == y; });
  add_binary<NumericTypes, true>(r, "Less", [](auto x, auto y) { return x < y; });
  add_binary<NumericTypes, true>(r, "Greater", [](auto x, auto y) { return x > y; });
  add_binary<NumericTypes, true>(r, "LessOrEqual", [](auto x, auto y) { return x <= y; });
  add_binary<NumericTypes, true>(r, "GreaterOrEqual", [](auto x, auto y) { return x >= y; });
  r.add("", "BitShift", [](const KernelContext& c) {
    const std::string direction = c.node.s("direction", "");
    if (direction != "LEFT" && direction != "RIGHT") throw std::runtime_error(fmt::format("direction must be LEFT or RIGHT, got '{}'", direction));
    BitShiftOp op{direction == "LEFT"};
    return std::make_unique<BinaryKernel<Types<uint8_t, uint16_t>, false, BitShiftOp>>(c, op, false);
  });
  add_binary<Types<bool>, true>(r, "And", [](bool x, bool y) { return x && y; });
  add_binary<Types<bool>, true>(r, "Or", [](bool x, bool y) { return x || y; });
  add_binary<Types<bool>, true>(r, "Xor", [](bool x, bool y) { return x != y; });

  add_variadic<FloatTypes>(r, "Sum", [](auto x, auto y) { return x + y; });
  add_variadic<FloatTypes>(r, "Mean", [](auto x, auto y) { return x + y; }, true);
  add_variadic<NumericTypes>(r, "Max", MaxOp{});
  add_variadic<NumericTypes>(r, "Min", MinOp{});

  r.add("", "Where", [](const KernelContext& c) { return std::make_unique<WhereKernel>(c.threads); });
  r.add("", "Clip", [](const KernelContext& c) -> std::unique_ptr<Kernel> {
    if (c.graph.opset >= 11) return std::make_unique<ClipKernel>(c.threads);
    float lo = c.node.f("min", std::numeric_limits<float>::lowest()), hi = c.node.f("max", std::numeric_limits<float>::max());
    return make_unary<FloatTypes>(c, [lo, hi](auto x) {
      using T = decltype(x);
      return std::min(std::max(x, T(lo)), T(hi));
    });
  });
}

// ---- Cast ----

// The DType of an ONNX TensorProto data type: a number, or a name before opset 6.
DType cast_target(const Node& n) {
  auto it = n.attrs.find("to");
  if (it == n.attrs.end()) throw std::runtime_error("attribute 'to' is missing");
  std::string name;
  if (const auto* s = std::get_if<std::string>(&it->second.value)) {
    name = *s;
  } else {
    static const char* const kNames[] = {"UNDEFINED", "FLOAT",  "UINT8",     "INT8",       "UINT16", "INT16",
                                         "INT32",     "INT64",  "STRING",    "BOOL",       "FLOAT16", "DOUBLE",
                                         "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    int64_t to = n.i("to", 0);
    name = to >= 0 && to < static_cast<int64_t>(std::size(kNames)) ? kNames[to] : fmt::format("type {}", to);
  }
  static const std::pair<const char*, DType> kTypes[] = {
      {"FLOAT", DType::F32}, {"DOUBLE", DType::F64}, {"INT8", DType::I8},   {"UINT8", DType::U8}, {"INT16", DType::I16},
      {"UINT16", DType::U16}, {"INT32", DType::I32}, {"INT64", DType::I64}, {"BOOL", DType::Bool}};
  for (const auto& [nm, t] : kTypes)
    if (name == nm) return t;
  throw std::runtime_error(fmt::format("cast to {} is not supported", name));
}

// Cast to the type of the 'to' attribute, or with `like` (CastLike) to the type of input 1.
class CastKernel final : public Kernel {
 public:
  CastKernel(DType to, bool like, int threads) : to_(to), like_(like), threads_(threads) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0);
    const DType to = like_ ? input(in, 1, "target_type").dtype() : to_;
    dispatch(AllTypes{}, x.dtype(), [&](auto ts) {
      using S = typename decltype(ts)::type;
      dispatch(AllTypes{}, to, [&](auto td) {
        using D = typename decltype(td)::type;
        Tensor y(to, x.shape());
        const S* px = x.data<S>();
        D* py = y.data<D>();
        parallel_ranges(x.size(), threads_, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) py[i] = static_cast<D>(px[i]);
        });
        out[0] = std::move(y);
      });
    });
  }

 private:
  DType to_;
  bool like_;
  int threads_;
};

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  register_unary(r);
  register_binary(r);
  r.add("", "Cast", [](const KernelContext& c) { return std::make_unique<CastKernel>(cast_target(c.node), false, c.threads); });
  r.add("", "CastLike", [](const KernelContext& c) { return std::make_unique<CastKernel>(DType::F32, true, c.threads); });
}

}  // namespace lowbit
