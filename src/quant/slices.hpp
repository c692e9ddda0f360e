#pragma once
// How a granularity cuts a tensor into slices that share one scale: contiguous runs of elements,
// each with its slice index.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/quant/quantizer.hpp"

namespace lowbit::detail {

struct Run {
  size_t begin = 0, length = 0, slice = 0;
};

struct SliceLayout {
  std::vector<Run> runs;
  size_t slices = 0;
};

// Throws std::invalid_argument on an axis out of range or a shape that does not match `size`.
SliceLayout slice_layout(const QuantizerConfig& c, std::span<const int64_t> shape, size_t size);

}  // namespace lowbit::detail
