#pragma once
// Operator kernels. A kernel is made once per node (it may prepare constant weights, cache a
// oneDNN primitive) and then run on each batch. Kernels find shapes at run time, so any batch
// size works.
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"

namespace lowbit {

struct KernelContext {
  const Node& node;
  const Graph& graph;
  int threads = 1;
  // The constant value of input k (an initializer), or nullptr when it is computed or absent.
  const Tensor* constant(size_t k) const {
    return node.has_input(k) ? graph.initializer(node.inputs[k]) : nullptr;
  }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // in[k] is nullptr for an omitted optional input; out has one slot per node output.
  virtual void run(std::span<const Tensor* const> in, std::span<Tensor> out) = 0;
  // Whether input k may arrive channels-last (see Tensor::channels_last); otherwise the executor
  // hands it over plain.
  virtual bool accepts_channels_last(size_t k) const { (void)k; return false; }
};

// Layout conversions of float32 tensors of rank >= 3 (oneDNN reorders).
Tensor to_plain(const Tensor& t);
Tensor to_channels_last(const Tensor& t);

using KernelFactory = std::function<std::unique_ptr<Kernel>(const KernelContext&)>;
using SimpleKernelFn = std::function<void(const Node&, std::span<const Tensor* const>, std::span<Tensor>)>;

// A kernel with no state of its own.
KernelFactory stateless(SimpleKernelFn fn);

class OpRegistry {
 public:
  static OpRegistry& global();  // every built-in operator registered
  void add(const std::string& domain, const std::string& op_type, KernelFactory f);
  const KernelFactory* find(const std::string& domain, const std::string& op_type) const;
  std::vector<std::string> op_types() const;

 private:
  std::map<std::pair<std::string, std::string>, KernelFactory> ops_;
};

// Helpers for kernels: argument checks that throw std::runtime_error with a plain message
// (the executor adds the node's name).
const Tensor& input(std::span<const Tensor* const> in, size_t k, const char* what = nullptr);
void require_dtype(const Tensor& t, DType want, const char* what);

// Operator groups (one file each under src/runtime/ops).
void register_elementwise_ops(OpRegistry& r);
void register_shape_ops(OpRegistry& r);
void register_reduce_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_dnnl_ops(OpRegistry& r);
void register_quant_ops(OpRegistry& r);
void register_qonnx_ops(OpRegistry& r);

}  // namespace lowbit
