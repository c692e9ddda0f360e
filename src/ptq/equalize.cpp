#include "lowbit/ptq/equalize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>

namespace lowbit {

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

bool is_graph_output(const Graph& g, const std::string& v) {
  for (const ValueInfo& o : g.outputs)
    if (o.name == v) return true;
  return false;
}

// Index of the single node reading `value` (in a single input slot), if it is not a graph output.
size_t only_reader(const Graph& g, const std::string& value) {
  if (value.empty() || is_graph_output(g, value)) return kNone;
  size_t found = kNone;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const std::string& in : g.nodes[k].inputs)
      if (in == value) {
        if (found != kNone) return kNone;
        found = k;
      }
  return found;
}

const Tensor* float_initializer(const Graph& g, const Node& n, size_t input) {
  if (!n.has_input(input)) return nullptr;
  const Tensor* t = g.initializer(n.inputs[input]);
  return t && t->dtype() == DType::F32 ? t : nullptr;
}

// A constant input: an initializer or the output of a Constant node.
const Tensor* constant_input(const Graph& g, const Node& n, size_t input) {
  if (!n.has_input(input)) return nullptr;
  if (const Tensor* t = g.initializer(n.inputs[input])) return t;
  const Node* p = g.producer_of(n.inputs[input]);
  if (p && p->op_type == "Constant" && p->domain.empty() && p->has("value")) return p->tensor("value");
  return nullptr;
}

// A layer's weight seen as [out, in_per_group, kernel]: Conv [O, I/g, k...] as it is, Gemm's B
// ([K, N], or [N, K] with transB) with kernel 1 and one group. Input channel c of the layer is slot
// c % in_per_group of the output channels of group c / in_per_group.
struct WeightLayout {
  bool gemm = false;
  bool trans_b = false;  // Gemm: B stored [N, K] rather than [K, N]
  int64_t out = 0, in_per_group = 0, kernel = 1, groups = 1;

  int64_t out_per_group() const { return out / groups; }
  int64_t input_channel(int64_t o, int64_t j) const { return (o / out_per_group()) * in_per_group + j; }
  int64_t index(int64_t o, int64_t j, int64_t k) const {
    if (gemm) return trans_b ? o * in_per_group + j : j * out + o;
    return (o * in_per_group + j) * kernel + k;
  }
};

enum class Act { None, Relu, Clip, ReluMin };

struct Pair {
  size_t first = kNone, second = kNone;
  size_t act = kNone, min = kNone;  // the Relu / Clip node, and the Min after a Relu
  Act kind = Act::None;
  float clip_hi = 0;
  size_t min_const_input = 1;  // which input of the Min is the bound
  int64_t channels = 0;
  int output_rank = 0;
  std::vector<double> scale;  // cumulative: W1[i] / scale[i], W2[:, i] * scale[i]
};

std::optional<WeightLayout> layer_layout(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1) return std::nullopt;
  const Tensor* w = float_initializer(g, n, 1);
  if (!w || w->size() == 0) return std::nullopt;
  WeightLayout l;
  if (n.op_type == "Conv") {
    l.groups = n.i("group", 1);
    if (w->rank() < 3 || l.groups < 1 || w->dim(0) % l.groups != 0) return std::nullopt;
    l.out = w->dim(0);
    l.in_per_group = w->dim(1);
    l.kernel = w->size() / (l.out * l.in_per_group);
    return l;
  }
  if (n.op_type == "Gemm" && w->rank() == 2) {
    l.gemm = true;
    l.trans_b = n.i("transB", 0) != 0;
    l.out = w->dim(l.trans_b ? 0 : 1);
    l.in_per_group = w->dim(l.trans_b ? 1 : 0);
    return l;
  }
  return std::nullopt;
}

