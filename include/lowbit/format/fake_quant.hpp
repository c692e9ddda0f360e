#pragma once
// Fake quantization (quantize-dequantize) of float32 tensors in any format: the fast SIMD path
// (AVX-512 / AVX2 / SSE4 / scalar, chosen at run time, 1 or more threads) and the scalar
// reference it must match bit for bit.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/format/format.hpp"

namespace lowbit {

struct FakeQuantOptions {
  std::optional<Rounding> rounding;  // default: the format's own (fixed point: its Q mode; else nearest-even)
  uint32_t seed = 0;                 // stochastic rounding
  int threads = 1;
};

// Quantizes `in` into `out` (same size; may alias). `shape` is needed by block-scaled formats whose
// blocks run along an axis other than the last; empty means a 1-d tensor.
void fake_quant(const Format& f, std::span<const float> in, std::span<float> out,
                std::span<const int64_t> shape = {}, const FakeQuantOptions& opt = {});

// The scalar reference: element by element through ScalarFormat::quantize, the block and BitMoD
// reference functions.
void fake_quant_reference(const Format& f, std::span<const float> in, std::span<float> out,
                          std::span<const int64_t> shape = {}, const FakeQuantOptions& opt = {});

// Name of the SIMD target the fast path runs on (e.g. "AVX3", "AVX2", "SSE4", "EMU128").
std::string simd_target();
// The SIMD targets compiled in and usable on this CPU, best first (e.g. AVX3 AVX2 SSE4 SSSE3 SCALAR).
std::vector<std::string> available_simd_targets();
// Restricts the fast path to `name` and weaker targets (a name from available_simd_targets(), or
// "all" to lift the restriction); for tests and benchmarks of the fallbacks. False when unknown.
bool restrict_simd_target(std::string_view name);

}  // namespace lowbit
