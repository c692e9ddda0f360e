#pragma once
// Small helpers shared by graph rewrites (src/graph).
#include <set>
#include <string>

#include "lowbit/graph/graph.hpp"

namespace lowbit::detail {

inline bool is_graph_output(const Graph& g, const std::string& v) {
  for (const ValueInfo& o : g.outputs)
    if (o.name == v) return true;
  return false;
}

// The single node reading `value`, if exactly one node reads it and it is not a graph output.
inline Node* only_consumer(Graph& g, const std::string& value) {
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

inline void erase_nodes(Graph& g, const std::set<const Node*>& dead) {
  std::vector<Node> kept;
  for (Node& n : g.nodes)
    if (!dead.count(&n)) kept.push_back(std::move(n));
  g.nodes = std::move(kept);
}

}  // namespace lowbit::detail