// Clip(0, hi) with constant bounds: hi (infinite when absent); nullopt for any other Clip.
std::optional<float> relu_clip_bound(const Graph& g, const Node& clip) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (g.opset < 11) {
    lo = clip.f("min", lo);
    hi = clip.f("max", hi);
  } else {
    for (size_t k = 1; k < 3; ++k) {
      if (!clip.has_input(k)) continue;
      const Tensor* t = constant_input(g, clip, k);
      if (!t || t->dtype() != DType::F32 || t->size() != 1) return std::nullopt;
      (k == 1 ? lo : hi) = t->data<float>()[0];
    }
  }
  if (lo != 0.f || !(hi > 0.f)) return std::nullopt;
  return hi;
}

// A Min bound that is one value, or one value per channel broadcast along axis 1 of the output.
bool is_channel_bound(const Tensor& t, int64_t channels, int output_rank) {
  if (t.dtype() != DType::F32) return false;
  if (t.size() == 1) return t.rank() <= output_rank;
  if (t.size() != channels || t.rank() > output_rank) return false;
  for (int j = 0; j < t.rank(); ++j) {
    int out_axis = output_rank - t.rank() + j;
    if (t.dim(j) != (out_axis == 1 ? channels : 1)) return false;
  }
  return true;
}

std::optional<Pair> match_pair(const Graph& g, size_t first) {
  const Node& n1 = g.nodes[first];
  auto l1 = layer_layout(g, n1);
  if (!l1) return std::nullopt;
  Pair p;
  p.first = first;
  p.channels = l1->out;
  p.output_rank = l1->gemm ? 2 : g.initializer(n1.inputs[1])->rank();
  if (n1.has_input(2)) {
    const Tensor* b = float_initializer(g, n1, 2);
    if (!b || b->size() != p.channels || (l1->gemm && !is_channel_bound(*b, p.channels, 2))) return std::nullopt;
  }

  std::string value = n1.outputs[0];
  size_t next = only_reader(g, value);
  if (next == kNone) return std::nullopt;
  const Node* a = &g.nodes[next];
  if (a->domain.empty() && (a->op_type == "Relu" || a->op_type == "Clip") && a->outputs.size() == 1 && a->inputs[0] == value) {
    if (a->op_type == "Relu") {
      p.kind = Act::Relu;
    } else {
      auto hi = relu_clip_bound(g, *a);
      if (!hi) return std::nullopt;
      p.kind = std::isinf(*hi) ? Act::Relu : Act::Clip;
      p.clip_hi = *hi;
    }
    p.act = next;
    value = a->outputs[0];
    next = only_reader(g, value);
    if (next == kNone) return std::nullopt;
    const Node& m = g.nodes[next];
    if (a->op_type == "Relu" && m.op_type == "Min" && m.domain.empty() && m.inputs.size() == 2 && m.outputs.size() == 1) {
      p.min_const_input = m.inputs[0] == value ? 1 : 0;
      const Tensor* c = float_initializer(g, m, p.min_const_input);
      if (!c || !is_channel_bound(*c, p.channels, p.output_rank)) return std::nullopt;
      p.kind = Act::ReluMin;
      p.min = next;
      value = m.outputs[0];
      next = only_reader(g, value);
      if (next == kNone) return std::nullopt;
    }
  }

  const Node& n2 = g.nodes[next];
  if (n2.op_type != n1.op_type || n2.inputs.empty() || n2.inputs[0] != value) return std::nullopt;
  auto l2 = layer_layout(g, n2);
  if (!l2) return std::nullopt;
  if (l2->in_per_group * l2->groups != p.channels) return std::nullopt;
  if (l2->gemm ? n2.i("transA", 0) != 0 : g.initializer(n2.inputs[1])->rank() != p.output_rank) return std::nullopt;
  p.second = next;
  p.scale.assign(static_cast<size_t>(p.channels), 1.0);
  return p;
}

