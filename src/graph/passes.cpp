#include "lowbit/graph/passes.hpp"

#include <cmath>
#include <limits>
#include <set>

#include "src/graph/graph_edit.hpp"

namespace lowbit {

using detail::erase_nodes;
using detail::only_consumer;

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
