#pragma once
// Block-scaled formats: elements of a scalar format sharing one scale per block of consecutive
// elements along an axis (OCP MX, NVFP4, and any element x scale x block size in general).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format/scalar_format.hpp"

namespace lowbit {

// How a block's scale follows from its largest magnitude amax.
//   Floor:   OCP MX rule, 2^(floor(log2 amax) - emax_elem), rounded down into the scale format
//            (emax_elem = exponent of the element format's largest value). Large elements may clip.
//   Ceil:    the smallest scale s with amax / s <= element max: nothing clips.
//   Nearest: the scale nearest to amax / element max (ties to the even code): NVFP4's rule.
enum class ScaleRule : uint8_t { Floor, Ceil, Nearest };

// A scale is a value of a scale format: a scalar format (E8M0, E4M3), float32, or any power of two
// within float32's normal range.
enum class ScaleKind : uint8_t { Format, Float32, Pow2 };

struct ScaleSpec {
  ScaleKind kind = ScaleKind::Format;
  std::optional<ScalarFormat> format;  // set when kind == Format
  std::string to_string() const;
  bool operator==(const ScaleSpec& o) const;
  bool is_power_of_two() const;  // every scale value is a power of two (scaling is exact)
  double max() const;
  // Rounds amax / denom (exactly, no intermediate rounding) into the scale grid by `rule`.
  // Returns 0 when the result falls below the smallest scale of a grid with zero, NaN never.
  double round_ratio(double amax, double denom, ScaleRule rule) const;
  double round_down(double x) const;
};

struct BlockParams {
  ScalarFormat element;
  ScaleSpec scale;
  int block_size = 32;
  int axis = -1;  // blocks run along this axis (negative counts from the end)
  ScaleRule rule = ScaleRule::Floor;
  bool tensor_scale = false;  // a float32 scale for the whole tensor above the block scales (NVFP4)
};

class BlockFormat {
 public:
  explicit BlockFormat(BlockParams p);  // validates, throws FormatError
  const BlockParams& params() const { return p_; }
  const ScalarFormat& element() const { return p_.element; }

  // Storage bits per element, block scale (and tensor scale) amortized over the blocks.
  double bits_per_element() const;
  std::string to_string() const;
  bool operator==(const BlockFormat& o) const;

  // Reference fake quantization of a tensor (row-major, `shape`): every block along the axis
  // gets its scale, its elements are rounded with `r` and scaled back. in == out is allowed.
  void quantize_reference(std::span<const float> in, std::span<float> out, std::span<const int64_t> shape,
                          Rounding r = Rounding::NearestEven, uint32_t seed = 0) const;

  // Scale of one block with largest magnitude `amax` (finite) under tensor scale `tensor`.
  double block_scale(double amax, double tensor) const;
  // The float32 tensor scale used for a tensor whose largest magnitude is `amax`.
  float tensor_scale_for(float amax) const;

 private:
  BlockParams p_;
};

}  // namespace lowbit
