#pragma once
// The geometry of an ONNX Conv: kernel, strides, dilations, pads (auto_pad resolved) and output shape.
#include <vector>

#include "lowbit/graph/graph.hpp"

namespace lowbit {

struct ConvGeometry {
  int64_t groups = 1;
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
  Shape output_shape;
};

// x: [N, C, spatial...], w: [M, C/groups, kernel...]. Throws std::runtime_error on inconsistent shapes.
ConvGeometry conv_geometry(const Node& n, const Shape& x, const Shape& w);

}  // namespace lowbit
