#include "lowbit/ptq/quantize_graph.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/adaround.hpp"
#include "lowbit/ptq/bias_correction.hpp"
#include "lowbit/ptq/equalize.hpp"
#include "lowbit/ptq/gptq.hpp"
#include "lowbit/runtime/session.hpp"
#include "lowbit/util/progress.hpp"

namespace lowbit {

namespace {

bool is_layer(const Graph& g, const Node& n) {
  return n.domain.empty() && (n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul") && !is_hadamard_rotation(g, n);
}

// Output-channel axis and reduction axis of a layer's weight tensor.
std::pair<int, int> weight_axes(const Node& n, const Tensor& w) {
  if (n.op_type == "Conv") return {0, 1};
  if (n.op_type == "Gemm") return n.i("transB", 0) ? std::pair{0, 1} : std::pair{1, 0};
  return {w.rank() - 1, w.rank() - 2};  // MatMul B: [..., K, N]
}

std::string config_key(const QuantizerConfig& c) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}", c.format.to_string(), to_string(c.granularity), c.axis, c.group_size, c.symmetric,
                     c.unsigned_if_nonnegative, to_string(c.observer), c.percentile, to_string(c.scale_storage));
}

// What GPTQ and AdaRound need of a layer's float inputs on the calibration data.
struct LayerInputs {
  std::unique_ptr<HessianAccumulator> hessian;  // GPTQ
  std::vector<HessianAccumulator> group_hessians;  // GPTQ of a grouped Conv: one per group
  std::vector<float> rows;                      // AdaRound: sampled input rows (im2col for Conv)
  int64_t cols = 0;
};

GptqOptions gptq_options(const PassSpec& p) {
  GptqOptions o;
  o.damp = p.number("damp", o.damp);
  o.block_size = static_cast<int>(p.number("block_size", o.block_size));
  o.act_order = p.flag("act_order", o.act_order);
  return o;
}

// Rows per layer kept for AdaRound.
constexpr int64_t kAdaRoundRows = 4096;

std::map<size_t, LayerInputs> collect_layer_inputs(const Graph& g, const std::vector<size_t>& layers, const std::vector<Tensor>& batches,
                                                   bool keep_rows, int threads) {
  std::map<size_t, LayerInputs> out;
  std::map<std::string, std::vector<size_t>> readers;  // input value -> layers reading it
  for (size_t k : layers) {
    const Node& n = g.nodes[k];
    const Tensor* w = n.has_input(1) ? g.initializer(n.inputs[1]) : nullptr;
    if (!w || w->dtype() != DType::F32 || !n.has_input(0) || g.initializer(n.inputs[0])) continue;
    if (n.op_type == "MatMul" && w->rank() != 2) continue;
    const int64_t groups = n.i("group", 1);
    if (groups != 1 && (keep_rows || n.op_type != "Conv" || w->rank() != 4)) continue;  // grouped: GPTQ of 2-D Conv only
    LayerInputs& in = out[k];
    in.cols = n.op_type == "Conv" ? w->size() / w->dim(0) : (n.op_type == "Gemm" && n.i("transB", 0) ? w->dim(1) : w->dim(0));
    if (groups != 1) {
      for (int64_t i = 0; i < groups; ++i) in.group_hessians.emplace_back(in.cols, 1);
    } else if (!keep_rows) {
      in.hessian = std::make_unique<HessianAccumulator>(in.cols, threads);
    }
    readers[n.inputs[0]].push_back(k);
  }
  Session s(g, SessionOptions{threads, true});
  std::set<std::string> names;
  for (const auto& [v, ks] : readers) names.insert(v);
  int64_t per_batch = std::max<int64_t>(1, kAdaRoundRows / static_cast<int64_t>(batches.size()));
  uint32_t seed = 0;
  s.set_value_hook(names, [&](const std::string& name, const Tensor& x) {
    for (size_t k : readers[name]) {
      const Node& n = g.nodes[k];
      const Shape& w_shape = g.initializer(n.inputs[1])->shape();
      LayerInputs& in = out[k];
      if (!in.group_hessians.empty()) {
        add_grouped_conv_input(in.group_hessians, n, x, w_shape);
      } else if (in.hessian) {
        add_layer_input(*in.hessian, n, x, w_shape);
      } else if (n.op_type == "Conv") {
        std::vector<float> rows = conv_im2col(n, x, w_shape, per_batch, seed++);
        in.rows.insert(in.rows.end(), rows.begin(), rows.end());
      } else {
        // Gemm / MatMul: the input rows as they are (transA not supported here).
        if (n.i("transA", 0)) continue;
        int64_t n_rows = x.size() / in.cols;
        int64_t take = std::min(n_rows, per_batch);
        for (int64_t r = 0; r < take; ++r) {
          const float* row = x.data<float>() + (r * n_rows / take) * in.cols;
          in.rows.insert(in.rows.end(), row, row + in.cols);
        }
      }
    }
  });
  for (const Tensor& b : batches) s.run(b);
  return out;
}

