#pragma once
// Applies a recipe to a float graph: folds BatchNormalization, fake-quantizes the weights of Conv,
// Gemm and MatMul in place, calibrates the activation quantizers on calibration data (running the
// float graph) and inserts lowbit.FakeQuant nodes on the inputs of those layers.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/ptq/bias_correction.hpp"
#include "lowbit/ptq/equalize.hpp"
#include "lowbit/ptq/hadamard_rotation.hpp"
#include "lowbit/ptq/recipe.hpp"
#include "lowbit/ptq/smooth_quant.hpp"

namespace lowbit {

// Calls `consume` once per calibration batch.
using CalibrationFeed = std::function<void(const std::function<void(Tensor)>& consume)>;

struct LayerQuantReport {
  std::string node, op, output;  // the layer's name, operator and output value
  std::string weight_format = "float", activation_format = "float";  // "float" when left alone
  std::string rounding = "float";                 // of the weights: nearest, gptq, adaround
  double weight_sqnr_db = 0;                      // of the quantized weights
  // The quantized weight initializer and the quantizer whose grid it lies on (scales and zero
  // points set for scalar formats; block-scaled and BitMoD formats carry their own).
  std::string weight_value;
  std::optional<QuantizerConfig> weight_config;
  QuantParams weight_params;
};

struct QuantizeGraphResult {
  Graph graph;
  Graph reference;  // the float graph the quantized one approximates: BN folded, equalized if asked
  std::vector<LayerQuantReport> layers;
  std::optional<EqualizeReport> equalization;
  std::optional<SmoothQuantReport> smooth_quant;
  std::optional<HadamardReport> hadamard;
  std::optional<BiasCorrectionReport> bias_correction;
};

// The layers a recipe applies to, in graph order: Conv, Gemm and MatMul nodes (not Hadamard rotations).
std::vector<const Node*> quantizable_layers(const Graph& g);

QuantizeGraphResult quantize_graph(Graph g, const QuantRecipe& recipe, const CalibrationFeed& calibration, int threads = 1);

}  // namespace lowbit
