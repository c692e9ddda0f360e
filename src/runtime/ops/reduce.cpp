#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

void register_reduce_ops(OpRegistry& r) { (void)r; }

}  // namespace lowbit
