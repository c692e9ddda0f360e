#include "lowbit/format/tensor_shape.hpp"

#include <fmt/format.h>

namespace lowbit {

AxisView axis_view(std::span<const int64_t> shape, int axis, size_t size) {
  const int rank = static_cast<int>(shape.size());
  if (rank == 0) {
    if (size != 1) throw FormatError("a scalar shape holds one element");
    return {};
  }
  const int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw FormatError(fmt::format("axis {} is out of range for a tensor of rank {}", axis, rank));
  AxisView v;
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] < 0) throw FormatError(fmt::format("negative dimension {} in shape", shape[d]));
    total *= shape[d];
    if (d < a) v.outer *= shape[d];
    if (d > a) v.inner *= shape[d];
  }
  v.length = shape[a];
  if (static_cast<size_t>(total) != size)
    throw FormatError(fmt::format("shape holds {} elements but the tensor has {}", total, size));
  return v;
}

}  // namespace lowbit
