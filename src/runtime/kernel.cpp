#include "lowbit/runtime/kernel.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace lowbit {

namespace {
class StatelessKernel : public Kernel {
 public:
  StatelessKernel(const Node& n, SimpleKernelFn fn) : node_(n), fn_(std::move(fn)) {}
  void run(std::span<const Tensor* const> in, std::span<Tensor> out) override { fn_(node_, in, out); }

 private:
  const Node& node_;
  SimpleKernelFn fn_;
};
}  // namespace

KernelFactory stateless(SimpleKernelFn fn) {
  return [fn = std::move(fn)](const KernelContext& c) { return std::make_unique<StatelessKernel>(c.node, fn); };
}

OpRegistry& OpRegistry::global() {
  static OpRegistry r = [] {
    OpRegistry reg;
    register_elementwise_ops(reg);
    register_shape_ops(reg);
    register_reduce_ops(reg);
    register_pool_ops(reg);
    register_dnnl_ops(reg);
    register_quant_ops(reg);
    register_qonnx_ops(reg);
    return reg;
  }();
  return r;
}

void OpRegistry::add(const std::string& domain, const std::string& op_type, KernelFactory f) {
  ops_[{domain, op_type}] = std::move(f);
}

const KernelFactory* OpRegistry::find(const std::string& domain, const std::string& op_type) const {
  auto it = ops_.find({domain, op_type});
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::op_types() const {
  std::vector<std::string> v;
  for (const auto& [k, f] : ops_) v.push_back(k.first.empty() ? k.second : k.first + "." + k.second);
  return v;
}

const Tensor& input(std::span<const Tensor* const> in, size_t k, const char* what) {
  if (k >= in.size() || !in[k])
    throw std::runtime_error(what ? fmt::format("missing input {} ({})", k, what) : fmt::format("missing input {}", k));
  return *in[k];
}

void require_dtype(const Tensor& t, DType want, const char* what) {
  if (t.dtype() != want)
    throw std::runtime_error(fmt::format("{} must be {}, got {}", what, to_string(want), to_string(t.dtype())));
}

}  // namespace lowbit
