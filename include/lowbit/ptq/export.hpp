#pragma once
// Exports of a quantized graph: QONNX (Quant / FloatQuant of the qonnx.custom_op.general domain)
// and standard ONNX QDQ (QuantizeLinear / DequantizeLinear) that ONNX Runtime runs.
//
// Both start from the graph with explicit weight quantizers (with_weight_quantizers): every
// quantizer is then a lowbit.FakeQuant node, on an activation or on a weight initializer.
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/ptq/quantize_graph.hpp"

namespace lowbit {

// The quantized graph with every quantized weight read through a lowbit.FakeQuant node of its own
// quantizer (scalar formats). The weights already lie on that grid, so the graph computes the same
// values; the node records the format, scales and zero points. Block-scaled and BitMoD weights stay
// as quantized float values (their scales are part of the values).
Graph with_weight_quantizers(const QuantizeGraphResult& q);

struct QonnxExport {
  Graph graph;
  // Quantizers QONNX has no operator for (block-scaled, BitMoD, fixed point, unsigned minifloats,
  // minifloats without subnormals, binary, other roundings): kept as lowbit.FakeQuant nodes, one
  // line each naming the node and why.
  std::vector<std::string> kept_as_lowbit;
};

// QONNX: integers (and ternary) -> Quant(x, scale, zeropt, bitwidth; signed, narrow, rounding_mode);
// minifloats -> FloatQuant(x, scale, exponent_bitwidth, mantissa_bitwidth, exponent_bias, max_val;
// has_infinity, has_nan, has_subnormal, saturation, rounding_mode). Scales broadcast over the
// quantized tensor: a scalar per tensor, [C, 1, ...] per channel, the tensor's shape per group.
// One difference of definition: QONNX Quant rounds x / scale + zeropt, lowbit (as ONNX
// QuantizeLinear) rounds x / scale and then adds the zero point; with an odd zero point the two
// differ at exact ties (x / scale = k + 1/2), and inputs on a grid (pixels) are all ties. Such a
// quantizer is exported as two Quant nodes: zero point 0 and bitwidth wide enough never to clip
// (it does the rounding), then the quantizer's own (its input is on the grid already), so the
// export computes lowbit's values bit for bit.
QonnxExport to_qonnx(const Graph& explicit_quantizers);

// ONNX QDQ (opset >= 13): 8-bit integer quantizers only. Weights become int8 / uint8 initializers
// read by DequantizeLinear (per tensor or per channel along the weight's axis); activations pass
// through QuantizeLinear -> DequantizeLinear. Throws std::runtime_error naming the first quantizer
// that has another format, a narrow range on an activation, a group granularity, or a rounding
// other than half to even.
Graph to_qdq(const Graph& explicit_quantizers);

}  // namespace lowbit
