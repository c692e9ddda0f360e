#pragma once
// The intermediate representation: a plain graph of nodes that name their input and output values,
// constant initializers and typed graph inputs / outputs. Passes rewrite it in place.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "lowbit/graph/tensor.hpp"

namespace lowbit {

struct Attribute {
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, std::vector<std::string>, Tensor>
      value;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;                // "" = the ONNX default domain
  std::vector<std::string> inputs;   // "" = an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
  // Typed attribute access; a missing attribute gives the default, a wrong type throws naming the node.
  int64_t i(const std::string& a, int64_t def) const;
  float f(const std::string& a, float def) const;
  std::string s(const std::string& a, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& a, std::vector<int64_t> def = {}) const;
  std::vector<float> floats(const std::string& a, std::vector<float> def = {}) const;
  const Tensor* tensor(const std::string& a) const;
  // Input k if present and non-empty.
  bool has_input(size_t k) const { return k < inputs.size() && !inputs[k].empty(); }
  // "Conv 'conv1'" for messages.
  std::string label() const;
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> dims;  // -1 where the dimension is symbolic or unknown
  std::vector<std::string> dim_params;  // the symbolic names ("" where fixed)
  bool has_shape = false;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs;   // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;  // types and shapes of intermediate values (infer_shapes fills it)
  int64_t opset = 13;
  int64_t ir_version = 8;
  std::string producer;

  const Tensor* initializer(const std::string& n) const {
    auto it = initializers.find(n);
    return it == initializers.end() ? nullptr : &it->second;
  }
  // The node that produces `value`, or nullptr for inputs and initializers.
  const Node* producer_of(const std::string& value) const;
  // Nodes that read `value`.
  std::vector<const Node*> consumers_of(const std::string& value) const;
  // `base`, or base_1, base_2, ... : a name no initializer, input or node output uses yet.
  std::string unique_name(const std::string& base) const;
  // Reorders nodes topologically; throws on a cycle or a value nobody produces.
  void sort_topologically();
};

}  // namespace lowbit
