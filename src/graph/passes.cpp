#include "lowbit/graph/passes.hpp"

#include <cmath>
#include <limits>
#include <set>

namespace lowbit {

namespace {

bool is_graph_output(const Graph& g, const std::string& v) {
  for (const ValueInfo& o : g.outputs)
    if (o.name == v) return true;
  return false;
}

// The single node reading `value`, if exactly one node reads it and it is not a graph output.
Node* only_consumer(Graph& g, const std::string& value) {
  if (is_graph_output(g, value)) return nullptr;
  Node* found = nullptr;
  for (Node& n : g.nodes)
    for (const std::string& in : n.inputs)
      if (in == value) {
        if (found && found != &n) return nullptr;
        found = &n;
      }
  return found;
}

void erase_nodes(Graph& g, const std::set<const Node*>& dead) {
  std::vector<Node> kept;
  for (Node& n : g.nodes)
    if (!dead.count(&n)) kept.push_back(std::move(n));
  g.nodes = std::move(kept);
}

}  // namespace

int fold_batch_norm(Graph& g) {
  std::set<const Node*> dead;
  int folded = 0;
  for (Node& conv : g.nodes) {
    if (conv.op_type != "Conv" || !conv.domain.empty() || conv.outputs.size() != 1) continue;
    const Tensor* w = conv.has_input(1) ? g.initializer(conv.inputs[1]) : nullptr;
    if (!w || w->dtype() != DType::F32 || w->rank() < 3) continue;
    Node* bn = only_consumer(g, conv.outputs[0]);
    if (!bn || bn->op_type != "BatchNormalization" || bn->i("training_mode", 0) != 0 || bn->outputs.size() != 1 ||
        bn->inputs.size() < 5 || bn->inputs[0] != conv.outputs[0])
      continue;
    const Tensor* p[4];
    bool ok = true;
    int64_t oc = w->dim(0);
    for (int k = 0; k < 4; ++k) {
      p[k] = g.initializer(bn->inputs[static_cast<size_t>(k + 1)]);
      if (!p[k] || p[k]->dtype() != DType::F32 || p[k]->size() != oc) ok = false;
    }
    const Tensor* b = conv.has_input(2) ? g.initializer(conv.inputs[2]) : nullptr;
    if (conv.has_input(2) && (!b || b->dtype() != DType::F32 || b->size() != oc)) ok = false;
    if (!ok) continue;
    float eps = bn->f("epsilon", 1e-5f);
    Tensor nw = *w, nb(DType::F32, {oc});
    int64_t per = w->size() / oc;
    for (int64_t c = 0; c < oc; ++c) {
      float a = p[0]->data<float>()[c] / std::sqrt(p[3]->data<float>()[c] + eps);
      float* row = nw.data<float>() + c * per;
      for (int64_t k = 0; k < per; ++k) row[k] *= a;
      float bias = b ? b->data<float>()[c] : 0.f;
      nb.data<float>()[c] = (bias - p[2]->data<float>()[c]) * a + p[1]->data<float>()[c];
    }
    std::string wn = g.unique_name(conv.inputs[1] + "_bnfolded"), bname = g.unique_name(conv.inputs[1] + "_bnfolded_bias");
    g.initializers.emplace(wn, std::move(nw));
    g.initializers.emplace(bname, std::move(nb));
    conv.inputs.resize(3);
    conv.inputs[1] = wn;
    conv.inputs[2] = bname;
    conv.outputs[0] = bn->outputs[0];
    dead.insert(bn);
    ++folded;
  }
  erase_nodes(g, dead);
  // Drop initializers nobody reads any more.
  std::set<std::string> used;
  for (const Node& n : g.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = g.initializers.begin(); it != g.initializers.end();)
    it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
  return folded;
}

int fuse_activations(Graph& g) {
  std::set<const Node*> dead;
  int fused = 0;
  for (Node& n : g.nodes) {
    if (!n.domain.empty() || (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul") || n.outputs.size() != 1 ||
        n.has("lowbit_activation"))
      continue;
    Node* act = only_consumer(g, n.outputs[0]);
    if (!act || !act->domain.empty() || act->inputs.empty() || act->inputs[0] != n.outputs[0] || act->outputs.size() != 1) continue;
    if (act->op_type == "Relu") {
      n.attrs["lowbit_activation"] = Attribute{std::string("Relu")};
    } else if (act->op_type == "Clip") {
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (g.opset < 11) {
        lo = act->f("min", lo);
        hi = act->f("max", hi);
      } else {
        const Tensor* tlo = act->has_input(1) ? g.initializer(act->inputs[1]) : nullptr;
        const Tensor* thi = act->has_input(2) ? g.initializer(act->inputs[2]) : nullptr;
        if ((act->has_input(1) && (!tlo || tlo->dtype() != DType::F32 || tlo->size() != 1)) ||
            (act->has_input(2) && (!thi || thi->dtype() != DType::F32 || thi->size() != 1)))
          continue;
        if (tlo) lo = tlo->data<float>()[0];
        if (thi) hi = thi->data<float>()[0];
      }
      n.attrs["lowbit_activation"] = Attribute{std::string("Clip")};
      n.attrs["lowbit_act_min"] = Attribute{lo};
      n.attrs["lowbit_act_max"] = Attribute{hi};
    } else {
      continue;
    }
    n.outputs[0] = act->outputs[0];
    dead.insert(act);
    ++fused;
  }
  erase_nodes(g, dead);
  return fused;
}

}  // namespace lowbit
