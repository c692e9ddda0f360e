#pragma once
// Shape inference with a dynamic batch dimension, by running the graph: every operator kernel
// already computes its output shape, so the graph is executed on zero inputs at two batch sizes and
// every dimension that follows the batch becomes symbolic ("N"), the others fixed. Exact for the
// graphs lowbit runs (no data-dependent shapes); costs two forward passes of a batch of one and two.
#include "lowbit/graph/graph.hpp"

namespace lowbit {

// Fills g.value_info for every computed value and completes g.outputs' types and shapes.
// The first dimension of each graph input is taken as the batch (it must be symbolic, or 1).
void infer_shapes(Graph& g);

}  // namespace lowbit