// Makes input `input` of node `node` an initializer that nothing else reads, copying it if shared.
void own_initializer(Graph& g, size_t node, size_t input) {
  const std::string name = g.nodes[node].inputs[input];
  bool shared = is_graph_output(g, name);
  for (size_t k = 0; k < g.nodes.size() && !shared; ++k)
    for (size_t j = 0; j < g.nodes[k].inputs.size(); ++j)
      if (g.nodes[k].inputs[j] == name && (k != node || j != input)) shared = true;
  if (!shared) return;
  std::string copy = g.unique_name(name + "_cle");
  g.initializers.emplace(copy, g.initializers.at(name));
  g.nodes[node].inputs[input] = copy;
}

// A layer of some pair: max |w| over each kernel ([out, in_per_group]), and the scales of the
// pairs it is the second (input side) and first (output side) layer of.
struct LayerRanges {
  size_t node = kNone;
  WeightLayout layout;
  std::vector<double> absmax;
  const std::vector<double>* in_scale = nullptr;   // null: 1
  const std::vector<double>* out_scale = nullptr;  // null: 1
};

LayerRanges layer_ranges(const Graph& g, size_t node) {
  LayerRanges l;
  l.node = node;
  l.layout = *layer_layout(g, g.nodes[node]);
  const WeightLayout& w = l.layout;
  const float* data = g.initializer(g.nodes[node].inputs[1])->data<float>();
  l.absmax.assign(static_cast<size_t>(w.out * w.in_per_group), 0.0);
  for (int64_t o = 0; o < w.out; ++o)
    for (int64_t j = 0; j < w.in_per_group; ++j) {
      double& m = l.absmax[static_cast<size_t>(o * w.in_per_group + j)];
      for (int64_t k = 0; k < w.kernel; ++k) m = std::max(m, std::fabs(double{data[w.index(o, j, k)]}));
    }
  return l;
}

double scale_at(const std::vector<double>* s, int64_t i) { return s ? (*s)[static_cast<size_t>(i)] : 1.0; }

// One equalization step of a pair, on the ranges the weights would have under the current scales
// (the weights themselves change once, at the end); returns max |s_i - 1|.
double equalize_pair(Pair& p, const LayerRanges& a, const LayerRanges& b) {
  const auto channels = static_cast<size_t>(p.channels);
  std::vector<double> r1(channels, 0.0), r2(channels, 0.0), ones;
  // r1[o] = max_j absmax1[o, j] * in_scale1[c(o, j)]
  const WeightLayout& la = a.layout;
  if (!a.in_scale) ones.assign(static_cast<size_t>(la.in_per_group * la.groups), 1.0);
  const double* in1 = a.in_scale ? a.in_scale->data() : ones.data();
  for (int64_t o = 0; o < la.out; ++o) {
    const double* m = a.absmax.data() + o * la.in_per_group;
    const double* in = in1 + la.input_channel(o, 0);
    double r = 0;
    for (int64_t j = 0; j < la.in_per_group; ++j) r = std::max(r, m[j] * in[j]);
    r1[static_cast<size_t>(o)] = r;
  }
  // r2[c(o, j)] = max_o absmax2[o, j] / out_scale2[o]
  const WeightLayout& lb = b.layout;
  for (int64_t o = 0; o < lb.out; ++o) {
    const double inv = 1 / scale_at(b.out_scale, o);
    const double* m = b.absmax.data() + o * lb.in_per_group;
    double* r = r2.data() + lb.input_channel(o, 0);
    for (int64_t j = 0; j < lb.in_per_group; ++j) r[j] = std::max(r[j], m[j] * inv);
  }
  double change = 0;
  for (size_t i = 0; i < channels; ++i) {
    if (r1[i] == 0 || r2[i] == 0) continue;
    // The current ranges are r1 / scale and r2 * scale.
    double s = p.scale[i], step = std::sqrt((r1[i] / s) / (r2[i] * s));
    p.scale[i] = s * step;
    change = std::max(change, std::fabs(step - 1));
  }
  return change;
}

