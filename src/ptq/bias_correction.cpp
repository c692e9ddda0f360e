#include "lowbit/ptq/bias_correction.hpp"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/runtime/session.hpp"

namespace lowbit {

namespace {

// Per-channel sums (channel axis 1, or the only axis of a vector) of the values seen.
struct ChannelMean {
  std::vector<double> sum;
  double count = 0;
  void add(const Tensor& t) {
    if (t.dtype() != DType::F32 || t.rank() < 2) throw std::runtime_error("bias correction needs float outputs with a channel axis");
    int64_t n = t.dim(0), c = t.dim(1), inner = t.size() / std::max<int64_t>(1, n * c);
    if (sum.empty()) sum.assign(static_cast<size_t>(c), 0.0);
    const float* d = t.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch) {
        double s = 0;
        const float* row = d + (i * c + ch) * inner;
        for (int64_t k = 0; k < inner; ++k) s += row[k];
        sum[static_cast<size_t>(ch)] += s;
      }
    count += static_cast<double>(n * inner);
  }
  double mean(size_t ch) const { return count > 0 ? sum[ch] / count : 0; }
};

std::map<std::string, ChannelMean> measure(const Graph& g, const std::set<std::string>& values, const std::vector<Tensor>& batches,
                                           int threads) {
  // Without fusion: the hooked layer outputs must exist before their activations.
  Session s(g, SessionOptions{threads, false});
  std::map<std::string, ChannelMean> means;
  s.set_value_hook(values, [&](const std::string& name, const Tensor& t) { means[name].add(t); });
  for (const Tensor& b : batches) s.run(b);
  return means;
}

// The part of g that computes `value`: its ancestor nodes, with `value` as the only output.
Graph ancestors_of(const Graph& g, const std::string& value) {
  std::set<std::string> needed{value};
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t k = g.nodes.size(); k-- > 0;) {  // g is in topological order
    const Node& n = g.nodes[k];
    bool wanted = false;
    for (const std::string& o : n.outputs) wanted = wanted || needed.count(o);
    if (!wanted) continue;
    keep[k] = true;
    needed.insert(n.inputs.begin(), n.inputs.end());
  }
  Graph sub;
  sub.opset = g.opset;
  sub.ir_version = g.ir_version;
  sub.inputs = g.inputs;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (keep[k]) sub.nodes.push_back(g.nodes[k]);
  for (const auto& [name, t] : g.initializers)
    if (needed.count(name)) sub.initializers.emplace(name, t);
  ValueInfo out;
  out.name = value;
  sub.outputs.push_back(out);
  return sub;
}

Node* producer(Graph& g, const std::string& value) {
  for (Node& n : g.nodes)
    for (const std::string& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

}  // namespace

BiasCorrectionReport correct_bias(Graph& quantized, const Graph& reference, const std::vector<std::string>& layer_outputs,
                                  const std::vector<Tensor>& batches, int threads) {
  if (batches.empty()) throw std::runtime_error("bias correction needs calibration data");
  std::set<std::string> all(layer_outputs.begin(), layer_outputs.end());
  std::map<std::string, ChannelMean> want = measure(reference, all, batches, threads);
  // Each layer's bias input, made a private initializer (a new one where the layer had none).
  std::map<std::string, std::string> bias_of;
  for (const std::string& out : layer_outputs) {
    Node* layer = producer(quantized, out);
    if (!layer || (layer->op_type != "Conv" && layer->op_type != "Gemm"))
      throw std::runtime_error(fmt::format("bias correction: '{}' is not the output of a Conv or Gemm", out));
    if (layer->op_type == "Gemm" && layer->f("beta", 1.f) != 1.f)
      throw std::runtime_error(fmt::format("bias correction: {} has beta != 1", layer->label()));
    const size_t c = want.at(out).sum.size();
    Tensor bias(DType::F32, {static_cast<int64_t>(c)});
    if (layer->has_input(2)) {
      const Tensor* old = quantized.initializer(layer->inputs[2]);
      if (!old || old->dtype() != DType::F32 || old->size() != static_cast<int64_t>(c))
        throw std::runtime_error(fmt::format("bias correction: the bias of {} is not a constant of {} values", layer->label(), c));
      std::copy(old->data<float>(), old->data<float>() + c, bias.data<float>());
    }
    std::string name = quantized.unique_name((layer->name.empty() ? out : layer->name) + "_bias_corrected");
    quantized.initializers.emplace(name, std::move(bias));
    if (layer->inputs.size() < 3) layer->inputs.resize(3);
    layer->inputs[2] = name;
    bias_of[out] = name;
  }
  // Layer by layer in graph order, each measured with the corrections of the layers before it; a
  // layer's measurement runs only the part of the graph it depends on.
  BiasCorrectionReport report;
  std::map<std::string, std::vector<double>> total;
  for (const std::string& out : layer_outputs) {
    std::map<std::string, ChannelMean> got = measure(ancestors_of(quantized, out), {out}, batches, threads);
    const ChannelMean& w = want.at(out);
    const ChannelMean& q = got.at(out);
    if (q.sum.size() != w.sum.size()) throw std::runtime_error(fmt::format("bias correction: '{}' changed its channel count", out));
    std::vector<double>& t = total[out];
    float* b = quantized.initializers.at(bias_of.at(out)).data<float>();
    for (size_t ch = 0; ch < w.sum.size(); ++ch) {
      double shift = w.mean(ch) - q.mean(ch);
      b[ch] += static_cast<float>(shift);
      t.push_back(shift);
    }
  }
  double sum = 0;
  size_t channels = 0;
  for (const auto& [out, t] : total)
    for (double v : t) {
      sum += std::fabs(v);
      ++channels;
    }
  report.layers = static_cast<int>(layer_outputs.size());
  report.mean_abs_shift = channels ? sum / static_cast<double>(channels) : 0;
  return report;
}

}  // namespace lowbit
