#pragma once
// What every instruction set's kernels see: the packed weights, activations prepared once per call
// (shared by all rows and threads), and a range of rows to compute.
#include <cstdint>
#include <vector>

#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::kernels::detail {

inline constexpr int kMaxBatch = 8;

// Activations of up to kMaxBatch vectors, each padded with zeros to the matrix's padded_cols.
struct PreparedInput {
  int batch = 0;
  int64_t padded_cols = 0;
  // Float formats: batch x padded_cols.
  std::vector<float> xf;
  // Integer formats: q = round(x / x_scale) in -127..127, batch x padded_cols; Int4G32, Mxfp4A8 and
  // Nvfp4A8 have each 128 columns in their codes' order (activation_position in block_codes.hpp).
  std::vector<int8_t> xq;
  std::vector<float> x_scale;
  // Dot-product kernels read weights as unsigned codes u = q + offset (E2M1 formats: q = 2 x the
  // E2M1 value, an integer in -12..12, offset 12); this is
  // -offset * (sum of each 4 consecutive xq), batch x padded_cols / 4: one int32 lane of vpdpbusd.
  std::vector<int32_t> quad_correction;
  // Int2Lut: per 4 consecutive xq, the 16 subset sums t[i] = sum of xq[4 g + j] over the bits j of i
  // as int16 split in bytes: 16 low bytes, 16 high bytes, then the same for 2 t (the weight of bit
  // plane 1): batch x padded_cols / 4 x 64 bytes. Per 32 columns, -2 * (sum of xq)
  // (batch x padded_cols / 32).
  std::vector<uint8_t> lut;
  std::vector<int32_t> block_correction;

  const float* floats(int b) const { return xf.data() + b * padded_cols; }
  const int8_t* ints(int b) const { return xq.data() + b * padded_cols; }
  const int32_t* quads(int b) const { return quad_correction.data() + b * (padded_cols / 4); }
  const uint8_t* tables(int b) const { return lut.data() + b * (padded_cols / 4) * 64; }
  const int32_t* block_corrections(int b) const { return block_correction.data() + b * (padded_cols / 32); }
};

// x: batch x w.cols() (batch <= kMaxBatch).
void prepare_input(const PackedMatrix& w, const float* x, int batch, PreparedInput& in);

struct KernelArgs {
  const PackedMatrix& w;
  const PreparedInput& in;
  float* y;      // y[b * ldy + row]
  int64_t ldy;
  int64_t row_begin, row_end;  // Int2Lut: row_begin is a multiple of 64
};
using Kernel = void (*)(const KernelArgs&);

// The factor of a dot-product kernel's row result besides the activation scale: 1/2 for the E2M1
// decoders (kTensorScale), whose integers are twice the values, times NVFP4's tensor scale (1 for
// MXFP4).
template <class Decoder>
float output_scale(const KernelArgs& a, int b) {
  if constexpr (requires { Decoder::kTensorScale; }) return a.in.x_scale[b] * (0.5f * a.w.tensor_scale());
  return a.in.x_scale[b];
}

struct KernelSet {
  Kernel f32, int8, int4g32, int4g128, int3, int2, int2lut, mxfp4, nvfp4, mxfp4a8, nvfp4a8;
  Kernel get(StorageFormat f) const;
};

const KernelSet& scalar_kernels();
const KernelSet& avx2_kernels();
const KernelSet& avx512_kernels();

}  // namespace lowbit::kernels::detail
