#pragma once
// Empirical bias correction (Nagel et al. 2019, section 4.2): quantizing the weights (and the
// inputs) of a layer shifts the expected value of its outputs. The per-channel mean of each
// quantized layer's output is measured on calibration data in the float graph and in the quantized
// graph, and the difference is added to the layer's bias, layer by layer in graph order so that
// each layer is measured with the corrections of the layers before it.
#include <functional>
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"

namespace lowbit {

struct BiasCorrectionReport {
  int layers = 0;
  double mean_abs_shift = 0;  // mean |correction| over all corrected channels
};

// `quantized` and `reference` (its float counterpart) share node and value names for the layers
// listed in `layer_outputs` (the output value of each Conv / Gemm to correct). `batches` are the
// calibration inputs. Adds a bias initializer to layers that had none.
BiasCorrectionReport correct_bias(Graph& quantized, const Graph& reference, const std::vector<std::string>& layer_outputs,
                                  const std::vector<Tensor>& batches, int threads);

}  // namespace lowbit
