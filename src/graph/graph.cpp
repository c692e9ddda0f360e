#include "lowbit/graph/graph.hpp"

#include <set>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

namespace lowbit {

namespace {
template <class T>
const T* get(const Node& n, const std::string& a, const char* want) {
  auto it = n.attrs.find(a);
  if (it == n.attrs.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second.value);
  if (!v) throw std::runtime_error(fmt::format("{}: attribute '{}' is not {}", n.label(), a, want));
  return v;
}
}  // namespace

int64_t Node::i(const std::string& a, int64_t def) const {
  const int64_t* v = get<int64_t>(*this, a, "an int");
  return v ? *v : def;
}
float Node::f(const std::string& a, float def) const {
  const float* v = get<float>(*this, a, "a float");
  return v ? *v : def;
}
std::string Node::s(const std::string& a, const std::string& def) const {
  const std::string* v = get<std::string>(*this, a, "a string");
  return v ? *v : def;
}
std::vector<int64_t> Node::ints(const std::string& a, std::vector<int64_t> def) const {
  const auto* v = get<std::vector<int64_t>>(*this, a, "a list of ints");
  return v ? *v : def;
}
std::vector<float> Node::floats(const std::string& a, std::vector<float> def) const {
  const auto* v = get<std::vector<float>>(*this, a, "a list of floats");
  return v ? *v : def;
}
const Tensor* Node::tensor(const std::string& a) const { return get<Tensor>(*this, a, "a tensor"); }

std::string Node::label() const { return fmt::format("{} '{}'", op_type, name.empty() ? (outputs.empty() ? "" : outputs[0]) : name); }

const Node* Graph::producer_of(const std::string& value) const {
  for (const Node& n : nodes)
    for (const std::string& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

std::vector<const Node*> Graph::consumers_of(const std::string& value) const {
  std::vector<const Node*> out;
  for (const Node& n : nodes)
    for (const std::string& in : n.inputs)
      if (in == value) {
        out.push_back(&n);
        break;
      }
  return out;
}

std::string Graph::unique_name(const std::string& base) const {
  std::set<std::string> used;
  for (const auto& [k, v] : initializers) used.insert(k);
  for (const Node& n : nodes) used.insert(n.outputs.begin(), n.outputs.end());
  for (const ValueInfo& v : inputs) used.insert(v.name);
  std::string name = base;
  for (int k = 1; used.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

void Graph::sort_topologically() {
  std::set<std::string> available;
  for (const auto& [name, t] : initializers) available.insert(name);
  for (const ValueInfo& v : inputs) available.insert(v.name);
  std::unordered_map<std::string, size_t> producer;
  for (size_t k = 0; k < nodes.size(); ++k)
    for (const std::string& o : nodes[k].outputs)
      if (!o.empty()) producer[o] = k;
  for (const Node& n : nodes)
    for (const std::string& in : n.inputs)
      if (!in.empty() && !available.count(in) && !producer.count(in))
        throw std::runtime_error(fmt::format("{}: input '{}' is neither a graph input, an initializer nor a node output",
                                             n.label(), in));
  std::vector<Node> sorted;
  std::vector<bool> done(nodes.size(), false);
  sorted.reserve(nodes.size());
  bool progress = true;
  while (sorted.size() < nodes.size() && progress) {
    progress = false;
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (done[k]) continue;
      bool ready = true;
      for (const std::string& in : nodes[k].inputs)
        if (!in.empty() && !available.count(in)) ready = false;
      if (!ready) continue;
      for (const std::string& o : nodes[k].outputs) available.insert(o);
      sorted.push_back(std::move(nodes[k]));
      done[k] = true;
      progress = true;
    }
  }
  if (sorted.size() < nodes.size()) {
    for (size_t k = 0; k < nodes.size(); ++k)
      if (!done[k]) throw std::runtime_error(fmt::format("{}: the graph has a cycle through this node", nodes[k].label()));
  }
  nodes = std::move(sorted);
}

}  // namespace lowbit
