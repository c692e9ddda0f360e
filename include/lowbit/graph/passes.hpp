#pragma once
// Graph rewrites that keep the float function (up to float32 rounding).
#include "lowbit/graph/fold_batch_norm.hpp"
#include "lowbit/graph/graph.hpp"

namespace lowbit {

// Fuses a Relu, or a Clip with constant bounds, into the Conv / Gemm / MatMul before it (the
// executor's oneDNN kernels apply it as a post-op). For execution only: the fused graph carries
// lowbit attributes that ONNX does not know. Returns the number fused.
int fuse_activations(Graph& g);

}  // namespace lowbit
