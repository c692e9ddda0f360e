// Conv, Gemm and MatMul through oneDNN primitives (made once per input shape, weights reordered
// once when they are constant); BatchNormalization as a per-channel affine loop.
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "lowbit/runtime/kernel.hpp"
#include "src/runtime/ops/conv_geometry.hpp"

namespace lowbit {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

memory::dims to_dims(const Shape& s) { return memory::dims(s.begin(), s.end()); }

tag plain_tag(size_t rank) {
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    case 6: return tag::abcdef;
    default: throw std::runtime_error(fmt::format("rank {} is not supported", rank));
  }
}

memory::desc plain_desc(const Shape& s) { return memory::desc(to_dims(s), dt::f32, plain_tag(s.size())); }

// A fused activation a later pass may attach to Conv / Gemm / MatMul ("lowbit_activation" = Relu or Clip).
void add_fused_activation(const Node& n, dnnl::post_ops& po) {
  std::string act = n.s("lowbit_activation", "");
  if (act.empty()) return;
  if (act == "Relu")
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  else if (act == "Clip")
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, n.f("lowbit_act_min", -INFINITY), n.f("lowbit_act_max", INFINITY));
  else
    throw std::runtime_error(fmt::format("unknown fused activation '{}'", act));
}

// Weights in the layout a primitive wants: reordered once per layout while they stay constant.
class PreparedWeights {
 public:
  explicit PreparedWeights(const Tensor* constant) : constant_(constant) {}
  memory get(const Tensor& w, const memory::desc& plain, const memory::desc& want, dnnl::stream& s) {
    memory src(plain, cpu_engine(), const_cast<void*>(w.raw()));
    if (plain == want) return src;
    if (constant_ && cached_ && cached_.get_desc() == want) return cached_;
    memory dst(want, cpu_engine());
    dnnl::reorder(src, dst).execute(s, src, dst);
    s.wait();
    if (constant_) cached_ = dst;
    return dst;
  }

 private:
  const Tensor* constant_;
  memory cached_;
};

tag channels_last_tag(size_t rank) {
  switch (rank) {
    case 3: return tag::acb;
    case 4: return tag::acdb;
    case 5: return tag::acdeb;
    default: throw std::runtime_error(fmt::format("no channels-last layout for rank {}", rank));
  }
}

Tensor reorder_layout(const Tensor& t, bool to_channels_last) {
  require_dtype(t, DType::F32, "a tensor changing layout");
  Tensor out = Tensor::uninitialized(DType::F32, t.shape());
  out.set_channels_last(to_channels_last);
  if (t.channels_last() == to_channels_last || t.size() == 0) {
    std::memcpy(out.raw(), t.raw(), t.bytes());
    return out;
  }
  memory::desc cl(to_dims(t.shape()), dt::f32, channels_last_tag(t.shape().size()));
  memory::desc plain = plain_desc(t.shape());
  memory src(to_channels_last ? plain : cl, cpu_engine(), const_cast<void*>(t.raw()));
  memory dst(to_channels_last ? cl : plain, cpu_engine(), out.raw());
  dnnl::stream s(cpu_engine());
  dnnl::reorder(src, dst).execute(s, src, dst);
  s.wait();
  return out;
}

// Convolution in channels-last layout (oneDNN's fastest CPU kernels: brgconv, brdgmm depthwise):
// a plain input is reordered first; the output stays channels-last for the next layer.
class ConvKernel : public Kernel {
 public:
  explicit ConvKernel(const KernelContext& c) : node_(c.node), weights_(c.constant(1)) {
    const Tensor* w = c.constant(1);
    if (w && w->rank() < 3) throw std::runtime_error(fmt::format("weights of shape {} are not a convolution kernel", shape_string(w->shape())));
  }