// AdaRound on a layer's weight in the graph's layout: Conv [OC, ...] and Gemm transB = 1 as they
// are, Gemm transB = 0 / MatMul [K, N] through their transpose.
void adaround_layer(const Node& n, const Tensor& w, const LayerInputs& in, QuantizerConfig c, const AdaRoundOptions& o, Tensor& wq) {
  int64_t cols = in.cols, rows = w.size() / cols, samples = static_cast<int64_t>(in.rows.size()) / cols;
  bool transposed = n.op_type == "MatMul" || (n.op_type == "Gemm" && !n.i("transB", 0));
  std::vector<float> wt(w.data<float>(), w.data<float>() + w.size());
  if (transposed) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) wt[static_cast<size_t>(r * cols + k)] = w.data<float>()[k * rows + r];
    c.axis = c.granularity == Granularity::Group ? 1 : 0;
  }
  // Untransposed weights keep their tensor shape, so the config's axes mean what they mean for
  // round-to-nearest (groups of input channels of a Conv, for instance).
  std::vector<float> q = transposed ? adaround_quantize(wt, rows, cols, in.rows, samples, c, o)
                                    : adaround_quantize(wt, w.shape(), in.rows, samples, c, o);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k)
      wq.data<float>()[transposed ? k * rows + r : r * cols + k] = q[static_cast<size_t>(r * cols + k)];
}

}  // namespace

std::vector<const Node*> quantizable_layers(const Graph& g) {
  std::vector<const Node*> out;
  for (const Node& n : g.nodes)
    if (is_layer(g, n)) out.push_back(&n);
  return out;
}

