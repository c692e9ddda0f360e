// ONNX's linear quantization operators, built on lowbit's Quantizer (ONNX QuantizeLinear semantics),
// and lowbit.FakeQuant: quantize-dequantize in any lowbit format.
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/quant/quantizer.hpp"
#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

namespace {

std::vector<float> floats_of(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.float_at(i));
  return v;
}

// A uint8 / int8 quantizer with the given scales and zero points (one, or one per slice along `axis`).
Quantizer linear_quantizer(DType code_type, const Tensor& scale, const Tensor* zero_point, int64_t axis, const Shape& x_shape) {
  if (code_type != DType::U8 && code_type != DType::I8)
    throw std::runtime_error(fmt::format("quantized type {} is not supported (uint8 or int8)", to_string(code_type)));
  require_dtype(scale, DType::F32, "scale");
  QuantizerConfig c(Format::parse(code_type == DType::U8 ? "uint8" : "int8"));
  c.symmetric = false;
  if (scale.size() > 1 || scale.rank() == 1) {
    int64_t r = static_cast<int64_t>(x_shape.size());
    int64_t a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r) throw std::runtime_error(fmt::format("axis {} is out of range for rank {}", axis, r));
    if (scale.size() != x_shape[static_cast<size_t>(a)])
      throw std::runtime_error(fmt::format("{} scales for {} slices along axis {}", scale.size(), x_shape[static_cast<size_t>(a)], a));
    if (scale.size() > 1) {
      c.granularity = Granularity::Channel;
      c.axis = static_cast<int>(a);
    }
  }
  Quantizer q(c);
  QuantParams p;
  p.scale = floats_of(scale);
  for (float s : p.scale)
    if (!(s > 0) || !std::isfinite(s)) throw std::runtime_error(fmt::format("scale {} is not a positive finite number", s));
  p.zero_point = zero_point ? floats_of(*zero_point) : std::vector<float>(p.scale.size(), 0.f);
  if (p.zero_point.size() != p.scale.size())
    throw std::runtime_error(fmt::format("{} zero points for {} scales", p.zero_point.size(), p.scale.size()));
  q.set_params(std::move(p));
  return q;
}

template <class T>
Tensor codes_to_tensor(const std::vector<int32_t>& q, const Shape& shape) {
  Tensor y(dtype_of<T>(), shape);
  T* d = y.data<T>();
  for (size_t i = 0; i < q.size(); ++i) d[i] = static_cast<T>(q[i]);
  return y;
}

std::vector<int32_t> tensor_to_codes(const Tensor& t) {
  std::vector<int32_t> q(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) q[static_cast<size_t>(i)] = static_cast<int32_t>(t.int_at(i));
  return q;
}

Tensor quantize_linear(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis) {
  require_dtype(x, DType::F32, "x");
  DType code_type = zp ? zp->dtype() : DType::U8;
  Quantizer q = linear_quantizer(code_type, scale, zp, axis, x.shape());
  std::vector<int32_t> codes(static_cast<size_t>(x.size()));
  q.quantize_to_integers(x.span<float>(), codes, x.shape());
  return code_type == DType::U8 ? codes_to_tensor<uint8_t>(codes, x.shape()) : codes_to_tensor<int8_t>(codes, x.shape());
}

Tensor dequantize_linear(const Tensor& x, const Tensor& scale, const Tensor* zp, int64_t axis) {
  if (zp && zp->dtype() != x.dtype()) throw std::runtime_error("x and x_zero_point have different types");
  Tensor y(DType::F32, x.shape());
  if (x.dtype() == DType::I32) {  // int32 (bias) codes: zero point 0, y = x * scale
    Quantizer q = linear_quantizer(DType::I8, scale, nullptr, axis, x.shape());
    q.dequantize_integers(tensor_to_codes(x), y.span<float>(), x.shape());
    return y;
  }
  Quantizer q = linear_quantizer(x.dtype(), scale, zp, axis, x.shape());
  q.dequantize_integers(tensor_to_codes(x), y.span<float>(), x.shape());
  return y;
}

void quantize_linear_op(const Node& n, std::span<const Tensor* const> in, std::span<Tensor> out) {
  out[0] = quantize_linear(input(in, 0, "x"), input(in, 1, "y_scale"), in.size() > 2 ? in[2] : nullptr, n.i("axis", 1));
}

void dequantize_linear_op(const Node& n, std::span<const Tensor* const> in, std::span<Tensor> out) {
  out[0] = dequantize_linear(input(in, 0, "x"), input(in, 1, "x_scale"), in.size() > 2 ? in[2] : nullptr, n.i("axis", 1));
}