  bool accepts_channels_last(size_t k) const override { return k == 0; }

  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x_in = input(in, 0, "X");
    const Tensor& w = input(in, 1, "W");
    require_dtype(x_in, DType::F32, "X");
    require_dtype(w, DType::F32, "W");
    const Tensor* b = in.size() > 2 ? in[2] : nullptr;
    ConvGeometry geo = conv_geometry(node_, x_in.shape(), w.shape());
    if (b && (b->rank() != 1 || b->dim(0) != w.dim(0)))
      throw std::runtime_error(fmt::format("bias of shape {} does not match {} output channels", shape_string(b->shape()), w.dim(0)));
    Tensor converted;
    const Tensor* x = &x_in;
    if (!x_in.channels_last()) {
      converted = reorder_layout(x_in, true);
      x = &converted;
    }
    if (!prim_ || x->shape() != x_shape_ || w.shape() != w_shape_) build(x->shape(), w.shape(), geo, b != nullptr);
    Tensor y = Tensor::uninitialized(DType::F32, geo.output_shape);
    y.set_channels_last(true);
    dnnl::stream s(cpu_engine());
    memory src(pd_.src_desc(), cpu_engine(), const_cast<void*>(x->raw()));
    memory wei = weights_.get(w, w_plain_, pd_.weights_desc(), s);
    memory dst(pd_.dst_desc(), cpu_engine(), y.raw());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    if (b) args.emplace(DNNL_ARG_BIAS, memory(pd_.bias_desc(), cpu_engine(), const_cast<void*>(b->raw())));
    prim_.execute(s, args);
    s.wait();
    out[0] = std::move(y);
  }

 private:
  void build(const Shape& xs, const Shape& ws, const ConvGeometry& geo, bool has_bias) {
    int64_t groups = geo.groups;
    size_t sp = xs.size() - 2;
    memory::dims wd = to_dims(ws);
    if (groups > 1) {
      wd[0] /= groups;
      wd.insert(wd.begin(), groups);
      w_plain_ = memory::desc(wd, dt::f32, plain_tag(wd.size()));
    } else {
      w_plain_ = plain_desc(ws);
    }
    memory::desc src_md(to_dims(xs), dt::f32, channels_last_tag(xs.size()));
    memory::desc dst_md(to_dims(geo.output_shape), dt::f32, channels_last_tag(xs.size()));
    memory::desc wei_md(wd, dt::f32, tag::any);
    memory::desc bias_md = has_bias ? memory::desc({ws[0]}, dt::f32, tag::a) : memory::desc();
    memory::dims strides(geo.strides.begin(), geo.strides.end()), dil(sp), pl(sp), pr(sp);
    for (size_t k = 0; k < sp; ++k) {
      dil[k] = geo.dilations[k] - 1;
      pl[k] = geo.pads_begin[k];
      pr[k] = geo.pads_end[k];
    }
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
                                      bias_md, dst_md, strides, dil, pl, pr);
    dnnl::primitive_attr attr;
    dnnl::post_ops po;
    add_fused_activation(node_, po);
    attr.set_post_ops(po);
    pd_ = dnnl::convolution_forward::primitive_desc(d, attr, cpu_engine());
    prim_ = dnnl::convolution_forward(pd_);
    x_shape_ = xs;
    w_shape_ = ws;
  }

  const Node& node_;
  PreparedWeights weights_;
  memory::desc w_plain_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  Shape x_shape_, w_shape_;
};

// Y[..., M, N] = A[..., M, K] x B[..., K, N] with batch broadcasting (as numpy.matmul), optional
// transposes (Gemm), output scale alpha and bias of shape [N] fused.
class MatMulPrimitive {
 public:
  explicit MatMulPrimitive(const Tensor* constant_b) : weights_(constant_b) {}

