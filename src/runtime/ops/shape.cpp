// Operators that move data without computing on it (Reshape, Transpose, Slice, Gather, ...). They work
// on raw bytes with the element size, so every element type is handled by the same code.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

namespace {

struct Ctx {
  const Node& node;
  int64_t opset;
  int threads;
};
using OpFn = void (*)(const Ctx&, std::span<const Tensor* const>, std::span<Tensor>);

class OpKernel final : public Kernel {
 public:
  OpKernel(Ctx c, OpFn f) : c_(c), f_(f) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override { f_(c_, in, out); }

 private:
  Ctx c_;
  OpFn f_;
};

KernelFactory kernel(OpFn f) {
  return [f](const KernelContext& c) { return std::make_unique<OpKernel>(Ctx{c.node, c.graph.opset, c.threads}, f); };
}

// Copies above this many bytes use several threads.
constexpr int64_t kParallelBytes = int64_t{1} << 20;

std::runtime_error error(const std::string& msg) { return std::runtime_error(msg); }

// An axis in [-rank, rank) as [0, rank).
int norm_axis(int64_t axis, int rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    throw error(fmt::format("{} {} is out of range for rank {}", what, axis, rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t k = s.size(); k-- > 0;) {
    st[k] = acc;
    acc *= s[k];
  }
  return st;
}

// A row of n elements of E bytes read with an element stride.
template <size_t E>
void copy_strided_row(const std::byte* src, std::byte* dst, int64_t n, int64_t stride) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * E, src + i * stride * static_cast<int64_t>(E), E);
}

void copy_row(const std::byte* src, std::byte* dst, size_t esize, int64_t n, int64_t stride) {
  if (stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * esize);
    return;
  }
  switch (esize) {
    case 1: copy_strided_row<1>(src, dst, n, stride); break;
    case 2: copy_strided_row<2>(src, dst, n, stride); break;
    case 4: copy_strided_row<4>(src, dst, n, stride); break;
    default: copy_strided_row<8>(src, dst, n, stride); break;
  }
}

// dst[a * B + b] = src[a + b * sb] for a < A, b < B: a transpose read in square tiles to stay in cache.
template <size_t E>
void transpose_tile(const std::byte* src, std::byte* dst, int64_t a0, int64_t a1, int64_t B, int64_t sb) {
  constexpr int64_t kTile = 16;
  const auto e = static_cast<int64_t>(E);
  for (int64_t b0 = 0; b0 < B; b0 += kTile) {
    int64_t b1 = std::min(B, b0 + kTile);
    for (int64_t a = a0; a < a1; ++a)
      for (int64_t b = b0; b < b1; ++b) std::memcpy(dst + (a * B + b) * e, src + (a + b * sb) * e, E);
  }
}

// Writes the strided view of src (element strides, may be 0 or negative; src points at the view's first
// element) to dst in row-major order.
void strided_copy(const std::byte* src, std::byte* dst, size_t esize, const Shape& shape_in,
                  const std::vector<int64_t>& strides_in, int threads) {
  Shape shape;
  std::vector<int64_t> strides;
  for (size_t k = 0; k < shape_in.size(); ++k) {
    if (shape_in[k] == 0) return;
    if (shape_in[k] == 1) continue;
    // Merge with the previous dimension when it steps exactly over this one.
    if (!shape.empty() && strides.back() == strides_in[k] * shape_in[k]) {
      shape.back() *= shape_in[k];
      strides.back() = strides_in[k];
    } else {
      shape.push_back(shape_in[k]);
      strides.push_back(strides_in[k]);
    }
  }
  if (shape.empty()) {
    std::memcpy(dst, src, esize);
    return;
  }
  const auto e = static_cast<int64_t>(esize);
  const size_t r = shape.size();
  int64_t total = shape_size(shape);
  bool parallel = total * e > kParallelBytes && threads > 1;

  if (r >= 2 && strides[r - 2] == 1 && strides[r - 1] != 1) {
    // A batch of 2-D transposes: the second-to-last output dimension reads contiguous input.
    int64_t A = shape[r - 2], B = shape[r - 1], sb = strides[r - 1];
    int64_t outer = total / (A * B);
    constexpr int64_t kRows = 16;
    int64_t tiles = (A + kRows - 1) / kRows;
#pragma omp parallel for num_threads(threads) if (parallel)
    for (int64_t job = 0; job < outer * tiles; ++job) {
      int64_t o = job / tiles, a0 = job % tiles * kRows, a1 = std::min(A, a0 + kRows);
      int64_t off = 0, rem = o;
      for (size_t k = r - 2; k-- > 0;) {
        off += rem % shape[k] * strides[k];
        rem /= shape[k];
      }
      const std::byte* s = src + off * e;
      std::byte* d = dst + o * A * B * e;
      switch (esize) {
        case 1: transpose_tile<1>(s, d, a0, a1, B, sb); break;
        case 2: transpose_tile<2>(s, d, a0, a1, B, sb); break;
        case 4: transpose_tile<4>(s, d, a0, a1, B, sb); break;
        default: transpose_tile<8>(s, d, a0, a1, B, sb); break;
      }
    }
    return;
  }

  int64_t n = shape[r - 1], stride = strides[r - 1];
  int64_t rows = total / n;
  // Rows are handed out in blocks; each block finds its start once, then steps an odometer.
  constexpr int64_t kBlock = 256;
  int64_t blocks = (rows + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t row0 = blk * kBlock, row1 = std::min(rows, row0 + kBlock);
    std::vector<int64_t> idx(r - 1, 0);
    int64_t off = 0, rem = row0;
    for (size_t k = r - 1; k-- > 0;) {
      idx[k] = rem % shape[k];
      off += idx[k] * strides[k];
      rem /= shape[k];
    }
    for (int64_t row = row0; row < row1; ++row) {
      copy_row(src + off * e, dst + row * n * e, esize, n, stride);
      for (size_t k = r - 1; k-- > 0;) {
        off += strides[k];
        if (++idx[k] < shape[k]) break;
        off -= strides[k] * shape[k];
        idx[k] = 0;
      }
    }
  }
}