QuantizeGraphResult quantize_graph(Graph g, const QuantRecipe& recipe, const CalibrationFeed& calibration, int threads) {
  g.sort_topologically();
  fold_batch_norm(g);
  QuantizeGraphResult result;
  // Calibration batches, decoded once and kept for every pass that reads them.
  std::vector<Tensor> batches;
  auto calibration_batches = [&]() -> const std::vector<Tensor>& {
    if (batches.empty()) {
      if (!calibration) throw std::runtime_error("the recipe needs calibration data and none was given");
      calibration([&](Tensor x) { batches.push_back(std::move(x)); });
      if (batches.empty()) throw std::runtime_error("the calibration data is empty");
    }
    return batches;
  };
  if (const PassSpec* p = recipe.pass("cross_layer_equalization")) {
    EqualizeOptions o;
    o.max_iterations = static_cast<int>(p->number("max_iterations", o.max_iterations));
    o.tolerance = p->number("tolerance", o.tolerance);
    o.relu6_to_relu = p->flag("relu6_to_relu", o.relu6_to_relu);
    result.equalization = equalize_cross_layer(g, o);
  }
  if (const PassSpec* p = recipe.pass("smoothquant")) {
    SmoothQuantOptions o;
    o.alpha = p->number("alpha", o.alpha);
    result.smooth_quant = smooth_quant(g, calibration_batches(), o, threads);
  }
  if (const PassSpec* p = recipe.pass("hadamard")) result.hadamard = rotate_hadamard(g, hadamard_options(*p));
  const Graph reference = g;  // float, BN folded (equalized, smoothed, rotated): what the later passes aim at
  std::vector<size_t> layers;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (is_layer(g, g.nodes[k])) layers.push_back(k);

  // Activation quantizers, one per (value, config): the inputs of every layer.
  struct ActQuant {
    std::string value;
    std::unique_ptr<Quantizer> q;
    std::vector<std::pair<size_t, size_t>> readers;  // (node index, input index)
  };
  std::map<std::string, ActQuant> acts;
  const PassSpec* gptq = recipe.pass("gptq");
  const PassSpec* adaround = recipe.pass("adaround");
  std::map<size_t, LayerInputs> inputs;
  if (gptq || adaround) inputs = collect_layer_inputs(reference, layers, calibration_batches(), adaround != nullptr, threads);
  std::optional<Progress> progress;
  if (gptq || adaround) progress.emplace(gptq ? "gptq" : "adaround", layers.size(), "layers");
  for (size_t li = 0; li < layers.size(); ++li) {
    if (progress) progress->advance(li ? 1 : 0);
    Node& n = g.nodes[layers[li]];
    bool first = li == 0, last = li + 1 == layers.size();
    LayerQuantReport rep;
    rep.node = n.name;
    rep.op = n.op_type;
    rep.output = n.outputs.at(0);
    // Weights.
    Tensor* w = n.has_input(1) ? (g.initializers.count(n.inputs[1]) ? &g.initializers[n.inputs[1]] : nullptr) : nullptr;
    if (w && w->dtype() == DType::F32) {
      auto [ch_axis, red_axis] = weight_axes(n, *w);
      if (auto c = recipe.config_for(n, TensorRole::Weight, first, last, ch_axis)) {
        if (c->granularity == Granularity::Group) c->axis = red_axis;
        c->threads = threads;
        Tensor wq = Tensor::uninitialized(DType::F32, w->shape());
        rep.rounding = "nearest";
        auto in = inputs.find(layers[li]);
        const bool grouped = in != inputs.end() && !in->second.group_hessians.empty();
        bool learned = in != inputs.end() && c->format.scalar() && !grouped;
        if (grouped && gptq && c->format.scalar() && c->granularity == Granularity::Channel && c->axis == 0) {
          std::vector<std::vector<double>> hessians;
          for (const HessianAccumulator& h : in->second.group_hessians) hessians.push_back(h.hessian());
          GptqResult r = gptq_quantize_grouped_conv(n, *w, hessians, *c, gptq_options(*gptq));
          std::copy(r.weights.begin(), r.weights.end(), wq.data<float>());
          rep.weight_params = std::move(r.params);
          rep.rounding = "gptq";
        } else if (learned && gptq) {
          GptqResult r = gptq_quantize_layer(n, *w, in->second.hessian->hessian(), *c, gptq_options(*gptq));
          std::copy(r.weights.begin(), r.weights.end(), wq.data<float>());
          rep.weight_params = std::move(r.params);
          rep.rounding = "gptq";
        } else if (learned && adaround) {
          AdaRoundOptions o;
          o.iterations = static_cast<int>(adaround->number("iterations", o.iterations));
          o.batch_rows = static_cast<int>(adaround->number("batch_rows", o.batch_rows));
          o.learning_rate = static_cast<float>(adaround->number("learning_rate", o.learning_rate));
          o.reg_weight = static_cast<float>(adaround->number("reg_weight", o.reg_weight));
          o.threads = threads;
          adaround_layer(n, *w, in->second, *c, o, wq);
          Quantizer q(*c);  // AdaRound rounds on round-to-nearest's grid
          q.observe(w->span<float>(), w->shape());
          if (c->format.scalar()) rep.weight_params = q.compute_params();
          rep.rounding = "adaround";
        } else {
          Quantizer q(*c);
          q.observe(w->span<float>(), w->shape());
          if (c->format.scalar()) {
            q.set_params(q.compute_params());
            rep.weight_params = *q.params();
          }
          q.fake_quant(w->span<float>(), wq.span<float>(), w->shape());
        }
        rep.weight_format = c->format.to_string();
        rep.weight_sqnr_db = sqnr_db(w->span<float>(), wq.span<float>());
        std::string name = g.unique_name(n.inputs[1] + "_quantized");
        rep.weight_value = name;
        rep.weight_config = *c;
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
  if (progress) progress->finish();

  // Calibrate with the weights already quantized and float activations: the ranges are then those
  // the quantized layers produce.
  bool needs_stats = false;
  for (auto& [key, a] : acts) needs_stats = needs_stats || a.q->config().format.scalar();
  if (needs_stats) {
    const std::vector<Tensor>& data = calibration_batches();
    Session s(g, SessionOptions{threads, true});
    std::map<std::string, std::vector<Quantizer*>> by_value;
    for (auto& [key, a] : acts) by_value[a.value].push_back(a.q.get());
    std::set<std::string> names;
    for (auto& [v, qs] : by_value) names.insert(v);
    s.set_value_hook(names, [&](const std::string& name, const Tensor& t) {
      if (t.dtype() != DType::F32) return;
      for (Quantizer* q : by_value[name]) q->observe(t.span<float>(), t.shape());
    });
    for (const Tensor& x : data) s.run(x);
  }

  // Non-negative activations whose recipe asks for it drop the sign bit (after ReLU, say).
  for (auto& [key, a] : acts) {
    const QuantizerConfig& c = a.q->config();
    if (!c.unsigned_if_nonnegative || !c.symmetric || !c.format.scalar() || !a.q->observed_nonnegative()) continue;
    std::optional<ScalarFormat> u = unsigned_of_same_width(*c.format.scalar());
    if (!u) continue;
    a.q->set_format(*u);
    for (auto [node, input] : a.readers)
      for (LayerQuantReport& rep : result.layers)
        if (rep.node == g.nodes[node].name) rep.activation_format = u->to_string();
  }

  // Insert one FakeQuant per activation quantizer, rewiring its readers.
  for (auto& [key, a] : acts) {
    Node fq;
    fq.op_type = "FakeQuant";
    fq.domain = "lowbit";
    std::string out = g.unique_name(a.value + "_fq");
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
  if (const PassSpec* bc = recipe.pass("bias_correction")) {
    std::vector<std::string> outputs;
    for (const LayerQuantReport& rep : result.layers) {
      if (rep.weight_format == "float" && rep.activation_format == "float") continue;
      if (rep.op == "Conv" || rep.op == "Gemm") outputs.push_back(rep.output);
    }
    // Means over a few hundred images are steady; more only costs time.
    const std::vector<Tensor>& all = calibration_batches();
    size_t images = 0, used = 0;
    const size_t wanted = static_cast<size_t>(bc->number("images", 256));
    while (used < all.size() && images < wanted) images += static_cast<size_t>(all[used++].dim(0));
    std::vector<Tensor> subset(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(used));
    result.bias_correction = correct_bias(g, reference, outputs, subset, threads);
  }
  result.graph = std::move(g);
  result.reference = reference;
  return result;
}

}  // namespace lowbit