  // a_shape / b_shape are the logical (possibly transposed) operand shapes of equal rank >= 2.
  void run(const Tensor& a, const Shape& a_shape, bool trans_a, const Tensor& b, const Shape& b_shape, bool trans_b,
           const Tensor* bias, float alpha, const Node& node, Tensor& y) {
    size_t r = a_shape.size();
    Shape y_shape(r);
    for (size_t k = 0; k + 2 < r; ++k) {
      if (a_shape[k] != b_shape[k] && a_shape[k] != 1 && b_shape[k] != 1)
        throw std::runtime_error(fmt::format("batch dimensions of {} and {} do not broadcast", shape_string(a_shape), shape_string(b_shape)));
      y_shape[k] = std::max(a_shape[k], b_shape[k]);
    }
    if (a_shape[r - 1] != b_shape[r - 2])
      throw std::runtime_error(fmt::format("inner dimensions do not match: {} x {}", shape_string(a_shape), shape_string(b_shape)));
    y_shape[r - 2] = a_shape[r - 2];
    y_shape[r - 1] = b_shape[r - 1];
    bool rebuild = !prim_ || a_shape != a_shape_ || b_shape != b_shape_ || trans_a != trans_a_ || trans_b != trans_b_ ||
                   (bias != nullptr) != has_bias_;
    if (rebuild) {
      a_md_ = strided_desc(a_shape, trans_a);
      b_plain_ = strided_desc(b_shape, trans_b);
      memory::desc b_any = weights_constant() ? memory::desc(to_dims(b_shape), dt::f32, tag::any) : b_plain_;
      memory::desc bias_md;
      if (bias) {
        memory::dims bd(r, 1);
        bd[r - 1] = b_shape[r - 1];
        bias_md = memory::desc(bd, dt::f32, plain_tag(r));
      }
      dnnl::matmul::desc d(a_md_, b_any, bias_md, plain_desc(y_shape));
      dnnl::primitive_attr attr;
      if (alpha != 1.f) attr.set_output_scales(0, {alpha});
      dnnl::post_ops po;
      add_fused_activation(node, po);
      attr.set_post_ops(po);
      pd_ = dnnl::matmul::primitive_desc(d, attr, cpu_engine());
      prim_ = dnnl::matmul(pd_);
      a_shape_ = a_shape;
      b_shape_ = b_shape;
      trans_a_ = trans_a;
      trans_b_ = trans_b;
      has_bias_ = bias != nullptr;
    }
    y = Tensor::uninitialized(DType::F32, y_shape);
    dnnl::stream s(cpu_engine());
    memory am(a_md_, cpu_engine(), const_cast<void*>(a.raw()));
    memory bm = weights_.get(b, b_plain_, pd_.weights_desc(), s);
    memory ym(pd_.dst_desc(), cpu_engine(), y.raw());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, ym}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(pd_.bias_desc(), cpu_engine(), const_cast<void*>(bias->raw())));
    prim_.execute(s, args);
    s.wait();
  }

 private:
  bool weights_constant() const { return constant_b_; }
  // The desc of a row-major tensor whose last two dims are read transposed when `trans`.
  static memory::desc strided_desc(const Shape& logical, bool trans) {
    size_t r = logical.size();
    memory::dims strides(r);
    // Physical layout: logical with the last two dims swapped when trans.
    Shape phys = logical;
    if (trans) std::swap(phys[r - 1], phys[r - 2]);
    memory::dims pstr(r);
    int64_t st = 1;
    for (size_t k = r; k-- > 0;) {
      pstr[k] = st;
      st *= phys[k];
    }
    strides = pstr;
    if (trans) std::swap(strides[r - 1], strides[r - 2]);
    for (size_t k = 0; k + 2 < r; ++k)
      if (logical[k] == 1) strides[k] = 0;
    return memory::desc(to_dims(logical), dt::f32, strides);
  }

  PreparedWeights weights_;
  bool constant_b_ = false;
  memory::desc a_md_, b_plain_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  Shape a_shape_, b_shape_;
  bool trans_a_ = false, trans_b_ = false, has_bias_ = false;

 public:
  void set_constant_b(bool c) { constant_b_ = c; }
};