const std::byte* bytes(const Tensor& t) { return static_cast<const std::byte*>(t.raw()); }
std::byte* bytes(Tensor& t) { return static_cast<std::byte*>(t.raw()); }

// One element of type t holding v, as bytes.
std::array<std::byte, 8> element_bytes(DType t, double v) {
  std::array<std::byte, 8> b{};
  auto put = [&](auto x) { std::memcpy(b.data(), &x, sizeof x); };
  switch (t) {
    case DType::F32: put(static_cast<float>(v)); break;
    case DType::F64: put(v); break;
    case DType::I8: put(static_cast<int8_t>(v)); break;
    case DType::U8: put(static_cast<uint8_t>(v)); break;
    case DType::I16: put(static_cast<int16_t>(v)); break;
    case DType::U16: put(static_cast<uint16_t>(v)); break;
    case DType::I32: put(static_cast<int32_t>(v)); break;
    case DType::I64: put(static_cast<int64_t>(v)); break;
    case DType::Bool: put(static_cast<bool>(v != 0)); break;
  }
  return b;
}

void fill_bytes(std::byte* dst, int64_t n, const std::byte* value, size_t esize) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * static_cast<int64_t>(esize), value, esize);
}

// An integer list from an attribute (opsets before `since`) or from input k (from `since` on).
std::optional<std::vector<int64_t>> ints_arg(const Ctx& c, std::span<const Tensor* const> in, int64_t since,
                                             const char* attr, size_t k) {
  if (c.opset < since) {
    if (!c.node.has(attr)) return std::nullopt;
    return c.node.ints(attr);
  }
  if (k >= in.size() || !in[k]) return std::nullopt;
  return in[k]->to_ints();
}

Tensor copy_as(const Tensor& x, Shape shape) {
  Tensor y = x;
  y.reshape(std::move(shape));
  return y;
}

// ---------------------------------------------------------------------------------------------------

void identity(const Ctx&, std::span<const Tensor* const> in, std::span<Tensor> out) { out[0] = input(in, 0); }

void constant(const Ctx& c, std::span<const Tensor* const>, std::span<Tensor> out) {
  const Node& n = c.node;
  if (const Tensor* t = n.tensor("value")) {
    out[0] = *t;
  } else if (n.has("value_float")) {
    out[0] = Tensor::scalar(n.f("value_float", 0));
  } else if (n.has("value_floats")) {
    std::vector<float> v = n.floats("value_floats");
    out[0] = Tensor::from<float>({static_cast<int64_t>(v.size())}, v);
  } else if (n.has("value_int")) {
    out[0] = Tensor::scalar(n.i("value_int", 0));
  } else if (n.has("value_ints")) {
    std::vector<int64_t> v = n.ints("value_ints");
    out[0] = Tensor::from<int64_t>({static_cast<int64_t>(v.size())}, v);
  } else {
    throw error("no supported value attribute (value, value_float(s), value_int(s))");
  }
}

void shape_op(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int64_t r = x.rank();
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
  int64_t start = clamp(c.node.i("start", 0)), end = clamp(c.node.i("end", r));
  Tensor y(DType::I64, {std::max<int64_t>(0, end - start)});
  for (int64_t k = start; k < end; ++k) y.data<int64_t>()[k - start] = x.shape()[static_cast<size_t>(k)];
  out[0] = std::move(y);
}

void size_op(const Ctx&, std::span<const Tensor* const> in, std::span<Tensor> out) {
  out[0] = Tensor::scalar<int64_t>(input(in, 0).size());
}

