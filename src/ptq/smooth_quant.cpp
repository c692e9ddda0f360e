#include "lowbit/ptq/smooth_quant.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {

namespace {

// A layer SmoothQuant applies to, and where its input channel j sits in the weight.
struct Candidate {
  size_t node;
  int64_t channels = 0;  // K
  bool channel_axis_1 = false;  // input channels on axis 1 of x (Conv); otherwise the last axis
};

std::optional<Candidate> candidate(const Graph& g, size_t k) {
  const Node& n = g.nodes[k];
  if (!n.domain.empty() || !n.has_input(0) || !n.has_input(1) || g.initializer(n.inputs[0])) return std::nullopt;
  const Tensor* w = g.initializer(n.inputs[1]);
  if (!w || w->dtype() != DType::F32) return std::nullopt;
  if (n.op_type == "Conv" && w->rank() == 4 && w->dim(2) == 1 && w->dim(3) == 1 && n.i("group", 1) == 1)
    return Candidate{k, w->dim(1), true};
  if (n.op_type == "Gemm" && w->rank() == 2 && !n.i("transA", 0)) return Candidate{k, n.i("transB", 0) ? w->dim(1) : w->dim(0), false};
  if (n.op_type == "MatMul" && w->rank() == 2) return Candidate{k, w->dim(0), false};
  return std::nullopt;
}

// Index of weight element (output o, input channel j).
int64_t weight_index(const Node& n, const Tensor& w, int64_t o, int64_t j) {
  if (n.op_type == "Conv") return o * w.dim(1) + j;
  if (n.op_type == "Gemm" && n.i("transB", 0)) return o * w.dim(1) + j;
  return j * w.dim(1) + o;  // [K, N]
}

int64_t outputs_of(const Node& n, const Tensor& w) {
  if (n.op_type == "Conv" || (n.op_type == "Gemm" && n.i("transB", 0))) return w.dim(0);
  return w.dim(1);
}

double spread(const std::vector<double>& a) {
  std::vector<double> v = a;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  double median = v[v.size() / 2], max = *std::max_element(a.begin(), a.end());
  return median > 0 ? max / median : 1.0;
}

}  // namespace

SmoothQuantReport smooth_quant(Graph& g, const std::vector<Tensor>& calibration, const SmoothQuantOptions& o, int threads) {
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw std::invalid_argument(fmt::format("smoothquant: alpha {} is not in [0, 1]", o.alpha));
  if (calibration.empty()) throw std::invalid_argument("smoothquant: no calibration data");
  std::vector<Candidate> layers;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (auto c = candidate(g, k)) layers.push_back(*c);
  SmoothQuantReport report;
  if (layers.empty()) return report;

  // Per-channel max |x| of every layer input.
  std::map<std::string, std::vector<double>> ranges;
  std::map<std::string, bool> axis_1;
  for (const Candidate& c : layers) {
    ranges[g.nodes[c.node].inputs[0]].assign(static_cast<size_t>(c.channels), 0.0);
    axis_1[g.nodes[c.node].inputs[0]] = c.channel_axis_1;
  }
  {
    Session s(g, SessionOptions{threads, false});
    std::set<std::string> names;
    for (const auto& [v, r] : ranges) names.insert(v);
    s.set_value_hook(names, [&](const std::string& name, const Tensor& t) {
      const Tensor x = t.channels_last() ? to_plain(t) : t;
      std::vector<double>& r = ranges[name];
      const int64_t channels = static_cast<int64_t>(r.size());
      const int64_t inner = axis_1[name] ? (x.rank() > 2 ? x.size() / (x.dim(0) * x.dim(1)) : 1) : 1;
      if (x.size() % channels != 0) throw std::runtime_error(fmt::format("smoothquant: {} does not have {} channels", name, channels));
      const float* d = x.data<float>();
      for (int64_t i = 0; i < x.size(); ++i) {
        size_t ch = static_cast<size_t>((i / inner) % channels);
        r[ch] = std::max(r[ch], static_cast<double>(std::fabs(d[i])));
      }
    });
    for (const Tensor& b : calibration) s.run(b);
  }

  double before = 0, after = 0;
  for (const Candidate& c : layers) {
    Node& n = g.nodes[c.node];
    const std::vector<double>& a = ranges[n.inputs[0]];
    Tensor w = *g.initializer(n.inputs[1]);
    const int64_t outs = outputs_of(n, w);
    std::vector<double> s(static_cast<size_t>(c.channels), 1.0), a_after(a.size());
    for (int64_t j = 0; j < c.channels; ++j) {
      double wmax = 0;
      for (int64_t out = 0; out < outs; ++out) wmax = std::max(wmax, static_cast<double>(std::fabs(w.data<float>()[weight_index(n, w, out, j)])));
      double aj = a[static_cast<size_t>(j)];
      if (aj > 0 && wmax > 0) s[static_cast<size_t>(j)] = std::clamp(std::pow(aj, o.alpha) / std::pow(wmax, 1 - o.alpha), 1e-5, 1e5);
      for (int64_t out = 0; out < outs; ++out) w.data<float>()[weight_index(n, w, out, j)] *= static_cast<float>(s[static_cast<size_t>(j)]);
      a_after[static_cast<size_t>(j)] = aj / s[static_cast<size_t>(j)];
    }
    before += spread(a);
    after += spread(a_after);
    std::string w_name = g.unique_name(n.inputs[1] + "_smoothed");
    g.initializers.emplace(w_name, std::move(w));
    n.inputs[1] = w_name;
    Shape inv_shape = c.channel_axis_1 ? Shape{1, c.channels, 1, 1} : Shape{c.channels};
    Tensor inv(DType::F32, inv_shape);
    for (int64_t j = 0; j < c.channels; ++j) inv.data<float>()[j] = static_cast<float>(1.0 / s[static_cast<size_t>(j)]);
    std::string inv_name = g.unique_name(n.inputs[0] + "_smooth_scale");
    g.initializers.emplace(inv_name, std::move(inv));
    Node mul;
    mul.op_type = "Mul";
    mul.name = g.unique_name(n.name + "_smooth");
    std::string out = g.unique_name(n.inputs[0] + "_smoothed");
    mul.inputs = {n.inputs[0], inv_name};
    mul.outputs = {out};
    n.inputs[0] = out;
    report.layers.push_back(n.label());
    g.nodes.push_back(std::move(mul));  // now, so that the next unique_name sees its output (n is invalid after)
  }
  report.activation_spread_before = before / static_cast<double>(layers.size());
  report.activation_spread_after = after / static_cast<double>(layers.size());
  g.sort_topologically();
  return report;
}

}  // namespace lowbit