class GemmKernel : public Kernel {
 public:
  explicit GemmKernel(const KernelContext& c) : node_(c.node), mm_(c.constant(1)) {
    mm_.set_constant_b(c.constant(1) != nullptr);
    alpha_ = node_.f("alpha", 1.f);
    beta_ = node_.f("beta", 1.f);
    trans_a_ = node_.i("transA", 0) != 0;
    trans_b_ = node_.i("transB", 0) != 0;
  }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& a = input(in, 0, "A");
    const Tensor& b = input(in, 1, "B");
    require_dtype(a, DType::F32, "A");
    require_dtype(b, DType::F32, "B");
    if (a.rank() != 2 || b.rank() != 2)
      throw std::runtime_error(fmt::format("A {} and B {} must be 2-D", shape_string(a.shape()), shape_string(b.shape())));
    Shape as = a.shape(), bs = b.shape();
    if (trans_a_) std::swap(as[0], as[1]);
    if (trans_b_) std::swap(bs[0], bs[1]);
    const Tensor* c = in.size() > 2 ? in[2] : nullptr;
    if (c) require_dtype(*c, DType::F32, "C");
    int64_t m = as[0], n = bs[1];
    // A bias row [N] or [1,N] with beta 1 goes into the primitive; anything else is added after.
    // Not with alpha != 1: oneDNN applies the output scale to the bias too, alpha (A B + C).
    bool fuse_bias = c && beta_ == 1.f && alpha_ == 1.f && c->size() == n && (c->rank() == 1 || (c->rank() == 2 && c->dim(0) == 1));
    Tensor bias_row;
    if (fuse_bias) {
      bias_row = *c;
      bias_row.reshape({n});
    }
    Tensor y;
    mm_.run(a, as, trans_a_, b, bs, trans_b_, fuse_bias ? &bias_row : nullptr, alpha_, node_, y);
    if (c && !fuse_bias && beta_ != 0.f) add_broadcast_c(*c, m, n, y);
    out[0] = std::move(y);
  }

 private:
  void add_broadcast_c(const Tensor& c, int64_t m, int64_t n, Tensor& y) const {
    Shape cs = c.shape();
    while (cs.size() < 2) cs.insert(cs.begin(), 1);
    if (cs.size() != 2 || (cs[0] != 1 && cs[0] != m) || (cs[1] != 1 && cs[1] != n))
      throw std::runtime_error(fmt::format("C of shape {} does not broadcast to [{},{}]", shape_string(c.shape()), m, n));
    const float* cd = c.data<float>();
    float* yd = y.data<float>();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) yd[i * n + j] += beta_ * cd[(cs[0] == 1 ? 0 : i) * cs[1] + (cs[1] == 1 ? 0 : j)];
  }

  const Node& node_;
  MatMulPrimitive mm_;
  float alpha_, beta_;
  bool trans_a_, trans_b_;
};

class MatMulKernel : public Kernel {
 public:
  explicit MatMulKernel(const KernelContext& c) : node_(c.node), mm_(c.constant(1)) { mm_.set_constant_b(c.constant(1) != nullptr); }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& a = input(in, 0, "A");
    const Tensor& b = input(in, 1, "B");
    require_dtype(a, DType::F32, "A");
    require_dtype(b, DType::F32, "B");
    if (a.rank() == 0 || b.rank() == 0) throw std::runtime_error("MatMul operands must have rank >= 1");
    // numpy.matmul: a 1-D A is [1,K], a 1-D B is [K,1]; the added dims are dropped afterwards.
    Shape as = a.shape(), bs = b.shape();
    bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    size_t r = std::max(as.size(), bs.size());
    while (as.size() < r) as.insert(as.begin(), 1);
    while (bs.size() < r) bs.insert(bs.begin(), 1);
    Tensor y;
    mm_.run(a, as, false, b, bs, false, nullptr, 1.f, node_, y);
    // Broadcast batch dims, then M and N unless they came from a promoted 1-D operand.
    Shape ys(y.shape().begin(), y.shape().end() - 2);
    if (!a_vec) ys.push_back(as[r - 2]);
    if (!b_vec) ys.push_back(bs[r - 1]);
    y.reshape(ys);
    out[0] = std::move(y);
  }

 private:
  const Node& node_;
  MatMulPrimitive mm_;
};

