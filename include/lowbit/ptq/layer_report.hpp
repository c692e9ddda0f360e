#pragma once
// What quantization did to each layer: the relative output error of every quantized layer against
// the float graph, and the summary table `lowbit quantize` prints.
#include <map>
#include <string>
#include <vector>

#include "lowbit/ptq/quantize_graph.hpp"

namespace lowbit {

// For each of `outputs` (values both graphs compute): sum (q - f)^2 / sum f^2 over `batches`, with f
// from `reference` and q from `quantized`.
std::map<std::string, double> relative_output_errors(const Graph& reference, const Graph& quantized,
                                                     const std::vector<std::string>& outputs, const std::vector<Tensor>& batches,
                                                     int threads);

// The layers' outputs, in graph order, that a report covers: every layer with something quantized.
std::vector<std::string> quantized_layer_outputs(const QuantizeGraphResult& q);

// A plain-text table, one row per layer: node, op, weight format, scale rule, weight rounding,
// activation format, weight SQNR and the output error before / after the passes (a column is
// left out when its map is empty).
std::string layer_table(const QuantizeGraphResult& q, const std::map<std::string, double>& error_before,
                        const std::map<std::string, double>& error_after);

// "channel/minmax/fp32"-style description of a weight quantizer's scale rule.
std::string scale_rule(const QuantizerConfig& c);

}  // namespace lowbit
