#pragma once
// A quantizer = format + scale rule + granularity + rounding + calibration observer.
// Scalar formats get a scale (and, for asymmetric integers, a zero point) per slice of the tensor;
// block-scaled and BitMoD formats carry their own scales and are applied as they are.
//
// Semantics (as ONNX QuantizeLinear / DequantizeLinear):
//   v = fl32(x / scale);  q = clamp(round(v) + zero_point)  [integers]  or  q = format.quantize(v)
//   y = fl32((q - zero_point) * scale)
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format/format.hpp"

namespace lowbit {

enum class Granularity : uint8_t { Tensor, Channel, Group, Token };
// Entropy: the clipping threshold whose quantized histogram is nearest the float one in
// Kullback-Leibler divergence (TensorRT's calibration, on the format's own grid).
enum class ObserverKind : uint8_t { MinMax, Percentile, Mse, Running, Entropy };
// Where the scale is stored: float32, any power of two, OCP E8M0, or E4M3 (as NVFP4's block scales).
enum class ScaleStorage : uint8_t { Fp32, Pow2, E8M0, E4M3 };

std::optional<Granularity> parse_granularity(std::string_view s);
std::optional<ObserverKind> parse_observer(std::string_view s);
std::optional<ScaleStorage> parse_scale_storage(std::string_view s);
std::string_view to_string(Granularity g);
std::string_view to_string(ObserverKind o);
std::string_view to_string(ScaleStorage s);

struct QuantizerConfig {
  explicit QuantizerConfig(Format f) : format(std::move(f)) {}
  Format format;
  Granularity granularity = Granularity::Tensor;
  int axis = 0;           // Channel: the channel axis; Group: the axis groups run along
  int group_size = 128;
  bool symmetric = true;  // false: zero point (integer formats only)
  ScaleStorage scale_storage = ScaleStorage::Fp32;
  ScaleRule scale_rounding = ScaleRule::Nearest;  // how the ideal scale is rounded into its storage
  ObserverKind observer = ObserverKind::MinMax;
  double percentile = 99.99;  // Percentile: of |x| (symmetric) or of each tail (asymmetric)
  double momentum = 0.9;      // Running: exponential moving average of per-call min and max
  std::optional<Rounding> rounding;
  // For a symmetric signed format: when every calibration value is >= 0, quantize with the
  // unsigned format of the same width instead (the sign bit becomes a mantissa / value bit), as
  // an asymmetric integer grid spends all its codes on [0, max]. Applied by quantize_graph.
  bool unsigned_if_nonnegative = false;
  uint32_t seed = 0;
  int threads = 1;
};

struct QuantParams {
  std::vector<float> scale;       // one per slice
  std::vector<float> zero_point;  // one per slice (integers, asymmetric); empty when symmetric
};

class Quantizer {
 public:
  explicit Quantizer(QuantizerConfig c);  // validates; throws std::invalid_argument
  const QuantizerConfig& config() const { return c_; }

  // Accumulates calibration statistics. Every call must use the same shape (any shape for per-tensor).
  void observe(std::span<const float> x, std::span<const int64_t> shape);
  // Whether calibration has seen values and none was negative.
  bool observed_nonnegative() const;
  // Changes the format, keeping the statistics (they do not depend on it); validates as the constructor.
  void set_format(Format f);
  // Scales (and zero points) from the statistics so far.
  QuantParams compute_params() const;
  void set_params(QuantParams p) { params_ = std::move(p); }
  const std::optional<QuantParams>& params() const { return params_; }

  // Quantize-dequantize with the set parameters, or those computed from the statistics.
  void fake_quant(std::span<const float> in, std::span<float> out, std::span<const int64_t> shape) const;

  // Integer formats: the quantized integers, q = clamp(round(fl32(x / scale)) + zero_point)
  // (ONNX QuantizeLinear), and back, y = fl32((q - zero_point) * scale) (DequantizeLinear).
  void quantize_to_integers(std::span<const float> in, std::span<int32_t> q, std::span<const int64_t> shape) const;
  void dequantize_integers(std::span<const int32_t> q, std::span<float> out, std::span<const int64_t> shape) const;

  // Number of slices (scales) for a tensor of this shape.
  size_t slice_count(std::span<const int64_t> shape, size_t size) const;

 private:
  struct SliceStats {
    double min = 0, max = 0;
    bool seen = false;
    std::vector<float> samples;  // Percentile / Mse: the values, decimated evenly beyond a cap
    size_t stride = 1, counter = 0;
  };
  QuantParams params_from_stats() const;
  double mse_threshold(const SliceStats& s, double amax) const;
  double entropy_threshold(const SliceStats& s, double amax) const;
  float scale_for(double range, double grid_span) const;

  QuantizerConfig c_;
  std::vector<SliceStats> stats_;
  std::vector<int64_t> shape_;
  std::optional<QuantParams> params_;
};

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - y)^2).
double sqnr_db(std::span<const float> x, std::span<const float> y);

}  // namespace lowbit