// W[o, j, k] * in_scale[c(o, j)] / out_scale[o] and b[o] / out_scale[o], rounded once.
void apply_scales(Graph& g, const LayerRanges& l) {
  const Node& n = g.nodes[l.node];
  const WeightLayout& w = l.layout;
  float* data = g.initializers.at(n.inputs[1]).data<float>();
  for (int64_t o = 0; o < w.out; ++o)
    for (int64_t j = 0; j < w.in_per_group; ++j) {
      double f = scale_at(l.in_scale, w.input_channel(o, j)) / scale_at(l.out_scale, o);
      for (int64_t k = 0; k < w.kernel; ++k) {
        float& v = data[w.index(o, j, k)];
        v = static_cast<float>(double{v} * f);
      }
    }
  if (l.out_scale && n.has_input(2)) {
    float* bias = g.initializers.at(n.inputs[2]).data<float>();
    for (int64_t o = 0; o < w.out; ++o) bias[o] = static_cast<float>(double{bias[o]} / scale_at(l.out_scale, o));
  }
}

Tensor channel_bound(const Pair& p, const std::vector<float>& hi) {
  Shape shape(static_cast<size_t>(p.output_rank), 1);
  shape[1] = p.channels;
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < p.channels; ++i)
    t.data<float>()[i] = static_cast<float>(hi[static_cast<size_t>(i)] / p.scale[static_cast<size_t>(i)]);
  return t;
}

}  // namespace

