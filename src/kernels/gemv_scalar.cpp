// Portable kernels: the same arithmetic as the SIMD ones (exact int32 dot per block, then the block
// scale), for CPUs without AVX2 and as the "scalar" choice of force_kernel_isa().
#include <type_traits>

#include "lowbit/kernels/blocks.hpp"
#include "src/kernels/block_codes.hpp"
#include "src/kernels/kernel_set.hpp"

namespace lowbit::kernels::detail {
namespace {

void f32_rows(const KernelArgs& a) {
  const int64_t K = a.in.padded_cols;
  for (int64_t r = a.row_begin; r < a.row_end; ++r) {
    const float* w = a.w.row<float>(r);
    for (int b = 0; b < a.in.batch; ++b) {
      const float* x = a.in.floats(b);
      float sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += w[k] * x[k];
      a.y[b * a.ldy + r] = sum;
    }
  }
}

// The integer a dot-product kernel multiplies element i of a block by: the value itself, or for
// E2M1 blocks (run on int8 activations: Mxfp4A8, Nvfp4A8) 2 x the value; output_scale() takes the
// 1/2 back, with NVFP4's tensor scale.
template <class Block>
int integer_value(const Block& b, int i) {
  return code(b, i);
}
inline int integer_value(const BlockMxfp4x4& b, int i) { return kE2m1Twice[code(b, i)]; }
inline int integer_value(const BlockNvfp4x8& b, int i) { return kE2m1Twice[code(b, i)]; }
struct E2m1Tag {  // output_scale()'s switch to the E2M1 factor
  static constexpr bool kTensorScale = true;
};

// Exact int32 dot per block, times the block scale, in float.
template <class Block>
void integer_rows(const KernelArgs& a) {
  constexpr bool e2m1 = std::is_same_v<Block, BlockMxfp4x4> || std::is_same_v<Block, BlockNvfp4x8>;
  constexpr int n = kScaleElements<Block>;
  const int64_t structs = a.in.padded_cols / Block::kElements;
  for (int64_t r = a.row_begin; r < a.row_end; ++r) {
    const Block* row = a.w.row<Block>(r);
    for (int b = 0; b < a.in.batch; ++b) {
      float sum = 0;
      for (int64_t j = 0; j < structs; ++j) {
        const int8_t* x = a.in.ints(b) + j * Block::kElements;
        for (int i0 = 0; i0 < Block::kElements; i0 += n) {
          int32_t dot = 0;
          for (int i = i0; i < i0 + n; ++i) dot += integer_value(row[j], i) * x[activation_position<Block>(i)];
          sum += block_scale(row[j], i0) * static_cast<float>(dot);
        }
      }
      a.y[b * a.ldy + r] = sum * (e2m1 ? output_scale<E2m1Tag>(a, b) : a.in.x_scale[b]);
    }
  }
}

// T-MAC style: each row's 4-bit index per (4 columns, bit plane) picks a precomputed subset sum.
void int2lut_rows(const KernelArgs& a) {
  constexpr int kRows = TileInt2Lut::kRows, kGroups = TileInt2Lut::kGroups;
  const int64_t blocks = a.in.padded_cols / TileInt2Lut::kElements;
  for (int64_t t = a.row_begin / kRows; t * kRows < a.row_end; ++t) {
    const TileInt2Lut* tiles = a.w.row<TileInt2Lut>(t);
    for (int b = 0; b < a.in.batch; ++b) {
      float sum[kRows] = {};
      for (int64_t j = 0; j < blocks; ++j) {
        const TileInt2Lut& tile = tiles[j];
        for (int r = 0; r < kRows; ++r) {
          int32_t dot = a.in.block_corrections(b)[j];
          for (int g = 0; g < kGroups; ++g) {
            const uint8_t* table = a.in.tables(b) + (j * kGroups + g) * 64;
            for (int p = 0; p < 2; ++p) {
              const int index = (tile.planes[g][p][r % 32] >> (4 * (r / 32))) & 15;
              dot += static_cast<int16_t>(table[32 * p + index] | table[32 * p + 16 + index] << 8);
            }
          }
          sum[r] += tile.scale[r] * static_cast<float>(dot);
        }
      }
      for (int r = 0; r < kRows && t * kRows + r < a.row_end; ++r) a.y[b * a.ldy + t * kRows + r] = sum[r] * a.in.x_scale[b];
    }
  }
}

template <class Block>
void e2m1_rows(const KernelArgs& a) {
  constexpr int n = kScaleElements<Block>;
  const int64_t structs = a.in.padded_cols / Block::kElements;
  for (int64_t r = a.row_begin; r < a.row_end; ++r) {
    const Block* row = a.w.row<Block>(r);
    for (int b = 0; b < a.in.batch; ++b) {
      float sum = 0;
      for (int64_t j = 0; j < structs; ++j) {
        const float* x = a.in.floats(b) + j * Block::kElements;
        for (int i0 = 0; i0 < Block::kElements; i0 += n) {
          float dot = 0;
          for (int i = i0; i < i0 + n; ++i) dot += kE2m1Values[code(row[j], i)] * x[i];
          sum += dot * block_scale(row[j], i0);
        }
      }
      a.y[b * a.ldy + r] = sum * a.w.tensor_scale();
    }
  }
}

}  // namespace

const KernelSet& scalar_kernels() {
  static const KernelSet set{f32_rows,
                             integer_rows<BlockInt8>,
                             integer_rows<BlockInt4G32x4>,
                             integer_rows<BlockInt4G128>,
                             integer_rows<BlockInt3>,
                             integer_rows<BlockInt2>,
                             int2lut_rows,
                             e2m1_rows<BlockMxfp4x4>,
                             e2m1_rows<BlockNvfp4x8>,
                             integer_rows<BlockMxfp4x4>,
                             integer_rows<BlockNvfp4x8>};
  return set;
}

}  // namespace lowbit::kernels::detail
