#include "lowbit/ptq/export.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "src/quant/slices.hpp"

namespace lowbit {

namespace {

constexpr const char* kQonnxDomain = "qonnx.custom_op.general";

// What a lowbit.FakeQuant node says.
struct FakeQuantSpec {
  Format format;
  std::vector<float> scale, zero_point;
  int64_t axis = -1;
  int64_t group_size = 0;  // > 0: groups of this size along `axis`
  std::optional<Rounding> rounding;
};

FakeQuantSpec read_fake_quant(const Node& n) {
  FakeQuantSpec s{.format = Format::parse(n.s("format", "")),
                  .scale = n.floats("scale", {1.f}),
                  .zero_point = n.floats("zero_point", {}),
                  .axis = n.i("axis", -1),
                  .group_size = n.i("group_size", 0),
                  .rounding = std::nullopt};
  if (n.has("rounding")) s.rounding = parse_rounding(n.s("rounding", ""));
  return s;
}

Node fake_quant_node(const std::string& name, const std::string& in, const std::string& out, const QuantizerConfig& c,
                     const QuantParams& p) {
  Node fq;
  fq.op_type = "FakeQuant";
  fq.domain = "lowbit";
  fq.name = name;
  fq.inputs = {in};
  fq.outputs = {out};
  fq.attrs["format"] = Attribute{c.format.to_string()};
  if (c.format.scalar()) {
    fq.attrs["scale"] = Attribute{p.scale};
    if (!p.zero_point.empty()) fq.attrs["zero_point"] = Attribute{p.zero_point};
    if (c.granularity == Granularity::Channel || c.granularity == Granularity::Group) fq.attrs["axis"] = Attribute{int64_t{c.axis}};
    if (c.granularity == Granularity::Group) fq.attrs["group_size"] = Attribute{int64_t{c.group_size}};
  }
  if (c.rounding) fq.attrs["rounding"] = Attribute{std::string(to_string(*c.rounding))};
  return fq;
}

// The quantizer a FakeQuant spec describes, for a tensor of `shape`.
QuantizerConfig config_of(const FakeQuantSpec& s, const Shape& shape) {
  QuantizerConfig c(s.format);
  int64_t rank = static_cast<int64_t>(shape.size());
  int64_t axis = s.axis < 0 ? s.axis + rank : s.axis;
  if (s.group_size > 0) {
    c.granularity = Granularity::Group;
    c.group_size = static_cast<int>(s.group_size);
    c.axis = static_cast<int>(axis);
  } else if (s.scale.size() > 1) {
    c.granularity = Granularity::Channel;
    c.axis = static_cast<int>(axis);
  }
  c.symmetric = s.zero_point.empty();
  c.rounding = s.rounding;
  return c;
}

// Per-slice values laid out to broadcast over a tensor of `shape`: a scalar for one slice,
// [1, .., C, .., 1] per channel, the whole shape otherwise.
Tensor broadcast_values(const std::vector<float>& per_slice, const QuantizerConfig& c, const Shape& shape) {
  if (per_slice.size() == 1) return Tensor::scalar(per_slice[0]);
  if (c.granularity == Granularity::Channel) {
    Shape s(shape.size(), 1);
    s[static_cast<size_t>(c.axis)] = static_cast<int64_t>(per_slice.size());
    Tensor t(DType::F32, s);
    std::copy(per_slice.begin(), per_slice.end(), t.data<float>());
    return t;
  }
  size_t size = 1;
  for (int64_t d : shape) size *= static_cast<size_t>(d);
  detail::SliceLayout layout = detail::slice_layout(c, shape, size);
  Tensor t(DType::F32, shape);
  for (const detail::Run& r : layout.runs)
    std::fill_n(t.data<float>() + r.begin, r.length, per_slice.at(r.slice));
  return t;
}

std::string qonnx_rounding(std::optional<Rounding> r) {
  if (!r || *r == Rounding::NearestEven) return "ROUND";
  if (*r == Rounding::Down) return "FLOOR";
  if (*r == Rounding::Up) return "CEIL";
  return "";
}

// The weight a FakeQuant reads, or nullptr for an activation.
const Tensor* constant_input(const Graph& g, const Node& n) { return g.initializer(n.inputs.at(0)); }

// An int8 / uint8 tensor of integer values (codes or zero points).
template <class V>
Tensor codes_tensor(DType type, const Shape& shape, const std::vector<V>& values) {
  Tensor t(type, shape);
  for (size_t i = 0; i < values.size(); ++i) {
    if (type == DType::I8) t.data<int8_t>()[i] = static_cast<int8_t>(values[i]);
    else t.data<uint8_t>()[i] = static_cast<uint8_t>(values[i]);
  }
  return t;
}

void drop_unread_initializers(Graph& g) {
  std::set<std::string> read;
  for (const Node& n : g.nodes)
    for (const std::string& i : n.inputs) read.insert(i);
  for (const ValueInfo& v : g.outputs) read.insert(v.name);
  for (auto it = g.initializers.begin(); it != g.initializers.end();) it = read.count(it->first) ? std::next(it) : g.initializers.erase(it);
}

}  // namespace

Graph with_weight_quantizers(const QuantizeGraphResult& q) {
  Graph g = q.graph;
  for (const LayerQuantReport& rep : q.layers) {
    if (rep.weight_value.empty() || !rep.weight_config || !rep.weight_config->format.scalar()) continue;
    std::string out = g.unique_name(rep.weight_value + "_fq");
    bool used = false;
    for (Node& n : g.nodes)
      for (std::string& in : n.inputs)
        if (in == rep.weight_value) {
          in = out;
          used = true;
        }
    if (!used) continue;
    g.nodes.push_back(fake_quant_node(out, rep.weight_value, out, *rep.weight_config, rep.weight_params));
  }
  g.sort_topologically();
  return g;
}

QonnxExport to_qonnx(const Graph& src) {
  QonnxExport r;
  Graph& g = r.graph;
  g = src;
  std::vector<Node> inserted;
  for (Node& n : g.nodes) {
    if (n.domain != "lowbit" || n.op_type != "FakeQuant") continue;
    FakeQuantSpec s = read_fake_quant(n);
    const Tensor* w = constant_input(g, n);
    Shape shape = w ? w->shape() : Shape{};
    if (!w && (s.scale.size() > 1 || s.group_size > 0)) {
      r.kept_as_lowbit.push_back(fmt::format("{}: per-channel scales on a computed value", n.name));
      continue;
    }
    const ScalarFormat* f = s.format.scalar();
    std::string rounding = qonnx_rounding(s.rounding);
    auto keep = [&](const std::string& why) { r.kept_as_lowbit.push_back(fmt::format("{} ({}): {}", n.name, s.format.to_string(), why)); };
    if (!f) {
      keep("block-scaled and BitMoD formats have no QONNX operator");
      continue;
    }
    if (rounding.empty()) {
      keep(fmt::format("rounding {} has no QONNX rounding_mode", to_string(*s.rounding)));
      continue;
    }
    QuantizerConfig c = config_of(s, shape);
    auto add_constant = [&](const std::string& what, Tensor t) {
      std::string name = g.unique_name(n.name + "_" + what);
      g.initializers.emplace(name, std::move(t));
      return name;
    };
    std::string scale = add_constant("scale", broadcast_values(s.scale, c, shape));
    std::map<std::string, Attribute> attrs;
    if (f->kind() == ScalarKind::Integer) {
      const IntegerParams& p = f->integer_params();
      std::vector<float> zp = s.zero_point.empty() ? std::vector<float>(s.scale.size(), 0.f) : s.zero_point;
      std::string zeropt = add_constant("zeropt", broadcast_values(zp, c, shape));
      std::string bits = add_constant("bitwidth", Tensor::scalar(static_cast<float>(p.bits)));
      std::string quantized_input = n.inputs[0];
      if (rounding == "ROUND" && std::any_of(zp.begin(), zp.end(), [](float z) { return std::fmod(z, 2.f) != 0; })) {
        // The two-node form of an odd zero point (export.hpp). The second Quant gets k * scale, and
        // k * scale / scale is within k * 2^-23 of k, so it rounds back to k for |k| < 2^22.
        double widest = 0;
        for (float z : zp) widest = std::max({widest, std::fabs(f->lowest() - z), std::fabs(f->max() - z) + 1});
        Node round_first;
        round_first.name = g.unique_name(n.name + "_round_before_zero_point");
        round_first.domain = kQonnxDomain;
        round_first.op_type = "Quant";
        round_first.inputs = {n.inputs[0], scale, add_constant("zero", Tensor::scalar(0.f)),
                              add_constant("wide_bitwidth", Tensor::scalar(static_cast<float>(1 + std::ceil(std::log2(widest)))))};
        round_first.outputs = {g.unique_name(n.name + "_rounded")};
        round_first.attrs = {{"signed", Attribute{int64_t{1}}}, {"narrow", Attribute{int64_t{0}}}, {"rounding_mode", Attribute{rounding}}};
        quantized_input = round_first.outputs[0];
        inserted.push_back(std::move(round_first));
      }
      n.op_type = "Quant";
      n.inputs = {quantized_input, scale, zeropt, bits};
      attrs["signed"] = Attribute{int64_t{p.is_signed}};
      attrs["narrow"] = Attribute{int64_t{p.narrow}};
    } else if (f->kind() == ScalarKind::Minifloat) {
      const MinifloatParams& p = f->minifloat_params();
      if (!p.has_sign || !p.has_zero) {
        keep("QONNX FloatQuant is signed with a zero");
        continue;
      }
      if (!p.subnormals) {
        keep("QONNX FloatQuant always rounds onto subnormals");
        continue;
      }
      n.op_type = "FloatQuant";
      n.inputs = {n.inputs[0], scale, add_constant("exponent_bitwidth", Tensor::scalar(static_cast<float>(p.exponent_bits))),
                  add_constant("mantissa_bitwidth", Tensor::scalar(static_cast<float>(p.mantissa_bits))),
                  add_constant("exponent_bias", Tensor::scalar(static_cast<float>(p.bias))),
                  add_constant("max_val", Tensor::scalar(static_cast<float>(f->max())))};
      attrs["has_infinity"] = Attribute{int64_t{f->has_inf()}};
      attrs["has_nan"] = Attribute{int64_t{f->has_nan()}};
      attrs["has_subnormal"] = Attribute{int64_t{1}};
      attrs["saturation"] = Attribute{int64_t{p.saturate}};
    } else {
      g.initializers.erase(scale);
      keep(f->kind() == ScalarKind::Fixed ? "fixed point (ap_fixed modes) has no QONNX operator" : "binary has no scale-free QONNX form here");
      continue;
    }
    attrs["rounding_mode"] = Attribute{rounding};
    n.domain = kQonnxDomain;
    n.attrs = std::move(attrs);
  }
  if (!inserted.empty()) {
    g.nodes.insert(g.nodes.end(), std::make_move_iterator(inserted.begin()), std::make_move_iterator(inserted.end()));
    g.sort_topologically();
  }
  drop_unread_initializers(g);
  return r;
}

Graph to_qdq(const Graph& src) {
  Graph g = src;
  std::vector<Node> nodes;
  for (Node& n : g.nodes) {
    if (n.domain != "lowbit" || n.op_type != "FakeQuant") {
      nodes.push_back(std::move(n));
      continue;
    }
    FakeQuantSpec s = read_fake_quant(n);
    const ScalarFormat* f = s.format.scalar();
    auto refuse = [&](const std::string& why) {
      throw std::runtime_error(fmt::format("QDQ export: quantizer {} ({}): {}", n.name, s.format.to_string(), why));
    };
    if (!f || f->kind() != ScalarKind::Integer || f->bits() != 8) refuse("ONNX QDQ here takes 8-bit integer formats only");
    if (s.rounding && *s.rounding != Rounding::NearestEven) refuse("QuantizeLinear rounds half to even only");
    if (s.group_size > 0) refuse("group scales need opset 21 block quantization");
    const IntegerParams& p = f->integer_params();
    DType code_type = p.is_signed ? DType::I8 : DType::U8;
    const Tensor* w = g.initializer(n.inputs[0]);
    if (!w && p.narrow) refuse("a narrow range on an activation (QuantizeLinear would reach -128)");
    if (!w && s.scale.size() > 1) refuse("per-channel scales on an activation");
    QuantizerConfig c = config_of(s, w ? w->shape() : Shape{});
    std::vector<float> zp = s.zero_point.empty() ? std::vector<float>(s.scale.size(), 0.f) : s.zero_point;
    auto add = [&](const std::string& what, Tensor t) {
      std::string name = g.unique_name(n.name + "_" + what);
      g.initializers.emplace(name, std::move(t));
      return name;
    };
    // Per-channel scales and zero points are 1-D along `axis`; per-tensor ones are scalars.
    auto vector_or_scalar = [](const std::vector<float>& v) { return v.size() == 1 ? Shape{} : Shape{static_cast<int64_t>(v.size())}; };
    std::string scale = add("scale", Tensor::from<float>(vector_or_scalar(s.scale), s.scale));
    std::string zero = add("zero_point", codes_tensor(code_type, vector_or_scalar(zp), zp));
    Node dq;
    dq.op_type = "DequantizeLinear";
    dq.name = n.name + "_dequantize";
    dq.outputs = n.outputs;
    if (s.scale.size() > 1) dq.attrs["axis"] = Attribute{int64_t{c.axis}};
    if (w) {
      Quantizer q(c);
      q.set_params(QuantParams{s.scale, s.zero_point});
      std::vector<int32_t> codes(static_cast<size_t>(w->size()));
      q.quantize_to_integers(w->span<float>(), codes, w->shape());
      dq.inputs = {add("codes", codes_tensor(code_type, w->shape(), codes)), scale, zero};
    } else {
      Node ql;
      ql.op_type = "QuantizeLinear";
      ql.name = n.name + "_quantize";
      std::string codes = g.unique_name(n.name + "_codes");
      ql.inputs = {n.inputs[0], scale, zero};
      ql.outputs = {codes};
      nodes.push_back(std::move(ql));
      dq.inputs = {codes, scale, zero};
    }
    nodes.push_back(std::move(dq));
  }
  g.nodes = std::move(nodes);
  drop_unread_initializers(g);  // the float weights, now held as codes
  if (g.opset < 13) g.opset = 13;
  g.sort_topologically();
  return g;
}

}  // namespace lowbit
