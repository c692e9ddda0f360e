#pragma once
// A tensor of `shape` seen as [outer, length, inner] around one axis.
#include <cstdint>
#include <span>

#include "lowbit/format/scalar_format.hpp"

namespace lowbit {

struct AxisView {
  int64_t outer = 1, length = 1, inner = 1;
};

// Throws FormatError when the axis is out of range or the shape does not hold `size` elements.
AxisView axis_view(std::span<const int64_t> shape, int axis, size_t size);

}  // namespace lowbit