void flatten(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int64_t axis = c.node.i("axis", 1), r = x.rank();
  if (axis < -r || axis > r) throw error(fmt::format("axis {} is out of range for rank {}", axis, r));
  if (axis < 0) axis += r;
  int64_t a = 1, b = 1;
  for (int64_t k = 0; k < r; ++k) (k < axis ? a : b) *= x.shape()[static_cast<size_t>(k)];
  out[0] = copy_as(x, {a, b});
}

void reshape(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  std::vector<int64_t> want;
  if (c.opset < 5)
    want = c.node.ints("shape");
  else
    want = input(in, 1, "shape").to_ints();
  bool allowzero = c.node.i("allowzero", 0) != 0;
  Shape shape(want.size());
  int infer = -1;
  int64_t known = 1;
  auto fail = [&] { return error(fmt::format("cannot reshape {} to {}", shape_string(x.shape()), shape_string(want))); };
  for (size_t k = 0; k < want.size(); ++k) {
    int64_t d = want[k];
    if (d == 0 && !allowzero) {
      if (k >= x.shape().size()) throw fail();
      d = x.shape()[k];
    } else if (d == -1) {
      if (infer >= 0) throw error(fmt::format("shape {} has more than one -1", shape_string(want)));
      infer = static_cast<int>(k);
      continue;
    } else if (d < 0) {
      throw fail();
    }
    shape[k] = d;
    known *= d;
  }
  if (infer >= 0) {
    if (known == 0 || x.size() % known != 0) throw fail();
    shape[static_cast<size_t>(infer)] = x.size() / known;
  } else if (known != x.size()) {
    throw fail();
  }
  out[0] = copy_as(x, std::move(shape));
}

void transpose(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int r = x.rank();
  std::vector<int64_t> perm = c.node.ints("perm");
  if (perm.empty())
    for (int k = r - 1; k >= 0; --k) perm.push_back(k);
  if (static_cast<int>(perm.size()) != r) throw error(fmt::format("perm has {} entries for rank {}", perm.size(), r));
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (int64_t& p : perm) {
    p = norm_axis(p, r, "perm entry");
    if (seen[static_cast<size_t>(p)]) throw error(fmt::format("perm {} is not a permutation", shape_string(perm)));
    seen[static_cast<size_t>(p)] = true;
  }
  std::vector<int64_t> st = strides_of(x.shape()), ost(static_cast<size_t>(r));
  Shape shape(static_cast<size_t>(r));
  for (size_t k = 0; k < perm.size(); ++k) {
    shape[k] = x.shape()[static_cast<size_t>(perm[k])];
    ost[k] = st[static_cast<size_t>(perm[k])];
  }
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  strided_copy(bytes(x), bytes(y), dtype_size(x.dtype()), shape, ost, c.threads);
  out[0] = std::move(y);
}

// Axes as a sorted list of distinct axes in [0, rank).
std::vector<int64_t> norm_axes(std::vector<int64_t> axes, int rank) {
  for (int64_t& a : axes) a = norm_axis(a, rank);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    throw error(fmt::format("axes {} repeat an axis", shape_string(axes)));
  return axes;
}

void squeeze(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  std::optional<std::vector<int64_t>> axes = ints_arg(c, in, 13, "axes", 1);
  Shape shape;
  if (!axes || axes->empty()) {
    for (int64_t d : x.shape())
      if (d != 1) shape.push_back(d);
  } else {
    std::vector<int64_t> ax = norm_axes(*axes, x.rank());
    for (int k = 0; k < x.rank(); ++k) {
      bool drop = std::binary_search(ax.begin(), ax.end(), k);
      if (drop && x.dim(k) != 1)
        throw error(fmt::format("cannot squeeze axis {} of size {} in {}", k, x.dim(k), shape_string(x.shape())));
      if (!drop) shape.push_back(x.dim(k));
    }
  }
  out[0] = copy_as(x, std::move(shape));
}

void unsqueeze(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  std::optional<std::vector<int64_t>> axes = ints_arg(c, in, 13, "axes", 1);
  if (!axes) throw error("axes are required");
  int r = x.rank() + static_cast<int>(axes->size());
  std::vector<int64_t> ax = norm_axes(*axes, r);
  Shape shape;
  size_t next = 0;
  for (int k = 0; k < r; ++k)
    shape.push_back(std::binary_search(ax.begin(), ax.end(), k) ? 1 : x.shape()[next++]);
  out[0] = copy_as(x, std::move(shape));
}

// Rows of `outer` blocks: each block of src (src_block bytes) lands at dst + o * dst_block + dst_off.
void copy_blocks(const std::byte* src, std::byte* dst, int64_t outer, int64_t src_block, int64_t dst_block, int64_t dst_off,
                 int threads) {
  bool parallel = outer * src_block > kParallelBytes && threads > 1 && outer > 1;
#pragma omp parallel for num_threads(threads) if (parallel)
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * dst_block + dst_off, src + o * src_block, static_cast<size_t>(src_block));
}

