#include "lowbit/hw/model_cost.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/shape_inference.hpp"

namespace lowbit::hw {
namespace {

// Shape of a value at batch 1 (symbolic dimensions "N" and "N*k" become 1 and k).
std::vector<int64_t> shape_of(const Graph& g, const std::string& name, const Node& user) {
  if (const Tensor* t = g.initializer(name)) return t->shape();
  auto from_info = [&](const ValueInfo& v) {
    if (!v.has_shape) throw std::runtime_error(fmt::format("{}: value '{}' has no shape (run shape inference first)", user.label(), name));
    std::vector<int64_t> dims = v.dims;
    for (size_t k = 0; k < dims.size(); ++k) {
      if (dims[k] >= 0) continue;
      const std::string param = k < v.dim_params.size() ? v.dim_params[k] : "";
      int64_t value = 1;
      if (param.starts_with("N*")) std::from_chars(param.data() + 2, param.data() + param.size(), value);
      dims[k] = value;
    }
    return dims;
  };
  for (const auto* list : {&g.value_info, &g.inputs, &g.outputs})
    for (const ValueInfo& v : *list)
      if (v.name == name) return from_info(v);
  throw std::runtime_error(fmt::format("{}: no shape known for value '{}'", user.label(), name));
}

int64_t product(std::span<const int64_t> v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

}  // namespace

Parallelism parse_parallelism(const std::string& text) {
  if (text == "channel") return {true, 0};
  int64_t units = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), units);
  if (ec != std::errc() || end != text.data() + text.size() || units < 1)
    throw std::invalid_argument(fmt::format("parallelism must be 'channel' or a positive number of MAC units per layer, got '{}'", text));
  return {false, units};
}

