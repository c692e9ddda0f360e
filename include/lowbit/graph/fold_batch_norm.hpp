#pragma once
// BatchNormalization folding: an inference-mode BatchNormalization that is the only reader of a Conv
// or Gemm with constant float weights becomes part of that layer,
//   y = a (W x + b - mean) + beta,  a = gamma / sqrt(var + eps)  ->  W' = a W,  b' = a (b - mean) + beta,
// per output channel (Conv: axis 0 of W; Gemm: the output column, W's row for transB = 1, its
// column for transB = 0; Gemm's alpha stays, beta * C folds into the new bias). A Gemm bias C must
// be constant and hold one value per output column, or one value, or be absent.
#include "lowbit/graph/graph.hpp"

namespace lowbit {

// Folds every foldable BatchNormalization; returns the number folded. The graph keeps its float
// function up to float32 rounding; initializers nobody reads any more are dropped.
int fold_batch_norm(Graph& g);

}  // namespace lowbit