void concat(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x0 = input(in, 0);
  int r = x0.rank();
  if (r == 0) throw error("cannot concatenate scalars");
  if (c.opset >= 4 && !c.node.has("axis")) throw error("attribute 'axis' is required");
  int axis = norm_axis(c.node.i("axis", 1), r);
  Shape shape = x0.shape();
  shape[static_cast<size_t>(axis)] = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    const Tensor& x = input(in, k);
    if (x.dtype() != x0.dtype())
      throw error(fmt::format("input {} is {}, input 0 is {}", k, to_string(x.dtype()), to_string(x0.dtype())));
    bool ok = x.rank() == r;
    for (int d = 0; ok && d < r; ++d) ok = d == axis || x.dim(d) == x0.dim(d);
    if (!ok)
      throw error(fmt::format("input {} has shape {}, input 0 has {} (axis {})", k, shape_string(x.shape()),
                              shape_string(x0.shape()), axis));
    shape[static_cast<size_t>(axis)] += x.dim(axis);
  }
  Tensor y = Tensor::uninitialized(x0.dtype(), shape);
  auto e = static_cast<int64_t>(dtype_size(x0.dtype()));
  int64_t outer = 1, inner = e;
  for (int d = 0; d < axis; ++d) outer *= shape[static_cast<size_t>(d)];
  for (int d = axis + 1; d < r; ++d) inner *= shape[static_cast<size_t>(d)];
  int64_t dst_block = shape[static_cast<size_t>(axis)] * inner, off = 0;
  for (size_t k = 0; k < in.size(); ++k) {
    int64_t block = in[k]->dim(axis) * inner;
    if (block > 0) copy_blocks(bytes(*in[k]), bytes(y), outer, block, dst_block, off, c.threads);
    off += block;
  }
  out[0] = std::move(y);
}

void split(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int r = x.rank();
  if (r == 0) throw error("cannot split a scalar");
  int axis = norm_axis(c.node.i("axis", 0), r);
  int64_t dim = x.dim(axis), n = static_cast<int64_t>(out.size());
  std::optional<std::vector<int64_t>> sizes = ints_arg(c, in, 13, "split", 1);
  if (sizes && sizes->empty()) sizes.reset();
  if (!sizes) {
    if (n == 0 || dim % n != 0) throw error(fmt::format("cannot split axis {} of size {} into {} equal parts", axis, dim, n));
    sizes = std::vector<int64_t>(static_cast<size_t>(n), dim / n);
  }
  if (static_cast<int64_t>(sizes->size()) != n)
    throw error(fmt::format("split {} has {} entries for {} outputs", shape_string(*sizes), sizes->size(), n));
  int64_t sum = 0;
  for (int64_t s : *sizes) {
    if (s < 0) throw error(fmt::format("split {} has a negative size", shape_string(*sizes)));
    sum += s;
  }
  if (sum != dim) throw error(fmt::format("split {} does not add up to axis {} of size {}", shape_string(*sizes), axis, dim));
  auto e = static_cast<int64_t>(dtype_size(x.dtype()));
  int64_t outer = 1, inner = e;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = axis + 1; d < r; ++d) inner *= x.dim(d);
  int64_t off = 0;
  for (size_t k = 0; k < out.size(); ++k) {
    Shape shape = x.shape();
    shape[static_cast<size_t>(axis)] = (*sizes)[k];
    Tensor y = Tensor::uninitialized(x.dtype(), shape);
    int64_t block = (*sizes)[k] * inner;
    // Reading strided blocks of x into a contiguous y: copy_blocks with the roles of the strides swapped.
    bool parallel = outer * block > kParallelBytes && c.threads > 1 && outer > 1;
    const std::byte* src = bytes(x) + off;
    std::byte* dst = bytes(y);
    int64_t src_block = dim * inner;
#pragma omp parallel for num_threads(c.threads) if (parallel)
    for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * block, src + o * src_block, static_cast<size_t>(block));
    off += block;
    out[k] = std::move(y);
  }
}

