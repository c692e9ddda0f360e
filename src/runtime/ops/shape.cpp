#include "lowbit/runtime/kernel.hpp"

namespace lowbit {

void register_shape_ops(OpRegistry& r) { (void)r; }

}  // namespace lowbit
