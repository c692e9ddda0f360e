#pragma once
// The block Linear weights of a model (wq wk wv wo w1 w2 w3 of every layer) packed once in one of
// lowbit_kernels' storage formats, for a Decoder that runs its matrix products through the packed
// GEMV / GEMM kernels instead of float32 loops (RuntimeOptions::packed). The token embedding and
// the classifier stay float32.
//
// Packing quantizes by round-to-nearest at the storage format's own granularity (docs/kernels.md):
// the decoder then computes exactly what the fake-quantization emulation with the matching config
// computes (storage_emulation_config), up to float summation order.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/llm/model.hpp"

namespace lowbit::llm {

class PackedLinears {
 public:
  // Throws std::invalid_argument (naming the layer and matrix) when a weight cannot be packed.
  PackedLinears(const LlamaModel& m, kernels::StorageFormat format);

  kernels::StorageFormat format() const { return format_; }
  int layers() const { return static_cast<int>(layers_.size()); }
  const kernels::PackedMatrix& get(int layer, LinearKind kind) const {
    return layers_[static_cast<size_t>(layer)][static_cast<size_t>(kind)];
  }
  // Packed weight bytes over all layers (what one decoded token streams).
  size_t size_bytes() const;

 private:
  kernels::StorageFormat format_;
  std::vector<std::array<kernels::PackedMatrix, 7>> layers_;
};

// The fake-quantization config that emulates a storage format with float32 matrices: the same
// weight format and group, and for the integer formats the kernels' per-token int8 activations
// (`a=int8`: scale amax / 127, round half to even). "f32" gives "" (fp32).
std::string storage_emulation_config(kernels::StorageFormat format);

}  // namespace lowbit::llm
