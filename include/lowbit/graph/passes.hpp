#pragma once
// Graph rewrites that keep the float function (up to float32 rounding).
#include "lowbit/graph/graph.hpp"

namespace lowbit {

// Folds every inference-mode BatchNormalization that follows a Conv with constant weights (and is
// that Conv's only reader) into the Conv's weights and bias. Returns the number folded.
int fold_batch_norm(Graph& g);

// Fuses a Relu, or a Clip with constant bounds, into the Conv / Gemm / MatMul before it (the
// executor's oneDNN kernels apply it as a post-op). For execution only: the fused graph carries
// lowbit attributes that ONNX does not know. Returns the number fused.
int fuse_activations(Graph& g);

}  // namespace lowbit