void dynamic_quantize_linear_op(const Node&, std::span<const Tensor* const> in, std::span<Tensor> out) {
  const Tensor& x = input(in, 0, "x");
  require_dtype(x, DType::F32, "x");
  QuantizerConfig c(Format::parse("uint8"));
  c.symmetric = false;
  Quantizer q(c);
  q.observe(x.span<float>(), x.shape());
  QuantParams p = q.compute_params();
  q.set_params(p);
  std::vector<int32_t> codes(static_cast<size_t>(x.size()));
  q.quantize_to_integers(x.span<float>(), codes, x.shape());
  out[0] = codes_to_tensor<uint8_t>(codes, x.shape());
  if (out.size() > 1) out[1] = Tensor::scalar(p.scale[0]);
  if (out.size() > 2) out[2] = Tensor::scalar(static_cast<uint8_t>(p.zero_point[0]));
}

// QLinearConv / QLinearMatMul: dequantize the operands to (q - zero_point) * scale in float32,
// run the float kernel, requantize. The float accumulation is exact while every partial sum of
// products stays below 2^24 in units of the scales' product; checked, otherwise refused.
class QLinearKernel : public Kernel {
 public:
  QLinearKernel(const KernelContext& c, const char* float_op) : node_(c.node) {
    float_node_ = c.node;
    float_node_.op_type = float_op;
    float_node_.inputs = {"x", "w"};
    if (std::string(float_op) == "Conv" && c.node.has_input(8)) float_node_.inputs.push_back("b");
    float_graph_.opset = c.graph.opset;
    float_kernel_ = (*OpRegistry::global().find("", float_op))(KernelContext{float_node_, float_graph_, c.threads});
  }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0, "x");
    const Tensor& w = input(in, 3, "w");
    Tensor xf = dequantize_centered(x, input(in, 2, "x_zero_point"), nullptr, 1);
    const Tensor& w_zp = input(in, 5, "w_zero_point");
    int64_t w_axis = node_.op_type == "QLinearConv" ? 0 : (w.rank() >= 2 ? w.rank() - 1 : 0);
    Tensor wf = dequantize_centered(w, w_zp, nullptr, w_axis);
    // Accumulate integers exactly: check the largest possible |sum|.
    int64_t k = node_.op_type == "QLinearConv" ? w.size() / std::max<int64_t>(1, w.dim(0)) : w.dim(w.rank() >= 2 ? -2 : 0);
    double max_x = max_abs(xf), max_w = max_abs(wf);
    if (static_cast<double>(k) * max_x * max_w >= 16777216.0)
      throw std::runtime_error("integer accumulation could exceed 2^24, beyond the exact float path");
    std::vector<const Tensor*> fin{&xf, &wf};
    Tensor bias;
    if (node_.op_type == "QLinearConv" && in.size() > 8 && in[8]) {
      require_dtype(*in[8], DType::I32, "bias");
      bias = Tensor(DType::F32, in[8]->shape());
      for (int64_t i = 0; i < bias.size(); ++i) bias.data<float>()[i] = static_cast<float>(in[8]->int_at(i));
      fin.push_back(&bias);
    }
    std::vector<Tensor> acc(1);
    float_kernel_->run(fin, acc);
    if (acc[0].channels_last()) acc[0] = to_plain(acc[0]);  // the float Conv answers channels-last
    // y = saturate(round(acc * x_scale * w_scale / y_scale) + y_zero_point)
    const Tensor& xs = input(in, 1, "x_scale");
    const Tensor& ws = input(in, 4, "w_scale");
    const Tensor& ys = input(in, 6, "y_scale");
    const Tensor& yz = input(in, 7, "y_zero_point");
    int64_t channels = ws.size();
    int ch_axis = node_.op_type == "QLinearConv" ? 1 : acc[0].rank() - 1;
    if (ch_axis < 0 || ch_axis >= acc[0].rank()) throw std::runtime_error("the result has no channel axis");
    int64_t inner = 1;
    for (int d = ch_axis + 1; d < acc[0].rank(); ++d) inner *= acc[0].dim(d);
    int64_t c_dim = acc[0].dim(ch_axis);
    if (channels != 1 && channels != c_dim) throw std::runtime_error(fmt::format("{} weight scales for {} channels", channels, c_dim));
    bool u8 = yz.dtype() == DType::U8;
    int lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
    Tensor y(yz.dtype(), acc[0].shape());
    const float* a = acc[0].data<float>();
    float x_scale = static_cast<float>(xs.float_at(0)), y_scale = static_cast<float>(ys.float_at(0));
    float zp = static_cast<float>(yz.int_at(0));
    for (int64_t i = 0; i < y.size(); ++i) {
      int64_t ch = channels == 1 ? 0 : (i / inner) % c_dim;
      float multiplier = x_scale * static_cast<float>(ws.float_at(ch)) / y_scale;
      float v = std::nearbyint(a[i] * multiplier) + zp;
      int q = static_cast<int>(std::fmin(std::fmax(v, static_cast<float>(lo)), static_cast<float>(hi)));
      if (u8)
        y.data<uint8_t>()[i] = static_cast<uint8_t>(q);
      else
        y.data<int8_t>()[i] = static_cast<int8_t>(q);
    }
    out[0] = std::move(y);
  }

 private:
  // (q - zero_point) as float; zero point per tensor or per slice along axis.
  static Tensor dequantize_centered(const Tensor& q, const Tensor& zp, const Tensor*, int64_t axis) {
    if (q.dtype() != DType::U8 && q.dtype() != DType::I8)
      throw std::runtime_error(fmt::format("quantized operand of type {} is not supported", to_string(q.dtype())));
    Tensor f(DType::F32, q.shape());
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < q.rank(); ++d) inner *= q.dim(static_cast<int>(d));
    int64_t n_axis = q.rank() ? q.dim(static_cast<int>(axis)) : 1;
    if (zp.size() != 1 && zp.size() != n_axis) throw std::runtime_error("zero point count does not match the operand");
    for (int64_t i = 0; i < q.size(); ++i) {
      int64_t z = zp.size() == 1 ? zp.int_at(0) : zp.int_at((i / inner) % n_axis);
      f.data<float>()[i] = static_cast<float>(q.int_at(i) - z);
    }
    return f;
  }
  static double max_abs(const Tensor& t) {
    double m = 0;
    for (float v : t.span<float>()) m = std::max(m, static_cast<double>(std::fabs(v)));
    return m;
  }

  const Node& node_;
  Node float_node_;
  Graph float_graph_;
  std::unique_ptr<Kernel> float_kernel_;
};

