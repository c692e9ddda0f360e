#include "src/runtime/ops/conv_geometry.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace lowbit {

ConvGeometry conv_geometry(const Node& n, const Shape& x, const Shape& w) {
  if (x.size() < 3 || x.size() != w.size())
    throw std::runtime_error(fmt::format("input {} and weights {} do not make a convolution", shape_string(x), shape_string(w)));
  size_t sp = x.size() - 2;
  ConvGeometry g;
  g.groups = n.i("group", 1);
  if (g.groups < 1 || x[1] % g.groups != 0 || w[0] % g.groups != 0 || w[1] * g.groups != x[1])
    throw std::runtime_error(fmt::format("input {} and weights {} do not match with group={}", shape_string(x), shape_string(w), g.groups));
  g.kernel = n.ints("kernel_shape", std::vector<int64_t>(w.begin() + 2, w.end()));
  g.strides = n.ints("strides", std::vector<int64_t>(sp, 1));
  g.dilations = n.ints("dilations", std::vector<int64_t>(sp, 1));
  std::vector<int64_t> pads = n.ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (g.kernel.size() != sp || g.strides.size() != sp || g.dilations.size() != sp || pads.size() != 2 * sp)
    throw std::runtime_error(fmt::format("kernel_shape, strides, dilations or pads do not match {} spatial dimensions", sp));
  for (size_t k = 0; k < sp; ++k) {
    if (g.kernel[k] != w[k + 2]) throw std::runtime_error(fmt::format("kernel_shape does not match weights {}", shape_string(w)));
    if (g.strides[k] < 1 || g.dilations[k] < 1) throw std::runtime_error("strides and dilations must be positive");
  }
  std::string auto_pad = n.s("auto_pad", "NOTSET");
  g.output_shape = {x[0], w[0]};
  g.pads_begin.resize(sp);
  g.pads_end.resize(sp);
  for (size_t k = 0; k < sp; ++k) {
    int64_t in = x[k + 2], eff = (g.kernel[k] - 1) * g.dilations[k] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      int64_t out = (in + g.strides[k] - 1) / g.strides[k];
      int64_t total = std::max<int64_t>(0, (out - 1) * g.strides[k] + eff - in);
      int64_t small = total / 2, big = total - small;
      g.pads_begin[k] = auto_pad == "SAME_UPPER" ? small : big;
      g.pads_end[k] = auto_pad == "SAME_UPPER" ? big : small;
    } else if (auto_pad == "VALID") {
      g.pads_begin[k] = g.pads_end[k] = 0;
    } else if (auto_pad == "NOTSET") {
      g.pads_begin[k] = pads[k];
      g.pads_end[k] = pads[k + sp];
    } else {
      throw std::runtime_error(fmt::format("unknown auto_pad '{}'", auto_pad));
    }
    int64_t span = in + g.pads_begin[k] + g.pads_end[k] - eff;
    if (span < 0) throw std::runtime_error(fmt::format("kernel larger than the padded input {}", shape_string(x)));
    g.output_shape.push_back(span / g.strides[k] + 1);
  }
  return g;
}

}  // namespace lowbit
