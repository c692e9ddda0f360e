#pragma once
// AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"):
// learns, for every weight of a layer, whether to round it down or up on the quantization grid so
// that the layer's output on calibration inputs stays close to the float output.
//
// Works with every scalar format (integers, minifloats, fixed point) at any granularity the
// Quantizer supports on a [rows, cols] weight (tensor, channel along axis 0, group along axis 1).
// The scales come from the Quantizer's observer on the original weights; each weight's two
// neighbours on the scaled grid are its fake quantization with Rounding::Down (lo) and
// Rounding::Up (hi). The soft weight is W(V) = lo + h(V) (hi - lo) with the rectified sigmoid
// h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1, started at the
// weight's fractional position between lo and hi. The loss is
//   mean over rows x of ||x W(V)^T - x W^T||^2  +  reg_weight * sum (1 - |2 h(V) - 1|^beta)
// (the regularizer over the weights that have two distinct neighbours, off during the warm-up,
// beta annealed linearly from beta_start to beta_end after it), minimized by Adam on V, with the
// exact gradient over all rows of x or over random mini-batches of them. At the end every weight
// becomes hi where h(V) >= 0.5, else lo.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit {

struct AdaRoundOptions {
  int iterations = 2000;
  // Rows of x per Adam step, drawn at random without replacement. 0, or at least n: every row in
  // every step, the exact gradient of the mean over all rows; it then costs cols^2 multiply-adds per
  // weight and step (through x^T x) or 2 n if that is less, against 2 batch_rows with mini-batches.
  // On MobileNet's pointwise convs (6,272-8,192 rows of x) the exact gradient reached a lower
  // output error than 1024-row mini-batches in 0.3-0.45 of the time.
  int batch_rows = 0;
  float learning_rate = 1e-2f;
  float reg_weight = 0.01f;
  float beta_start = 20, beta_end = 2;
  float warmup = 0.2f;  // fraction of the iterations without the regularizer
  uint32_t seed = 0;
  int threads = 1;  // results do not depend on it
};

// w: the layer weight [rows = output channels, cols = input features], row-major (a Conv weight
// [OC, IC, kh, kw] is that memory with cols = IC * kh * kw; a Gemm weight stored [K, N] must be
// transposed first). x: n calibration input rows of cols values each (for a Conv, rows of
// conv_im2col). cfg: a scalar format; its granularity applies to the shape [rows, cols].
// Returns the fake-quantized weights, each the lo or the hi of rounding_grid.
// Throws std::invalid_argument on mismatched sizes, non-finite values, a block-scaled or BitMoD
// format, or invalid options.
std::vector<float> adaround_quantize(std::span<const float> w, int64_t rows, int64_t cols, std::span<const float> x,
                                     int64_t n, const QuantizerConfig& cfg, const AdaRoundOptions& opt = {});

// The same with the weight's own shape (rows = shape[0], cols = the product of the others), to
// which cfg's granularity applies: a Conv weight [OC, IC, kh, kw] with Group along axis 1 groups
// input channels at each kernel position, as the round-to-nearest pipeline does, where the
// [rows, cols] form would group consecutive elements of IC * kh * kw.
std::vector<float> adaround_quantize(std::span<const float> w, std::span<const int64_t> shape, std::span<const float> x,
                                     int64_t n, const QuantizerConfig& cfg, const AdaRoundOptions& opt = {});

// The grid AdaRound chooses on: for each weight, its two neighbours lo <= w <= hi (equal when w is
// on the grid or outside the range; the inequalities hold up to the float32 rounding of w / scale
// and q * scale) and the round-to-nearest result (cfg's own rounding), all with the scales the
// Quantizer's observer gives w of this shape. Where rounding up or down leaves the format's range
// (a wrapping fixed-point overflow, an infinity without saturation), lo = hi = nearest.
struct RoundingGrid {
  std::vector<float> lo, hi, nearest;
};
RoundingGrid rounding_grid(std::span<const float> w, std::span<const int64_t> shape, const QuantizerConfig& cfg);

// Mean over the n rows of x of ||x (wq - w)^T||^2: the squared error of the layer output summed
// over output channels, averaged over inputs (the products in float32, the sums in double).
double output_mse(std::span<const float> w, std::span<const float> wq, int64_t rows, int64_t cols,
                  std::span<const float> x, int64_t n);

// Rows of the im2col matrix of a Conv (groups = 1) on x (plain NCHW, any number of spatial
// dimensions): for up to max_rows output positions (all when there are no more, in order; else a
// random sample without repetition, seeded, in order), the cols = C * prod(kernel) input values
// that position reads, in the order of the weight's [C, kernel...] dimensions, zeros in the pads.
// Throws std::invalid_argument for groups > 1 or a channels-last or non-float tensor.
std::vector<float> conv_im2col(const Node& conv, const Tensor& x, const Shape& w_shape, int64_t max_rows, uint32_t seed);

namespace adaround_detail {

// The gradient of the loss with respect to V on the fixed rows xb (b rows of cols values) with the
// regularizer at this beta (reg_weight 0: off), exactly as the optimizer computes it, through the
// rows themselves or (gram) through xb^T xb; for tests. lo, hi: from rounding_grid. Returns dL/dV
// (zero where lo == hi).
std::vector<float> gradient(std::span<const float> w, std::span<const float> lo, std::span<const float> hi,
                            std::span<const float> v, int64_t rows, int64_t cols, std::span<const float> xb, int64_t b,
                            float beta, float reg_weight, bool gram, int threads = 1);

// The V at which h(V) equals frac in (0, 1).
float initial_v(float frac);

}  // namespace adaround_detail

}  // namespace lowbit
