#pragma once
// Model-level figures for one (weight, activation) format pair, for a batch of one image:
//   MACs of every Conv, Gemm and MatMul (output elements x dot-product length);
//   bit-operations = MACs x weight bits x activation bits;
//   weight memory = weight elements of those layers x weight bits (biases not counted: they
//     live at accumulator precision);
//   activation memory = each layer's data input x activation bits: the peak (largest single
//     layer input: the least a layer-by-layer schedule must hold) and the sum over layers (what a
//     layer-parallel dataflow with a full input buffer per layer holds);
//   FPGA resources of a layer-parallel dataflow: every layer has its own array of identical MAC
//     units (accumulator sized for the layer's dot-product length n), output-stationary: a unit
//     computes one output at a time in n cycles. Units per layer: the layer's output channels
//     (--parallelism channel) or min(P, its output elements) (--parallelism P). All layers run at
//     once, so the initiation interval is the slowest layer's cycles.
// A MatMul without a constant operand multiplies two activations (activation x activation MACs).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/hw/cost_model.hpp"

namespace lowbit::hw {

struct Parallelism {
  bool per_channel = true;
  int64_t units = 1;  // when !per_channel
};
// "channel" or a positive integer; throws std::invalid_argument otherwise.
Parallelism parse_parallelism(const std::string& text);

struct LayerFormats {
  std::string weight, activation;
};

struct ModelCostOptions {
  std::string weight = "int8", activation = "int8";
  Parallelism parallelism;
  bool use_dsp = true;
  // Formats of one layer where they differ from weight / activation (e.g. a recipe's layer rules).
  std::function<std::optional<LayerFormats>(const Node&)> layer_formats;
};

struct LayerCost {
  std::string name, op;
  std::string weight_format, activation_format;  // of the MAC (activation x activation for a MatMul of two values)
  int64_t macs = 0, dot_length = 0, outputs = 0, out_channels = 0;
  int64_t weight_elements = 0, input_elements = 0;
  int64_t units = 0, cycles = 0;
  int acc_bits = 0;
  MacCost unit, total;  // one MAC unit; units x one unit
  double bit_ops = 0;
};

struct ModelCost {
  std::string model, weight, activation;
  ModelCostOptions options;
  std::vector<LayerCost> layers;
  int64_t macs = 0, units = 0, interval_cycles = 0;
  double bit_ops = 0, weight_bits = 0, activation_bits_peak = 0, activation_bits_sum = 0;
  MacCost total;
};

// The graph must have inferred shapes (infer_shapes) or static ones.
ModelCost model_cost(const Graph& g, const ModelCostOptions& o, const CostModel& model);
// Loads the ONNX file and infers its shapes first.
ModelCost model_cost(const std::string& onnx_path, const ModelCostOptions& o, const CostModel& model);
std::string format_model_cost(const ModelCost& c);

}  // namespace lowbit::hw
