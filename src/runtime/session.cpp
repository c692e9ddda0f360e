#include "lowbit/runtime/session.hpp"

#include "lowbit/format/format.hpp"
#include "lowbit/graph/passes.hpp"

#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>
#include <omp.h>

namespace lowbit {

constexpr size_t kAbsent = SIZE_MAX;

namespace {

bool is_layout_agnostic(const Node& n) {
  static const std::set<std::string> elementwise = {
      "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu", "Exp", "Abs",
      "Neg", "Sqrt", "Erf", "Identity", "Softplus", "Floor", "Ceil", "Round", "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"};
  if (n.domain.empty()) return elementwise.count(n.op_type) > 0;
  // Per-tensor fake quantization in a scalar format treats every element alike.
  if (n.domain == "lowbit" && n.op_type == "FakeQuant")
    return n.floats("scale", {1.f}).size() <= 1 && Format::parse(n.s("format", "")).scalar() != nullptr;
  return false;
}

}  // namespace

std::vector<std::string> supported_ops() { return OpRegistry::global().op_types(); }

Session::Session(Graph g, SessionOptions opt) : graph_(std::move(g)), opt_(opt) {
  graph_.sort_topologically();
  if (opt_.optimize) {
    fold_batch_norm(graph_);
    fuse_activations(graph_);
  }
  auto id_of = [&](const std::string& name) {
    auto [it, inserted] = value_id_.try_emplace(name, value_id_.size());
    return it->second;
  };
  for (const auto& [name, t] : graph_.initializers) id_of(name);
  for (const ValueInfo& v : graph_.inputs) input_ids_.push_back(id_of(v.name));
  const OpRegistry& reg = OpRegistry::global();
  for (const Node& n : graph_.nodes) {
    const KernelFactory* f = reg.find(n.domain, n.op_type);
    if (!f)
      throw std::runtime_error(fmt::format("unsupported operator '{}{}' at node '{}'", n.domain.empty() ? "" : n.domain + ".",
                                           n.op_type, n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name));
    try {
      kernels_.push_back((*f)(KernelContext{n, graph_, opt_.threads}));
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", n.label(), e.what()));
    }
    layout_agnostic_.push_back(is_layout_agnostic(n));
    std::vector<size_t> ins, outs;
    for (const std::string& i : n.inputs) ins.push_back(i.empty() ? kAbsent : id_of(i));
    for (const std::string& o : n.outputs) outs.push_back(o.empty() ? kAbsent : id_of(o));
    node_inputs_.push_back(std::move(ins));
    node_outputs_.push_back(std::move(outs));
  }
  for (const ValueInfo& v : graph_.outputs) {
    auto it = value_id_.find(v.name);
    if (it == value_id_.end()) throw std::runtime_error(fmt::format("graph output '{}' is never computed", v.name));
    output_ids_.push_back(it->second);
  }
  // Free each computed value after its last reader; keep initializers and outputs.
  std::vector<size_t> last_use(value_id_.size(), kAbsent);
  for (size_t k = 0; k < graph_.nodes.size(); ++k)
    for (size_t id : node_inputs_[k])
      if (id != kAbsent) last_use[id] = k;
  std::vector<bool> keep(value_id_.size(), false);
  for (const auto& [name, t] : graph_.initializers) keep[value_id_[name]] = true;
  for (size_t id : output_ids_) keep[id] = true;
  release_after_.resize(graph_.nodes.size());
  for (size_t id = 0; id < last_use.size(); ++id)
    if (!keep[id] && last_use[id] != kAbsent) release_after_[last_use[id]].push_back(id);
  hooked_.assign(value_id_.size(), false);
}

Session::~Session() = default;

void Session::set_value_hook(std::set<std::string> names, ValueHook hook) {
  hooked_.assign(value_id_.size(), false);
  for (const std::string& n : names) {
    auto it = value_id_.find(n);
    if (it == value_id_.end()) throw std::runtime_error(fmt::format("no value named '{}' in the graph", n));
    hooked_[it->second] = true;
  }
  hook_ = std::move(hook);
}

std::vector<Tensor> Session::run(Tensor x) {
  if (graph_.inputs.size() != 1)
    throw std::runtime_error(fmt::format("the model has {} inputs, one was given", graph_.inputs.size()));
  std::vector<std::pair<std::string, Tensor>> feeds;
  feeds.emplace_back(graph_.inputs[0].name, std::move(x));
  return run(std::move(feeds));
}

std::vector<Tensor> Session::run(std::vector<std::pair<std::string, Tensor>> feeds) {
  omp_set_num_threads(opt_.threads);
  std::vector<Tensor> values(value_id_.size());
  std::vector<const Tensor*> ptr(value_id_.size(), nullptr);
  for (const auto& [name, t] : graph_.initializers) ptr[value_id_[name]] = &t;
  for (auto& [name, t] : feeds) {
    const ValueInfo* info = nullptr;
    for (const ValueInfo& v : graph_.inputs)
      if (v.name == name) info = &v;
    if (!info) throw std::runtime_error(fmt::format("the model has no input named '{}'", name));
    if (t.dtype() != info->dtype)
      throw std::runtime_error(fmt::format("input '{}' is {}, the model expects {}", name, to_string(t.dtype()), to_string(info->dtype)));
    if (info->has_shape) {
      bool ok = t.rank() == static_cast<int>(info->dims.size());
      for (size_t k = 0; ok && k < info->dims.size(); ++k)
        if (info->dims[k] >= 0 && info->dims[k] != t.shape()[k]) ok = false;
      if (!ok) {
        std::vector<std::string> want;
        for (size_t k = 0; k < info->dims.size(); ++k)
          want.push_back(info->dims[k] >= 0 ? std::to_string(info->dims[k])
                                            : (info->dim_params[k].empty() ? "?" : info->dim_params[k]));
        throw std::runtime_error(fmt::format("input '{}' has shape {}, the model expects [{}]", name, shape_string(t.shape()),
                                             fmt::join(want, ",")));
      }
    }
    size_t id = value_id_.at(name);
    values[id] = std::move(t);
    ptr[id] = &values[id];
    if (hooked_[id]) hook_(name, values[id]);
  }
  for (size_t id : input_ids_)
    if (!ptr[id]) {
      for (const auto& [name, vid] : value_id_)
        if (vid == id) throw std::runtime_error(fmt::format("input '{}' was not given", name));
    }
  // Plain copies of channels-last values, made once for all the readers that need them.
  std::vector<Tensor> plain(value_id_.size());
  auto plain_of = [&](size_t id) -> const Tensor* {
    if (!ptr[id]->channels_last()) return ptr[id];
    if (plain[id].empty_value()) plain[id] = to_plain(*ptr[id]);
    return &plain[id];
  };
  std::vector<const Tensor*> in;
  std::vector<Tensor> out;
  for (size_t k = 0; k < graph_.nodes.size(); ++k) {
    const Node& n = graph_.nodes[k];
    in.clear();
    for (size_t id : node_inputs_[k]) in.push_back(id == kAbsent ? nullptr : ptr[id]);
    bool keep_channels_last = false;
    if (layout_agnostic_[k]) {
      // As they are when every non-scalar input is channels-last with one shape.
      const Tensor* first = nullptr;
      bool all = true;
      for (const Tensor* t : in) {
        if (!t || t->size() <= 1) continue;
        if (!first) first = t;
        all = all && t->channels_last() && t->shape() == first->shape();
      }
      // A broadcast scalar of higher rank would change the output's rank.
      for (const Tensor* t : in)
        if (t && first && t->size() <= 1 && t->rank() > first->rank()) all = false;
      keep_channels_last = first && all;
    }
    for (size_t j = 0; j < in.size(); ++j)
      if (in[j] && in[j]->channels_last() && !keep_channels_last && !kernels_[k]->accepts_channels_last(j))
        in[j] = plain_of(node_inputs_[k][j]);
    out.clear();
    out.resize(node_outputs_[k].size());
    try {
      kernels_[k]->run(in, out);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", n.label(), e.what()));
    }
    for (size_t j = 0; j < out.size(); ++j) {
      size_t id = node_outputs_[k][j];
      if (id == kAbsent) continue;
      values[id] = std::move(out[j]);
      if (keep_channels_last) values[id].set_channels_last(true);
      ptr[id] = &values[id];
      if (hooked_[id]) hook_(n.outputs[j], *plain_of(id));
    }
    for (size_t id : release_after_[k]) {
      values[id] = Tensor();
      plain[id] = Tensor();
      ptr[id] = nullptr;
    }
  }
  std::vector<Tensor> result;
  for (size_t id : output_ids_) {
    if (!ptr[id]) throw std::runtime_error("a graph output was not computed");
    if (ptr[id]->channels_last())
      result.push_back(to_plain(*ptr[id]));
    else
      result.push_back(values[id].empty_value() ? *ptr[id] : std::move(values[id]));
  }
  return result;
}

}  // namespace lowbit
