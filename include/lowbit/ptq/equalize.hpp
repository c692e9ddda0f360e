#pragma once
// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization
// and Bias Correction", section 4.1).
//
// For two layers joined by a positively homogeneous activation, y = W2 f(W1 x + b1), and any
// positive per-channel scales S, y = (W2 S) f(S^-1 (W1 x + b1)). Choosing s_i = sqrt(r1_i / r2_i),
// where r1_i is the range (max |w|) of output channel i of W1 and r2_i that of input channel i of
// W2, makes both ranges sqrt(r1_i r2_i): the channels of each weight tensor then span similar
// ranges and per-tensor quantization loses much less. Chains (conv -> depthwise -> pointwise)
// share a layer between two pairs, so the pairs are swept until the scales stop changing.
//
// Pairs: Conv -> [Relu | Clip(0, hi) | Relu -> Min(const >= 0) | nothing] -> Conv, read as the
// second Conv's input 0, any groups on either side (depthwise-pointwise and conv-depthwise
// included), and the same between two Gemm layers. The first layer's output and the activation's
// output must each have exactly one reader and not be graph outputs; weights and biases must be
// float32 initializers (copied into new initializers when other nodes share them).
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"

namespace lowbit {

struct EqualizeOptions {
  // Sweeps over all pairs at most. A long chain converges slowly (each sweep shrinks what is left
  // by a constant factor): MobileNet v1, one chain of 26 pairs, needs about 650 sweeps to reach
  // 1e-6, about 1 s; 20 sweeps leave the ranges within about 4 % of balance.
  int max_iterations = 1000;
  // Stop after a sweep in which no channel scale differs from 1 by tolerance or more.
  double tolerance = 1e-6;
  // Clip(0, hi) is not positively homogeneous. false: keep the function exactly by rewriting it
  // into Relu -> Min(x, c) with a per-channel bound c_i = hi / S_i. true: replace it by Relu
  // (what the paper does for MobileNetV2's ReLU6); this CHANGES the function (activations are no
  // longer clipped at hi).
  bool relu6_to_relu = false;
};

struct EqualizedPair {
  std::string first, second;                // node labels, e.g. "Conv 'conv_dw_1'"
  std::string first_weight, second_weight;  // initializer names after the pass
  std::string activation;                   // "none", "Relu", "Clip", "Relu+Min"
  // Cumulative per-channel scale S_i: W1[i] and b1[i] were divided by it, W2[:, i] multiplied.
  std::vector<double> scale;
};

struct EqualizeReport {
  int pairs = 0;
  int iterations = 0;       // sweeps over all pairs
  double final_change = 0;  // max |s_i - 1| of the last sweep (converged when < tolerance)
  std::vector<EqualizedPair> pair_list;
};

// Equalizes every pair found in `g` in place. Run it on a graph whose BatchNormalization has been
// folded (fold_batch_norm): a BatchNormalization between two layers hides the pair. A graph
// without pairs is left unchanged (pairs = 0).
EqualizeReport equalize_cross_layer(Graph& g, const EqualizeOptions& opt = {});

}  // namespace lowbit