// lowbit.FakeQuant: y = fake quantization of x in `format`. Scalar formats use `scale` (one value,
// one per slice along `axis`, or one per group of `group_size` along `axis`) and, for asymmetric integers, `zero_point`; block-scaled and
// BitMoD formats carry their own scales.
class FakeQuantKernel : public Kernel {
 public:
  explicit FakeQuantKernel(const KernelContext& c) : quantizer_(config(c)) {
    const Format& f = quantizer_.config().format;
    if (f.scalar()) {
      QuantParams p;
      p.scale = c.node.floats("scale", {1.f});
      p.zero_point = c.node.floats("zero_point", {});
      quantizer_.set_params(std::move(p));
    }
  }
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override {
    const Tensor& x = input(in, 0, "x");
    require_dtype(x, DType::F32, "x");
    Tensor y = Tensor::uninitialized(DType::F32, x.shape());
    quantizer_.fake_quant(x.span<float>(), y.span<float>(), x.shape());
    out[0] = std::move(y);
  }

 private:
  static QuantizerConfig config(const KernelContext& c) {
    QuantizerConfig q(Format::parse(c.node.s("format", "")));
    int64_t axis = c.node.i("axis", -1);
    if (int64_t group = c.node.i("group_size", 0); group > 0) {
      q.granularity = Granularity::Group;
      q.group_size = static_cast<int>(group);
      q.axis = static_cast<int>(axis);
    } else if (c.node.floats("scale", {1.f}).size() > 1) {
      q.granularity = Granularity::Channel;
      q.axis = static_cast<int>(axis);
    }
    q.symmetric = c.node.floats("zero_point", {}).empty();
    if (c.node.has("rounding")) {
      auto r = parse_rounding(c.node.s("rounding", ""));
      if (!r) throw std::runtime_error(fmt::format("unknown rounding '{}'", c.node.s("rounding", "")));
      q.rounding = *r;
    }
    q.threads = c.threads;
    return q;
  }
  Quantizer quantizer_;
};

}  // namespace

void register_quant_ops(OpRegistry& r) {
  r.add("", "QuantizeLinear", stateless(quantize_linear_op));
  r.add("", "DequantizeLinear", stateless(dequantize_linear_op));
  r.add("", "DynamicQuantizeLinear", stateless(dynamic_quantize_linear_op));
  r.add("", "QLinearConv", [](const KernelContext& c) { return std::make_unique<QLinearKernel>(c, "Conv"); });
  r.add("", "QLinearMatMul", [](const KernelContext& c) { return std::make_unique<QLinearKernel>(c, "MatMul"); });
  r.add("lowbit", "FakeQuant", [](const KernelContext& c) { return std::make_unique<FakeQuantKernel>(c); });
}

}  // namespace lowbit
