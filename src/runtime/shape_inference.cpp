#include "lowbit/runtime/shape_inference.hpp"

#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/runtime/session.hpp"

namespace lowbit {

namespace {

std::map<std::string, Tensor> shapes_at_batch(const Graph& g, int64_t batch) {
  Session s(g, SessionOptions{1, false});
  std::set<std::string> names;
  for (const Node& n : g.nodes)
    for (const std::string& o : n.outputs)
      if (!o.empty()) names.insert(o);
  std::map<std::string, Tensor> seen;  // empty tensors of the value's type and shape
  s.set_value_hook(names, [&](const std::string& name, const Tensor& t) {
    seen[name] = Tensor(t.dtype(), {0});
    seen[name + "#shape"] = Tensor::from<int64_t>({static_cast<int64_t>(t.shape().size())}, t.shape());
  });
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (const ValueInfo& v : g.inputs) {
    if (!v.has_shape) throw std::runtime_error(fmt::format("input '{}' has no shape to infer from", v.name));
    Shape shape;
    for (size_t k = 0; k < v.dims.size(); ++k) {
      if (k == 0) {
        shape.push_back(batch);
      } else {
        if (v.dims[k] < 0) throw std::runtime_error(fmt::format("input '{}' has a symbolic dimension {} besides the batch", v.name, k));
        shape.push_back(v.dims[k]);
      }
    }
    feeds.emplace_back(v.name, Tensor(v.dtype, shape));
  }
  s.run(std::move(feeds));
  return seen;
}

}  // namespace

void infer_shapes(Graph& g) {
  std::map<std::string, Tensor> one = shapes_at_batch(g, 1), two = shapes_at_batch(g, 2);
  std::map<std::string, ValueInfo> info;
  for (const auto& [key, t] : one) {
    if (key.size() > 6 && key.compare(key.size() - 6, 6, "#shape") == 0) continue;
    ValueInfo v;
    v.name = key;
    v.dtype = t.dtype();
    v.has_shape = true;
    std::vector<int64_t> d1 = one.at(key + "#shape").to_ints(), d2 = two.at(key + "#shape").to_ints();
    for (size_t k = 0; k < d1.size(); ++k) {
      bool follows_batch = d2.size() == d1.size() && d2[k] != d1[k];
      v.dims.push_back(follows_batch ? -1 : d1[k]);
      v.dim_params.push_back(follows_batch ? (d2[k] == 2 * d1[k] && d1[k] == 1 ? "N" : fmt::format("N*{}", d1[k])) : "");
    }
    info[key] = v;
  }
  std::set<std::string> outputs;
  for (ValueInfo& o : g.outputs) {
    outputs.insert(o.name);
    if (auto it = info.find(o.name); it != info.end()) o = it->second;
  }
  g.value_info.clear();
  for (const Node& n : g.nodes)
    for (const std::string& o : n.outputs)
      if (!o.empty() && !outputs.count(o) && info.count(o)) g.value_info.push_back(info[o]);
}

}  // namespace lowbit
