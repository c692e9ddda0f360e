#include "lowbit/ptq/quantize_graph.hpp"

#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/graph/passes.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {

namespace {

bool is_layer(const Node& n) { return n.domain.empty() && (n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul"); }

// Output-channel axis and reduction axis of a layer's weight tensor.
std::pair<int, int> weight_axes(const Node& n, const Tensor& w) {
  if (n.op_type == "Conv") return {0, 1};
  if (n.op_type == "Gemm") return n.i("transB", 0) ? std::pair{0, 1} : std::pair{1, 0};
  return {w.rank() - 1, w.rank() - 2};  // MatMul B: [..., K, N]
}

std::string unique_value(const Graph& g, const std::string& base) {
  std::set<std::string> used;
  for (const auto& [k, v] : g.initializers) used.insert(k);
  for (const Node& n : g.nodes) used.insert(n.outputs.begin(), n.outputs.end());
  for (const ValueInfo& v : g.inputs) used.insert(v.name);
  std::string name = base;
  for (int k = 1; used.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

std::string config_key(const QuantizerConfig& c) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", c.format.to_string(), to_string(c.granularity), c.axis, c.group_size, c.symmetric,
                     to_string(c.observer), c.percentile, to_string(c.scale_storage));
}

}  // namespace

std::vector<const Node*> quantizable_layers(const Graph& g) {
  std::vector<const Node*> out;
  for (const Node& n : g.nodes)
    if (is_layer(n)) out.push_back(&n);
  return out;
}

QuantizeGraphResult quantize_graph(Graph g, const QuantRecipe& recipe, const CalibrationFeed& calibration, int threads) {
  g.sort_topologically();
  fold_batch_norm(g);
  QuantizeGraphResult result;
  std::vector<size_t> layers;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (is_layer(g.nodes[k])) layers.push_back(k);

  // Activation quantizers, one per (value, config): the inputs of every layer.
  struct ActQuant {
    std::string value;
    std::unique_ptr<Quantizer> q;
    std::vector<std::pair<size_t, size_t>> readers;  // (node index, input index)
  };
  std::map<std::string, ActQuant> acts;
  for (size_t li = 0; li < layers.size(); ++li) {
    Node& n = g.nodes[layers[li]];
    bool first = li == 0, last = li + 1 == layers.size();
    LayerQuantReport rep{n.name, n.op_type, "float", "float", 0};
    // Weights.
    Tensor* w = n.has_input(1) ? (g.initializers.count(n.inputs[1]) ? &g.initializers[n.inputs[1]] : nullptr) : nullptr;
    if (w && w->dtype() == DType::F32) {
      auto [ch_axis, red_axis] = weight_axes(n, *w);
      if (auto c = recipe.config_for(n, TensorRole::Weight, first, last, ch_axis)) {
        if (c->granularity == Granularity::Group) c->axis = red_axis;
        c->threads = threads;
        Quantizer q(*c);
        q.observe(w->span<float>(), w->shape());
        Tensor wq(DType::F32, w->shape());
        q.fake_quant(w->span<float>(), wq.span<float>(), w->shape());
        rep.weight_format = c->format.to_string();
        rep.weight_sqnr_db = sqnr_db(w->span<float>(), wq.span<float>());
        std::string name = unique_value(g, n.inputs[1] + "_quantized");
        g.initializers.emplace(name, std::move(wq));
        n.inputs[1] = name;
      }
    }
    // Activations: input 0, and input 1 when it is computed (activation x activation MatMul).
    for (size_t k = 0; k < 2 && k < n.inputs.size(); ++k) {
      if (!n.has_input(k) || g.initializers.count(n.inputs[k])) continue;
      if (k == 1 && n.op_type == "Conv") continue;
      auto c = recipe.config_for(n, TensorRole::Activation, first, last, 1);
      if (!c) continue;
      c->threads = threads;
      rep.activation_format = c->format.to_string();
      std::string key = n.inputs[k] + "#" + config_key(*c);
      auto& a = acts[key];
      if (!a.q) {
        a.value = n.inputs[k];
        a.q = std::make_unique<Quantizer>(*c);
      }
      a.readers.emplace_back(layers[li], k);
    }
    result.layers.push_back(rep);
  }

  // Calibrate with the weights already quantized and float activations: the ranges are then those
  // the quantized layers produce.
  bool needs_stats = false;
  for (auto& [key, a] : acts) needs_stats = needs_stats || a.q->config().format.scalar();
  if (needs_stats) {
    if (!calibration) throw std::runtime_error("the recipe quantizes activations but no calibration data was given");
    Session s(g, SessionOptions{threads, true});
    std::map<std::string, std::vector<Quantizer*>> by_value;
    for (auto& [key, a] : acts) by_value[a.value].push_back(a.q.get());
    std::set<std::string> names;
    for (auto& [v, qs] : by_value) names.insert(v);
    s.set_value_hook(names, [&](const std::string& name, const Tensor& t) {
      if (t.dtype() != DType::F32) return;
      for (Quantizer* q : by_value[name]) q->observe(t.span<float>(), t.shape());
    });
    size_t batches = 0;
    calibration([&](Tensor x) {
      s.run(std::move(x));
      ++batches;
    });
    if (batches == 0) throw std::runtime_error("the calibration data is empty");
  }

  // Insert one FakeQuant per activation quantizer, rewiring its readers.
  for (auto& [key, a] : acts) {
    Node fq;
    fq.op_type = "FakeQuant";
    fq.domain = "lowbit";
    std::string out = unique_value(g, a.value + "_fq");
    fq.name = out;
    fq.inputs = {a.value};
    fq.outputs = {out};
    const QuantizerConfig& c = a.q->config();
    fq.attrs["format"] = Attribute{c.format.to_string()};
    if (c.format.scalar()) {
      QuantParams p = a.q->compute_params();
      fq.attrs["scale"] = Attribute{p.scale};
      if (!p.zero_point.empty()) fq.attrs["zero_point"] = Attribute{p.zero_point};
      if (p.scale.size() > 1) fq.attrs["axis"] = Attribute{int64_t{c.axis}};
    }
    if (c.rounding) fq.attrs["rounding"] = Attribute{std::string(to_string(*c.rounding))};
    for (auto [node, input] : a.readers) g.nodes[node].inputs[input] = out;
    g.nodes.push_back(std::move(fq));
  }
  g.sort_topologically();
  result.graph = std::move(g);
  return result;
}

}  // namespace lowbit