void slice(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int r = x.rank();
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.node.ints("starts");
    ends = c.node.ints("ends");
    axes = c.node.ints("axes");
  } else {
    starts = input(in, 1, "starts").to_ints();
    ends = input(in, 2, "ends").to_ints();
    if (in.size() > 3 && in[3]) axes = in[3]->to_ints();
    if (in.size() > 4 && in[4]) steps = in[4]->to_ints();
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    throw error(fmt::format("starts, ends, axes and steps have {}, {}, {} and {} entries", starts.size(), ends.size(),
                            axes.size(), steps.size()));
  std::vector<int64_t> first(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
  Shape shape = x.shape();
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (size_t k = 0; k < starts.size(); ++k) {
    auto a = static_cast<size_t>(norm_axis(axes[k], r));
    if (seen[a]) throw error(fmt::format("axis {} is sliced twice", a));
    seen[a] = true;
    int64_t d = shape[a], s = starts[k], e = ends[k], st = steps[k];
    if (st == 0) throw error("steps must not be 0");
    st = std::max(st, -std::numeric_limits<int64_t>::max());
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t len;
    if (d == 0) {
      s = 0;
      len = 0;
    } else if (st > 0) {
      s = std::clamp<int64_t>(s, 0, d);
      e = std::clamp<int64_t>(e, 0, d);
      len = e > s ? (e - s - 1) / st + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, d - 1);
      e = std::clamp<int64_t>(e, -1, d - 1);
      len = s > e ? (s - e - 1) / -st + 1 : 0;
    }
    first[a] = s;
    step[a] = st;
    shape[a] = len;
  }
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  if (y.size() > 0) {
    std::vector<int64_t> st = strides_of(x.shape());
    int64_t off = 0;
    for (size_t a = 0; a < st.size(); ++a) {
      off += first[a] * st[a];
      st[a] *= step[a];
    }
    strided_copy(bytes(x) + off * static_cast<int64_t>(dtype_size(x.dtype())), bytes(y), dtype_size(x.dtype()), shape, st,
                 c.threads);
  }
  out[0] = std::move(y);
}

// The input index that output index o of a padded axis reads, or -1 for the constant.
int64_t pad_source(int64_t o, int64_t before, int64_t d, int mode) {
  int64_t j = o - before;
  if (j >= 0 && j < d) return j;
  if (mode == 0) return -1;
  if (mode == 1) return std::clamp<int64_t>(j, 0, d - 1);  // edge
  if (d == 1) return 0;                                      // reflect
  int64_t period = 2 * (d - 1);
  j %= period;
  if (j < 0) j += period;
  return j < d ? j : period - j;
}

void pad(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int r = x.rank();
  auto esize = dtype_size(x.dtype());
  std::vector<int64_t> pads;
  std::array<std::byte, 8> value = element_bytes(x.dtype(), 0);
  if (c.opset < 11) {
    pads = c.node.ints(c.opset < 2 ? "paddings" : "pads");
    value = element_bytes(x.dtype(), c.node.f("value", 0));
  } else {
    pads = input(in, 1, "pads").to_ints();
    if (in.size() > 2 && in[2] && in[2]->size() > 0) {
      if (in[2]->dtype() != x.dtype())
        throw error(fmt::format("constant_value is {}, data is {}", to_string(in[2]->dtype()), to_string(x.dtype())));
      std::memcpy(value.data(), in[2]->raw(), esize);
    }
    if (in.size() > 3 && in[3]) {
      // Opset 18 axes: pads name only these axes.
      std::vector<int64_t> axes = in[3]->to_ints();
      if (pads.size() != 2 * axes.size())
        throw error(fmt::format("pads has {} entries for {} axes", pads.size(), axes.size()));
      std::vector<int64_t> full(2 * static_cast<size_t>(r), 0);
      for (size_t k = 0; k < axes.size(); ++k) {
        auto a = static_cast<size_t>(norm_axis(axes[k], r));
        full[a] = pads[k];
        full[a + static_cast<size_t>(r)] = pads[k + axes.size()];
      }
      pads = std::move(full);
    }
  }
  if (pads.size() != 2 * static_cast<size_t>(r)) throw error(fmt::format("pads has {} entries for rank {}", pads.size(), r));
  std::string m = c.node.s("mode", "constant");
  int mode = m == "constant" ? 0 : m == "edge" ? 1 : m == "reflect" ? 2 : -1;
  if (mode < 0) throw error(fmt::format("mode '{}' is not supported", m));

  Shape shape(static_cast<size_t>(r));
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(r));
  for (size_t k = 0; k < shape.size(); ++k) {
    int64_t d = x.shape()[k], before = pads[k], after = pads[k + static_cast<size_t>(r)];
    shape[k] = d + before + after;
    if (shape[k] < 0) throw error(fmt::format("pads {} crop more than the input {}", shape_string(pads), shape_string(x.shape())));
    if (mode != 0 && d == 0 && shape[k] > 0) throw error(fmt::format("cannot {}-pad an empty axis", m));
    src[k].resize(static_cast<size_t>(shape[k]));
    for (int64_t o = 0; o < shape[k]; ++o) src[k][static_cast<size_t>(o)] = pad_source(o, before, d, mode);
  }
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  if (r == 0) {
    out[0] = x;
    return;
  }
  if (y.size() == 0) {
    out[0] = std::move(y);
    return;
  }
  // The last axis as runs: [out start, length, input start or -1].
  struct Run { int64_t start, len, from; };
  std::vector<Run> runs;
  const std::vector<int64_t>& last = src.back();
  for (int64_t o = 0; o < shape.back(); ++o) {
    int64_t f = last[static_cast<size_t>(o)];
    if (!runs.empty()) {
      Run& p = runs.back();
      if ((f < 0 && p.from < 0) || (f >= 0 && p.from >= 0 && f == p.from + p.len)) {
        ++p.len;
        continue;
      }
    }
    runs.push_back({o, 1, f});
  }
  std::vector<int64_t> st = strides_of(x.shape());
  auto e = static_cast<int64_t>(esize);
  int64_t n = shape.back(), rows = y.size() / n;
  bool parallel = y.size() * e > kParallelBytes && c.threads > 1;