void batch_norm_inference(const Tensor& x, const float* scale, const float* bias, const float* mean, const float* var,
                          float eps, Tensor& y) {
  int64_t n = x.dim(0), c = x.rank() > 1 ? x.dim(1) : 1;
  int64_t inner = x.size() / std::max<int64_t>(1, n * c);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      float a = scale[ch] / std::sqrt(var[ch] + eps);
      float b = bias[ch] - mean[ch] * a;
      const float* xs = xd + (i * c + ch) * inner;
      float* ys = yd + (i * c + ch) * inner;
      for (int64_t k = 0; k < inner; ++k) ys[k] = xs[k] * a + b;
    }
}

void batch_norm(const Node& node, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0, "X");
  require_dtype(x, DType::F32, "X");
  if (x.rank() < 2) throw std::runtime_error(fmt::format("input of shape {} has no channel axis", shape_string(x.shape())));
  int64_t c = x.dim(1);
  const char* names[] = {"scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k <= 4; ++k) {
    const Tensor& p = input(in, k, names[k - 1]);
    require_dtype(p, DType::F32, names[k - 1]);
    if (p.size() != c)
      throw std::runtime_error(fmt::format("{} has {} values for {} channels", names[k - 1], p.size(), c));
  }
  float eps = node.f("epsilon", 1e-5f);
  Tensor y = Tensor::uninitialized(DType::F32, x.shape());
  if (node.i("training_mode", 0) == 0) {
    batch_norm_inference(x, in[1]->data<float>(), in[2]->data<float>(), in[3]->data<float>(), in[4]->data<float>(), eps, y);
    out[0] = std::move(y);
    return;
  }
  // Training mode: normalize with the batch statistics (population variance) and update the running ones.
  float momentum = node.f("momentum", 0.9f);
  int64_t n = x.dim(0), inner = x.size() / (n * c);
  std::vector<float> mean(static_cast<size_t>(c)), var(static_cast<size_t>(c));
  const float* xd = x.data<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) s += xd[(i * c + ch) * inner + k];
    double m = s / static_cast<double>(n * inner);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        double d = xd[(i * c + ch) * inner + k] - m;
        s2 += d * d;
      }
    mean[static_cast<size_t>(ch)] = static_cast<float>(m);
    var[static_cast<size_t>(ch)] = static_cast<float>(s2 / static_cast<double>(n * inner));
  }
  batch_norm_inference(x, in[1]->data<float>(), in[2]->data<float>(), mean.data(), var.data(), eps, y);
  out[0] = std::move(y);
  if (out.size() > 1) {
    Tensor rm(DType::F32, {c}), rv(DType::F32, {c});
    for (int64_t ch = 0; ch < c; ++ch) {
      rm.data<float>()[ch] = in[3]->data<float>()[ch] * momentum + mean[static_cast<size_t>(ch)] * (1 - momentum);
      rv.data<float>()[ch] = in[4]->data<float>()[ch] * momentum + var[static_cast<size_t>(ch)] * (1 - momentum);
    }
    out[1] = std::move(rm);
    if (out.size() > 2) out[2] = std::move(rv);
  }
}

}  // namespace

Tensor to_plain(const Tensor& t) { return reorder_layout(t, false); }
Tensor to_channels_last(const Tensor& t) { return reorder_layout(t, true); }

void register_dnnl_ops(OpRegistry& r) {
  r.add("", "Conv", [](const KernelContext& c) { return std::make_unique<ConvKernel>(c); });
  r.add("", "Gemm", [](const KernelContext& c) { return std::make_unique<GemmKernel>(c); });
  r.add("", "MatMul", [](const KernelContext& c) { return std::make_unique<MatMulKernel>(c); });
  r.add("", "BatchNormalization", stateless(batch_norm));
}

}  // namespace lowbit
