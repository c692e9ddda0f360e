#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

void register_pool_ops(OpRegistry& r) { (void)r; }

}  // namespace lowbit
