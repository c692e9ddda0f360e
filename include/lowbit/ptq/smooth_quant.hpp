#pragma once
// SmoothQuant (Xiao et al. 2023): migrates activation outliers into the weights. For a layer
// y = x W with per-input-channel ranges a_j = max |x_j| (calibration data) and w_j = max |W_j|,
// s_j = a_j^alpha / w_j^(1 - alpha); then y = (x / s) (s W): the float function is unchanged, the
// activation's channels are flattened and the weight's input channels take the difference.
//
// Layers: Gemm (transA = 0), MatMul with a 2-D weight initializer, and 1x1 Conv with group 1, each
// with a float32 weight initializer. x / s is a Mul by a per-channel constant inserted before the
// layer (in hardware it folds into the producer's requantization); the weight is replaced by a
// scaled copy.
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"

namespace lowbit {

struct SmoothQuantOptions {
  // Migration strength in [0, 1]: x / s has channel ranges a_j^(1 - alpha) w_j^(1 - alpha); 1 makes
  // them all 1 (all of x's spread moves into W), 0 makes W's input channels all span 1.
  double alpha = 0.5;
};

struct SmoothQuantReport {
  std::vector<std::string> layers;  // labels of the smoothed layers
  // Over the smoothed layers: mean of max_j a_j / median_j a_j, before and after.
  double activation_spread_before = 0, activation_spread_after = 0;
};

// Throws std::invalid_argument for alpha outside [0, 1] or empty calibration data.
SmoothQuantReport smooth_quant(Graph& g, const std::vector<Tensor>& calibration, const SmoothQuantOptions& o, int threads);

}  // namespace lowbit