#pragma omp parallel for num_threads(c.threads) if (parallel)
  for (int64_t row = 0; row < rows; ++row) {
    std::byte* d = bytes(y) + row * n * e;
    int64_t off = 0, rem = row;
    for (size_t k = shape.size() - 1; k-- > 0;) {
      int64_t s = src[k][static_cast<size_t>(rem % shape[k])];
      rem /= shape[k];
      if (s < 0) {
        off = -1;
        break;
      }
      off += s * st[k];
    }
    if (off < 0) {
      fill_bytes(d, n, value.data(), esize);
      continue;
    }
    const std::byte* s = bytes(x) + off * e;
    for (const Run& run : runs) {
      if (run.from < 0)
        fill_bytes(d + run.start * e, run.len, value.data(), esize);
      else
        std::memcpy(d + run.start * e, s + run.from * e, static_cast<size_t>(run.len * e));
    }
  }
  out[0] = std::move(y);
}

void gather(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  const Tensor& ind = input(in, 1, "indices");
  int r = x.rank();
  if (r == 0) throw error("cannot gather from a scalar");
  int axis = norm_axis(c.node.i("axis", 0), r);
  int64_t dim = x.dim(axis);
  std::vector<int64_t> idx = ind.to_ints();
  for (int64_t& i : idx) {
    if (i < -dim || i >= dim) throw error(fmt::format("index {} is out of range for axis {} of size {}", i, axis, dim));
    if (i < 0) i += dim;
  }
  Shape shape(x.shape().begin(), x.shape().begin() + axis);
  shape.insert(shape.end(), ind.shape().begin(), ind.shape().end());
  shape.insert(shape.end(), x.shape().begin() + axis + 1, x.shape().end());
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  auto e = static_cast<int64_t>(dtype_size(x.dtype()));
  int64_t outer = 1, inner = e, n = static_cast<int64_t>(idx.size());
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = axis + 1; d < r; ++d) inner *= x.dim(d);
  const std::byte* s = bytes(x);
  std::byte* d = bytes(y);
  bool parallel = y.size() * e > kParallelBytes && c.threads > 1;
#pragma omp parallel for num_threads(c.threads) if (parallel)
  for (int64_t job = 0; job < outer * n; ++job) {
    int64_t o = job / n, j = job % n;
    std::memcpy(d + job * inner, s + (o * dim + idx[static_cast<size_t>(j)]) * inner, static_cast<size_t>(inner));
  }
  out[0] = std::move(y);
}

void gather_elements(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  const Tensor& ind = input(in, 1, "indices");
  int r = x.rank();
  if (r == 0 || ind.rank() != r)
    throw error(fmt::format("indices {} and data {} must have the same rank", shape_string(ind.shape()), shape_string(x.shape())));
  int axis = norm_axis(c.node.i("axis", 0), r);
  for (int k = 0; k < r; ++k)
    if (k != axis && ind.dim(k) > x.dim(k))
      throw error(fmt::format("indices {} do not fit in data {}", shape_string(ind.shape()), shape_string(x.shape())));
  Tensor y = Tensor::uninitialized(x.dtype(), ind.shape());
  auto esize = dtype_size(x.dtype());
  std::vector<int64_t> st = strides_of(x.shape());
  std::vector<int64_t> pos(static_cast<size_t>(r), 0);
  int64_t dim = x.dim(axis), base = 0;
  const auto a = static_cast<size_t>(axis);
  for (int64_t i = 0; i < y.size(); ++i) {
    int64_t v = ind.int_at(i);
    if (v < -dim || v >= dim) throw error(fmt::format("index {} is out of range for axis {} of size {}", v, axis, dim));
    if (v < 0) v += dim;
    std::memcpy(bytes(y) + i * static_cast<int64_t>(esize), bytes(x) + (base + v * st[a]) * static_cast<int64_t>(esize), esize);
    // base: the data offset of pos without the gather axis.
    for (size_t k = static_cast<size_t>(r); k-- > 0;) {
      if (k != a) base += st[k];
      if (++pos[k] < ind.shape()[k]) break;
      if (k != a) base -= st[k] * ind.shape()[k];
      pos[k] = 0;
    }
  }
  out[0] = std::move(y);
}

