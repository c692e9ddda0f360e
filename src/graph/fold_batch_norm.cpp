#include "lowbit/graph/fold_batch_norm.hpp"

#include <cmath>
#include <set>

#include "src/graph/graph_edit.hpp"

namespace lowbit {

namespace {

using detail::erase_nodes;
using detail::only_consumer;

// The BatchNormalization that only `layer` feeds, if it can be folded, with its four parameter
// tensors (scale, bias, mean, var) of `channels` floats each.
Node* foldable_batch_norm(Graph& g, const Node& layer, int64_t channels, const Tensor* (&p)[4]) {
  Node* bn = only_consumer(g, layer.outputs[0]);
  if (!bn || bn->op_type != "BatchNormalization" || !bn->domain.empty() || bn->i("training_mode", 0) != 0 ||
      bn->outputs.size() != 1 || bn->inputs.size() < 5 || bn->inputs[0] != layer.outputs[0])
    return nullptr;
  for (int k = 0; k < 4; ++k) {
    p[k] = g.initializer(bn->inputs[static_cast<size_t>(k + 1)]);
    if (!p[k] || p[k]->dtype() != DType::F32 || p[k]->size() != channels) return nullptr;
  }
  return bn;
}

// The layer's bias per output channel (before BN), or nullopt when it is not a constant the fold can
// rewrite. Conv: B of [channels] floats. Gemm: beta * C, C of [channels], [1, channels] or one value.
std::optional<std::vector<float>> layer_bias(const Graph& g, const Node& layer, int64_t channels) {
  std::vector<float> bias(static_cast<size_t>(channels), 0.0f);
  if (!layer.has_input(2)) return bias;
  const Tensor* b = g.initializer(layer.inputs[2]);
  if (!b || b->dtype() != DType::F32) return std::nullopt;
  if (layer.op_type == "Conv") {
    if (b->size() != channels) return std::nullopt;
    for (int64_t c = 0; c < channels; ++c) bias[static_cast<size_t>(c)] = b->data<float>()[c];
    return bias;
  }
  const bool per_column = b->size() == channels && (b->rank() == 1 || (b->rank() == 2 && b->dim(0) == 1));
  if (!per_column && b->size() != 1) return std::nullopt;
  const float beta = layer.f("beta", 1.0f);
  for (int64_t c = 0; c < channels; ++c) bias[static_cast<size_t>(c)] = beta * b->data<float>()[per_column ? c : 0];
  return bias;
}

}  // namespace

int fold_batch_norm(Graph& g) {
  std::set<const Node*> dead;
  int folded = 0;
  for (Node& layer : g.nodes) {
    const bool conv = layer.op_type == "Conv", gemm = layer.op_type == "Gemm";
    if ((!conv && !gemm) || !layer.domain.empty() || layer.outputs.size() != 1 || !layer.has_input(1)) continue;
    const Tensor* w = g.initializer(layer.inputs[1]);
    if (!w || w->dtype() != DType::F32 || (conv && w->rank() < 3) || (gemm && w->rank() != 2)) continue;
    // Output channel c scales W's row c (Conv, Gemm transB = 1) or W's column c (Gemm transB = 0).
    const bool by_column = gemm && layer.i("transB", 0) == 0;
    const int64_t channels = by_column ? w->dim(1) : w->dim(0);
    const Tensor* p[4];
    Node* bn = foldable_batch_norm(g, layer, channels, p);
    if (!bn) continue;
    std::optional<std::vector<float>> bias = layer_bias(g, layer, channels);
    if (!bias) continue;
    const float eps = bn->f("epsilon", 1e-5f);
    Tensor nw = *w, nb(DType::F32, {channels});
    const int64_t per = w->size() / channels;
    for (int64_t c = 0; c < channels; ++c) {
      const float a = p[0]->data<float>()[c] / std::sqrt(p[3]->data<float>()[c] + eps);
      for (int64_t k = 0; k < per; ++k) nw.data<float>()[by_column ? k * channels + c : c * per + k] *= a;
      nb.data<float>()[c] = ((*bias)[static_cast<size_t>(c)] - p[2]->data<float>()[c]) * a + p[1]->data<float>()[c];
    }
    std::string wn = g.unique_name(layer.inputs[1] + "_bnfolded"), bname = g.unique_name(layer.inputs[1] + "_bnfolded_bias");
    g.initializers.emplace(wn, std::move(nw));
    g.initializers.emplace(bname, std::move(nb));
    layer.inputs.resize(3);
    layer.inputs[1] = wn;
    layer.inputs[2] = bname;
    if (gemm) layer.attrs["beta"] = Attribute{1.0f};
    layer.outputs[0] = bn->outputs[0];
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

}  // namespace lowbit
