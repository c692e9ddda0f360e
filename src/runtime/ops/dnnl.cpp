#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

void register_dnnl_ops(OpRegistry& r) { (void)r; }

}  // namespace lowbit