EqualizeReport equalize_cross_layer(Graph& g, const EqualizeOptions& opt) {
  if (opt.max_iterations < 1) throw std::invalid_argument("equalize_cross_layer: max_iterations must be at least 1");
  if (!(opt.tolerance >= 0)) throw std::invalid_argument("equalize_cross_layer: tolerance must be non-negative");
  EqualizeReport report;
  std::vector<Pair> pairs;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (auto p = match_pair(g, k)) pairs.push_back(std::move(*p));
  report.pairs = static_cast<int>(pairs.size());
  if (pairs.empty()) return report;

  for (const Pair& p : pairs) {
    own_initializer(g, p.first, 1);
    if (g.nodes[p.first].has_input(2)) own_initializer(g, p.first, 2);
    own_initializer(g, p.second, 1);
  }

  // Every layer of some pair, once; a layer in the middle of a chain is both a second and a first.
  std::vector<LayerRanges> layers;
  std::vector<std::pair<size_t, size_t>> pair_layers;  // (first, second) indices into layers
  auto layer_of = [&](size_t node) {
    for (size_t k = 0; k < layers.size(); ++k)
      if (layers[k].node == node) return k;
    layers.push_back(layer_ranges(g, node));
    return layers.size() - 1;
  };
  for (Pair& p : pairs) {
    size_t a = layer_of(p.first), b = layer_of(p.second);
    pair_layers.emplace_back(a, b);
  }
  for (size_t k = 0; k < pairs.size(); ++k) {
    layers[pair_layers[k].first].out_scale = &pairs[k].scale;
    layers[pair_layers[k].second].in_scale = &pairs[k].scale;
  }

  for (int it = 1; it <= opt.max_iterations; ++it) {
    double change = 0;
    for (size_t k = 0; k < pairs.size(); ++k)
      change = std::max(change, equalize_pair(pairs[k], layers[pair_layers[k].first], layers[pair_layers[k].second]));
    report.iterations = it;
    report.final_change = change;
    if (change < opt.tolerance) break;
  }
  for (const LayerRanges& l : layers) apply_scales(g, l);

  // The activations between the pairs. Relu commutes with positive per-channel scales; an upper
  // bound hi must become hi / S_i per channel to keep the function. A Clip becomes Relu -> Min: the
  // Relu goes in the Clip's place and the Clip node turns into the Min, so the order stays
  // topological and the Clip's output keeps its name.
  std::set<std::string> maybe_unused;
  std::vector<std::pair<size_t, Node>> inserts;  // (insert before node index, node)
  std::set<size_t> dead;
  for (Pair& p : pairs) {
    if (p.kind == Act::Clip) {
      Node& clip = g.nodes[p.act];
      for (size_t k = 1; k < clip.inputs.size(); ++k) maybe_unused.insert(clip.inputs[k]);
      std::string x = clip.inputs[0];
      if (opt.relu6_to_relu) {
        // Changes the function: activations above hi are no longer clipped.
        clip.op_type = "Relu";
        clip.inputs = {x};
        clip.attrs.clear();
      } else {
        Node relu;
        relu.name = clip.name.empty() ? "" : clip.name + "_relu";
        relu.op_type = "Relu";
        relu.inputs = {x};
        relu.outputs = {g.unique_name(clip.outputs[0] + "_relu")};
        std::string bound = g.unique_name((clip.name.empty() ? clip.outputs[0] : clip.name) + "_cle_bound");
        g.initializers.emplace(bound, channel_bound(p, std::vector<float>(static_cast<size_t>(p.channels), p.clip_hi)));
        clip.op_type = "Min";
        clip.inputs = {relu.outputs[0], bound};
        clip.attrs.clear();
        inserts.emplace_back(p.act, std::move(relu));  // goes before the Min
      }
    } else if (p.kind == Act::ReluMin) {
      Node& m = g.nodes[p.min];
      const std::string old = m.inputs[p.min_const_input];
      maybe_unused.insert(old);
      if (opt.relu6_to_relu) {
        // Changes the function, as for Clip: the Min goes, its reader reads the Relu.
        for (std::string& in : g.nodes[p.second].inputs)
          if (in == m.outputs[0]) in = m.inputs[1 - p.min_const_input];
        dead.insert(p.min);
      } else {
        const Tensor& c = g.initializers.at(old);
        std::vector<float> hi(static_cast<size_t>(p.channels));
        for (int64_t i = 0; i < p.channels; ++i) hi[static_cast<size_t>(i)] = c.data<float>()[c.size() == 1 ? 0 : i];
        std::string bound = g.unique_name((m.name.empty() ? m.outputs[0] : m.name) + "_cle_bound");
        g.initializers.emplace(bound, channel_bound(p, hi));
        m.inputs[p.min_const_input] = bound;
      }
    }
  }

  for (const Pair& p : pairs) {
    EqualizedPair e;
    e.first = g.nodes[p.first].label();
    e.second = g.nodes[p.second].label();
    e.first_weight = g.nodes[p.first].inputs[1];
    e.second_weight = g.nodes[p.second].inputs[1];
    e.activation = p.kind == Act::None ? "none" : p.kind == Act::Relu ? "Relu" : p.kind == Act::Clip ? "Clip" : "Relu+Min";
    e.scale = p.scale;
    report.pair_list.push_back(std::move(e));
  }

  if (!inserts.empty() || !dead.empty()) {
    std::vector<Node> nodes;
    nodes.reserve(g.nodes.size() + inserts.size());
    std::sort(inserts.begin(), inserts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    size_t next = 0;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      // The Relu replaces the Clip's position; the Min (the former Clip) follows it.
      while (next < inserts.size() && inserts[next].first == k) nodes.push_back(std::move(inserts[next++].second));
      if (!dead.count(k)) nodes.push_back(std::move(g.nodes[k]));
    }
    g.nodes = std::move(nodes);
  }

  // Drop the bounds (initializers or Constant nodes) that only the rewritten activations read.
  std::set<std::string> read;
  for (const Node& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (const std::string& v : maybe_unused) {
    if (v.empty() || read.count(v) || is_graph_output(g, v)) continue;
    g.initializers.erase(v);
    std::erase_if(g.nodes, [&](const Node& n) { return n.op_type == "Constant" && n.outputs.size() == 1 && n.outputs[0] == v; });
  }
  return report;
}

}  // namespace lowbit
