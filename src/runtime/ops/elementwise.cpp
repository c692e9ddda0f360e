#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

void register_elementwise_ops(OpRegistry& r) { (void)r; }

}  // namespace lowbit
