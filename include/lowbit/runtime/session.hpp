#pragma once
// Executes a graph: kernels made once per node, values freed after their last use.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

struct SessionOptions {
  int threads = 1;
  // Fold BatchNormalization into Conv / Gemm and fuse Relu / Clip into the op before them (as ONNX
  // Runtime does); changes results only by float32 rounding.
  bool optimize = true;
};

class Session {
 public:
  // Makes a kernel for every node; throws std::runtime_error naming the first node whose
  // operator is not supported (or whose attributes or constant inputs are invalid).
  explicit Session(Graph g, SessionOptions opt = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Graph& graph() const { return graph_; }

  // Inputs by name (every graph input must be given, with the declared type and fixed
  // dimensions); returns the graph outputs in order.
  std::vector<Tensor> run(std::vector<std::pair<std::string, Tensor>> feeds);
  // Single-input convenience.
  std::vector<Tensor> run(Tensor x);

  // Called for each of `names` as soon as it is computed (graph inputs included).
  using ValueHook = std::function<void(const std::string& name, const Tensor& value)>;
  void set_value_hook(std::set<std::string> names, ValueHook hook);

 private:
  Graph graph_;
  SessionOptions opt_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::map<std::string, size_t> value_id_;
  std::vector<std::vector<size_t>> node_inputs_, node_outputs_;  // value ids (SIZE_MAX = absent)
  std::vector<std::vector<size_t>> release_after_;  // per node: values whose last use it is
  std::vector<size_t> input_ids_, output_ids_;
  std::vector<bool> hooked_;
  // Nodes whose kernel works element by element, so that it may run on channels-last inputs as
  // they are when all its non-scalar inputs share one shape and that layout.
  std::vector<bool> layout_agnostic_;
  ValueHook hook_;
};

// Names of the operators the executor supports.
std::vector<std::string> supported_ops();

}  // namespace lowbit