ModelCost model_cost(const Graph& g, const ModelCostOptions& o, const CostModel& model) {
  ModelCost mc;
  mc.model = g.name;
  mc.weight = o.weight;
  mc.activation = o.activation;
  mc.options = o;
  for (const Node& n : g.nodes) {
    if (!n.domain.empty() || (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul")) continue;
    LayerCost l;
    l.name = n.name.empty() ? n.outputs.at(0) : n.name;
    l.op = n.op_type;
    const std::vector<int64_t> x = shape_of(g, n.inputs.at(0), n);
    const std::vector<int64_t> w = shape_of(g, n.inputs.at(1), n);
    const std::vector<int64_t> y = shape_of(g, n.outputs.at(0), n);
    l.outputs = product(y);
    l.input_elements = product(x);
    bool two_activations = false;
    if (n.op_type == "Conv") {
      if (w.size() < 3) throw std::runtime_error(fmt::format("{}: weight of rank {}", n.label(), w.size()));
      l.out_channels = w[0];
      l.dot_length = product(std::span(w).subspan(1));  // C/group x kernel
      l.weight_elements = product(w);
    } else if (n.op_type == "Gemm") {
      if (w.size() != 2) throw std::runtime_error(fmt::format("{}: B of rank {}", n.label(), w.size()));
      const bool trans_b = n.i("transB", 0) != 0;
      l.dot_length = trans_b ? w[1] : w[0];
      l.out_channels = trans_b ? w[0] : w[1];
      l.weight_elements = product(w);
      two_activations = !g.initializer(n.inputs[1]);
    } else {
      if (x.empty() || w.empty()) throw std::runtime_error(fmt::format("{}: scalar operand", n.label()));
      l.dot_length = x.back();
      l.out_channels = w.size() >= 2 ? w.back() : 1;
      const bool a_const = g.initializer(n.inputs[0]) != nullptr, b_const = g.initializer(n.inputs[1]) != nullptr;
      two_activations = !a_const && !b_const;
      l.weight_elements = b_const ? product(w) : a_const ? product(x) : 0;
      if (a_const && !b_const) l.input_elements = product(w);
    }
    l.macs = l.outputs * l.dot_length;
    LayerFormats formats{o.weight, o.activation};
    if (o.layer_formats)
      if (std::optional<LayerFormats> f = o.layer_formats(n)) formats = *f;
    l.weight_format = two_activations ? formats.activation : formats.weight;
    l.activation_format = formats.activation;
    const MacConfig c = make_mac_config(l.weight_format, l.activation_format, static_cast<uint64_t>(std::max<int64_t>(1, l.dot_length)));
    l.acc_bits = plan_accumulator(c).bits;
    l.unit = model.predict(c, o.use_dsp);
    l.units = o.parallelism.per_channel ? l.out_channels : std::min(o.parallelism.units, l.outputs);
    l.units = std::max<int64_t>(1, l.units);
    l.cycles = ((l.outputs + l.units - 1) / l.units) * l.dot_length;
    const double u = static_cast<double>(l.units);
    l.total = {l.unit.lut * u, l.unit.ff * u, l.unit.carry * u, l.unit.dsp * u};
    l.bit_ops = static_cast<double>(l.macs) * c.weight.bits() * c.activation.bits();
    mc.macs += l.macs;
    mc.units += l.units;
    mc.bit_ops += l.bit_ops;
    mc.weight_bits += static_cast<double>(l.weight_elements) * (two_activations ? 0 : c.weight.bits());
    const double in_bits = static_cast<double>(l.input_elements) * c.activation.bits();
    mc.activation_bits_peak = std::max(mc.activation_bits_peak, in_bits);
    mc.activation_bits_sum += in_bits;
    mc.interval_cycles = std::max(mc.interval_cycles, l.cycles);
    mc.total.lut += l.total.lut;
    mc.total.ff += l.total.ff;
    mc.total.carry += l.total.carry;
    mc.total.dsp += l.total.dsp;
    mc.layers.push_back(std::move(l));
  }
  if (mc.layers.empty()) throw std::runtime_error(fmt::format("model '{}' has no Conv, Gemm or MatMul layer to cost", g.name));
  return mc;
}

ModelCost model_cost(const std::string& onnx_path, const ModelCostOptions& o, const CostModel& model) {
  Graph g = load_onnx(onnx_path);
  infer_shapes(g);
  ModelCost mc = model_cost(g, o, model);
  mc.model = onnx_path;
  return mc;
}

std::string format_model_cost(const ModelCost& c) {
  std::string s = fmt::format("model {}: weights {}, activations {}, {} per layer, {}\n", c.model, c.weight, c.activation,
                              c.options.parallelism.per_channel ? "one MAC unit per output channel"
                                                                : fmt::format("min({}, outputs) MAC units", c.options.parallelism.units),
                              c.options.use_dsp ? "DSP48E2 mapping on" : "no DSP");
  s += fmt::format("{:<28} {:<6} {:>11} {:>6} {:>5} {:>6} {:>9} {:>9} {:>9} {:>7} {:>6}\n", "layer", "op", "MACs", "n", "acc", "units",
                   "cycles", "LUT", "FF", "CARRY", "DSP");
  for (const LayerCost& l : c.layers)
    s += fmt::format("{:<28} {:<6} {:>11} {:>6} {:>5} {:>6} {:>9} {:>9.0f} {:>9.0f} {:>7.0f} {:>6.0f}\n", l.name.substr(0, 28), l.op, l.macs,
                     l.dot_length, l.acc_bits, l.units, l.cycles, l.total.lut, l.total.ff, l.total.carry, l.total.dsp);
  s += fmt::format("{:<28} {:<6} {:>11} {:>6} {:>5} {:>6} {:>9} {:>9.0f} {:>9.0f} {:>7.0f} {:>6.0f}\n", "total", "", c.macs, "", "", c.units,
                   c.interval_cycles, c.total.lut, c.total.ff, c.total.carry, c.total.dsp);
  s += fmt::format("MACs                 {} ({:.2f} M)\n", c.macs, c.macs / 1e6);
  s += fmt::format("bit-operations       {:.4g} (MACs x weight bits x activation bits)\n", c.bit_ops);
  s += fmt::format("weight memory        {:.0f} bits ({:.1f} KiB)\n", c.weight_bits, c.weight_bits / 8192);
  s += fmt::format("activation memory    peak {:.0f} bits ({:.1f} KiB, largest layer input); sum {:.0f} bits ({:.1f} KiB, all layer inputs)\n",
                   c.activation_bits_peak, c.activation_bits_peak / 8192, c.activation_bits_sum, c.activation_bits_sum / 8192);
  s += fmt::format("initiation interval  {} cycles (slowest layer; all layers run at once)\n", c.interval_cycles);
  return s;
}

}  // namespace lowbit::hw