// Writes x broadcast to `shape` (x's dims right-aligned, each equal or 1) into a new tensor.
Tensor broadcast_to(const Tensor& x, const Shape& shape, int threads) {
  std::vector<int64_t> xs = strides_of(x.shape()), st(shape.size(), 0);
  size_t lead = shape.size() - x.shape().size();
  for (size_t k = 0; k < x.shape().size(); ++k)
    if (x.shape()[k] != 1) st[lead + k] = xs[k];
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  strided_copy(bytes(x), bytes(y), dtype_size(x.dtype()), shape, st, threads);
  return y;
}

void expand(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  std::vector<int64_t> want = input(in, 1, "shape").to_ints();
  size_t r = std::max(want.size(), x.shape().size());
  Shape shape(r);
  for (size_t k = 0; k < r; ++k) {
    size_t kx = k + x.shape().size(), kw = k + want.size();
    int64_t a = kx >= r ? x.shape()[kx - r] : 1, b = kw >= r ? want[kw - r] : 1;
    if (a != b && a != 1 && b != 1)
      throw error(fmt::format("cannot expand {} to {}", shape_string(x.shape()), shape_string(want)));
    shape[k] = a == 1 ? b : a;
    if (shape[k] < 0) throw error(fmt::format("cannot expand {} to {}", shape_string(x.shape()), shape_string(want)));
  }
  out[0] = broadcast_to(x, shape, c.threads);
}

void tile(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  std::vector<int64_t> reps = input(in, 1, "repeats").to_ints();
  if (reps.size() != x.shape().size())
    throw error(fmt::format("repeats has {} entries for rank {}", reps.size(), x.rank()));
  // The output [r0*d0, r1*d1, ...] read as [r0, d0, r1, d1, ...] with stride 0 over each repeat.
  std::vector<int64_t> xs = strides_of(x.shape());
  Shape view, st, shape;
  for (size_t k = 0; k < reps.size(); ++k) {
    if (reps[k] < 0) throw error(fmt::format("repeats {} has a negative entry", shape_string(reps)));
    view.insert(view.end(), {reps[k], x.shape()[k]});
    st.insert(st.end(), {0, xs[k]});
    shape.push_back(reps[k] * x.shape()[k]);
  }
  Tensor y = Tensor::uninitialized(x.dtype(), shape);
  strided_copy(bytes(x), bytes(y), dtype_size(x.dtype()), view, st, c.threads);
  out[0] = std::move(y);
}

void constant_of_shape(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  Shape shape = input(in, 0, "shape").to_ints();
  for (int64_t d : shape)
    if (d < 0) throw error(fmt::format("shape {} has a negative dimension", shape_string(shape)));
  const Tensor* v = c.node.tensor("value");
  if (v && v->size() != 1) throw error(fmt::format("value must hold one element, it has {}", v->size()));
  Tensor y(v ? v->dtype() : DType::F32, shape);
  if (v) fill_bytes(bytes(y), y.size(), bytes(*v), dtype_size(v->dtype()));
  out[0] = std::move(y);
}

template <class T>
Tensor range_of(const Tensor& start, const Tensor& limit, const Tensor& delta) {
  T s = start.data<T>()[0], l = limit.data<T>()[0], d = delta.data<T>()[0];
  if (d == 0) throw error("delta must not be 0");
  int64_t n;
  constexpr int64_t kMax = int64_t{1} << 34;
  if constexpr (std::is_floating_point_v<T>) {
    double count = std::ceil((static_cast<double>(l) - s) / d);
    if (!(count <= static_cast<double>(kMax))) throw error(fmt::format("range({}, {}, {}) is too large", s, l, d));
    n = std::max<int64_t>(0, static_cast<int64_t>(count));
  } else {
    // The distance in unsigned arithmetic, exact even across the whole int64 range.
    bool up = d > 0;
    auto from = static_cast<uint64_t>(static_cast<int64_t>(s)), to = static_cast<uint64_t>(static_cast<int64_t>(l));
    uint64_t step = up ? static_cast<uint64_t>(static_cast<int64_t>(d)) : 0 - static_cast<uint64_t>(static_cast<int64_t>(d));
    bool empty = up ? l <= s : l >= s;
    uint64_t dist = empty ? 0 : up ? to - from : from - to;
    uint64_t count = dist / step + (dist % step != 0);
    if (count > static_cast<uint64_t>(kMax)) throw error(fmt::format("range({}, {}, {}) is too large", s, l, d));
    n = static_cast<int64_t>(count);
  }
  Tensor y = Tensor::uninitialized(dtype_of<T>(), {n});
  T* p = y.data<T>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(s + static_cast<T>(i) * d);
  return y;
}

