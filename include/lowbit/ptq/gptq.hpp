#pragma once
// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers"): quantizes a layer's weights one input column at a time and spreads each column's
// rounding error over the columns not yet quantized, weighted by the inverse Hessian of the layer's
// reconstruction error on calibration inputs, H = (2/N) sum x x^T.
//
// Works with every scalar format (integers, minifloats, fixed point) through lowbit's Quantizer:
// scales come from the config's observer on the weights before any update ("static groups"), and
// each column is fake-quantized by the Quantizer with its elements' scales, so the result lies on
// exactly the grid that round-to-nearest with the same config would use.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit {

// H = (2/N) sum x x^T over the N input rows seen so far (cols x cols, row-major, double). The sum is
// kept unscaled and accumulated row by row in order, so any split of the same rows into batches
// gives bit for bit the same H as one pass, whatever the thread count. Not for concurrent use.
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t cols, int threads = 1);
  // Adds n rows of cols floats each (row-major).
  void add(const float* rows, int64_t n);
  int64_t cols() const { return cols_; }
  int64_t samples() const { return samples_; }
  // Zero until a row is added.
  const std::vector<double>& hessian() const;

 private:
  int64_t cols_;
  int threads_;
  int64_t samples_ = 0;
  std::vector<double> sum_;      // upper triangle of sum x x^T
  mutable std::vector<double> hessian_;  // (2 / samples) * sum, both triangles, made on demand
  mutable bool stale_ = false;
};

// The input rows of a layer, from its real input activation x (plain layout, float32).
// Conv (group 1, 2-D): the im2col rows, one per output position, of IC*kh*kw values in the
// weight's [IC, kh, kw] order, zero where the window lies in the padding. w_shape = [OC, IC, kh, kw].
// Throws std::invalid_argument for grouped / depthwise convolutions and shapes that do not match.
void add_conv_input(HessianAccumulator& h, const Node& conv, const Tensor& x, const Shape& w_shape);
// Grouped Conv (depthwise included): group g's rows, from its input channels only, go to per_group[g]
// (one accumulator of IC/G*kh*kw columns per group; w_shape = [OC, IC/G, kh, kw]).
void add_grouped_conv_input(std::vector<HessianAccumulator>& per_group, const Node& conv, const Tensor& x, const Shape& w_shape);
// The same rows for every image of x: [N * OH * OW, IC * kh * kw], row-major.
std::vector<float> conv_input_rows(const Node& conv, const Tensor& x, const Shape& w_shape);
// Gemm: the rows of A ([M, K], or its columns when transA = 1).
void add_gemm_input(HessianAccumulator& h, const Node& gemm, const Tensor& a);
// MatMul: x [..., K] flattened to [n, K].
void add_matmul_input(HessianAccumulator& h, const Tensor& x);
// Dispatches on the layer's operator (Conv, Gemm, MatMul) to the three above.
void add_layer_input(HessianAccumulator& h, const Node& layer, const Tensor& x, const Shape& w_shape);

struct GptqOptions {
  double damp = 0.01;    // added to H's diagonal: damp * mean(diag H)
  int block_size = 128;  // columns per lazy batch update
  bool act_order = true; // quantize columns in order of descending H_ii
};

struct GptqResult {
  std::vector<float> weights;  // fake-quantized, same layout as the input
  QuantParams params;          // the scales (and zero points) the weights lie on, for the config given
  int64_t dead_columns = 0;    // columns with H_ii == 0 (inputs always zero): set to 0
};

// GPTQ of w = [rows = output channels, cols = input features], row-major (a Conv weight
// [OC, IC, kh, kw] is exactly that with cols = IC*kh*kw). `hessian` is cols x cols (row-major).
// cfg: a scalar format at any granularity; its axes refer to `weight_shape`, the shape of the
// tensor whose memory w is (empty: {rows, cols}), so that a Conv weight gets the very slices
// round-to-nearest gives it (e.g. Group along axis 1 = input channels of one kernel position).
// Scales are computed by cfg's observer from w with dead columns zeroed, before any update.
// Throws std::invalid_argument on sizes that do not match, non-finite weights or Hessian, a block
// or BitMoD format, bad options; std::runtime_error when the damped Hessian is not positive definite.
GptqResult gptq_quantize(std::span<const float> w, int64_t rows, int64_t cols, const std::vector<double>& hessian,
                         const QuantizerConfig& cfg, const GptqOptions& opt = {}, std::span<const int64_t> weight_shape = {});

// The same for a layer's weight tensor as the graph holds it, with cfg as for round-to-nearest of that
// tensor (axes in its layout): Conv [OC, IC, kh, kw] and Gemm with transB = 1 as they are; Gemm with
// transB = 0 and MatMul ([K, N], 2-D only) through their transpose. Returns weights in w's layout.
GptqResult gptq_quantize_layer(const Node& layer, const Tensor& w, const std::vector<double>& hessian,
                               const QuantizerConfig& cfg, const GptqOptions& opt = {});

// GPTQ of a grouped Conv weight [OC, IC/G, kh, kw]: each group's output channels with its own
// Hessian (hessians[g], as add_grouped_conv_input makes them). cfg must be per output channel
// (axis 0): the groups then get exactly the scales round-to-nearest gives them.
GptqResult gptq_quantize_grouped_conv(const Node& conv, const Tensor& w, const std::vector<std::vector<double>>& hessians,
                                      const QuantizerConfig& cfg, const GptqOptions& opt = {});

// trace((W - Wq) H (W - Wq)^T): the squared output error on the calibration inputs (times 2/N).
double layer_output_error(std::span<const float> w, std::span<const float> wq, int64_t rows, int64_t cols,
                          const std::vector<double>& hessian);

}  // namespace lowbit