void range(const Ctx&, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor &s = input(in, 0, "start"), &l = input(in, 1, "limit"), &d = input(in, 2, "delta");
  if (s.size() != 1 || l.size() != 1 || d.size() != 1) throw error("start, limit and delta must be scalars");
  if (l.dtype() != s.dtype() || d.dtype() != s.dtype()) throw error("start, limit and delta must have the same type");
  switch (s.dtype()) {
    case DType::F32: out[0] = range_of<float>(s, l, d); break;
    case DType::F64: out[0] = range_of<double>(s, l, d); break;
    case DType::I16: out[0] = range_of<int16_t>(s, l, d); break;
    case DType::I32: out[0] = range_of<int32_t>(s, l, d); break;
    case DType::I64: out[0] = range_of<int64_t>(s, l, d); break;
    default: throw error(fmt::format("element type {} is not supported", to_string(s.dtype())));
  }
}

void dropout(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  // Inference: the identity. Only an explicit training_mode (opset 12) with a ratio above 0 would drop values.
  if (c.opset >= 12 && in.size() > 2 && in[2] && in[2]->size() > 0 && in[2]->int_at(0) != 0) {
    double ratio = in.size() > 1 && in[1] && in[1]->size() > 0 ? in[1]->float_at(0) : 0.5;
    if (ratio != 0) throw error("training mode (random dropout) is not supported");
  }
  out[0] = x;
  if (out.size() > 1) {
    // The mask: bool from opset 10, the data type before.
    DType t = c.opset >= 10 ? DType::Bool : x.dtype();
    Tensor mask = Tensor::uninitialized(t, x.shape());
    fill_bytes(bytes(mask), mask.size(), element_bytes(t, 1).data(), dtype_size(t));
    out[1] = std::move(mask);
  }
}

// DepthToSpace and SpaceToDepth as strided reads of a 6-D view of the NCHW input.
void depth_to_space(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int64_t b = c.node.i("blocksize", 0);
  if (x.rank() != 4 || b < 1 || x.dim(1) % (b * b) != 0)
    throw error(fmt::format("cannot rearrange {} with blocksize {}", shape_string(x.shape()), b));
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), oc = C / (b * b);
  bool crd = c.node.s("mode", "DCR") == "CRD";
  // Output viewed as [N, oc, H, b1, W, b2]; input channel = DCR: (b1 * b + b2) * oc + c, CRD: c * b * b + b1 * b + b2.
  int64_t hw = H * W;
  std::vector<int64_t> st = crd ? std::vector<int64_t>{C * hw, b * b * hw, W, b * hw, 1, hw}
                                : std::vector<int64_t>{C * hw, hw, W, b * oc * hw, 1, oc * hw};
  Tensor y = Tensor::uninitialized(x.dtype(), {N, oc, H * b, W * b});
  strided_copy(bytes(x), bytes(y), dtype_size(x.dtype()), {N, oc, H, b, W, b}, st, c.threads);
  out[0] = std::move(y);
}

void space_to_depth(const Ctx& c, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0);
  int64_t b = c.node.i("blocksize", 0);
  if (x.rank() != 4 || b < 1 || x.dim(2) % b != 0 || x.dim(3) % b != 0)
    throw error(fmt::format("cannot rearrange {} with blocksize {}", shape_string(x.shape()), b));
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  // Output viewed as [N, b1, b2, C, H/b, W/b]: channel (b1 * b + b2) * C + c reads x[n, c, h * b + b1, w * b + b2].
  Tensor y = Tensor::uninitialized(x.dtype(), {N, C * b * b, H / b, W / b});
  strided_copy(bytes(x), bytes(y), dtype_size(x.dtype()), {N, b, b, C, H / b, W / b}, {C * H * W, W, 1, H * W, b * W, b},
               c.threads);
  out[0] = std::move(y);
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add("", "Identity", kernel(identity));
  r.add("", "Constant", kernel(constant));
  r.add("", "Shape", kernel(shape_op));
  r.add("", "Size", kernel(size_op));
  r.add("", "Flatten", kernel(flatten));
  r.add("", "Reshape", kernel(reshape));
  r.add("", "Transpose", kernel(transpose));
  r.add("", "Squeeze", kernel(squeeze));
  r.add("", "Unsqueeze", kernel(unsqueeze));
  r.add("", "Concat", kernel(concat));
  r.add("", "Split", kernel(split));
  r.add("", "Slice", kernel(slice));
  r.add("", "Pad", kernel(pad));
  r.add("", "Gather", kernel(gather));
  r.add("", "GatherElements", kernel(gather_elements));
  r.add("", "Expand", kernel(expand));
  r.add("", "Tile", kernel(tile));
  r.add("", "ConstantOfShape", kernel(constant_of_shape));
  r.add("", "Range", kernel(range));
  r.add("", "Dropout", kernel(dropout));
  r.add("", "DepthToSpace", kernel(depth_to_space));
  r.add("", "SpaceToDepth", kernel(space_to_depth));
}

}  // namespace lowbit
