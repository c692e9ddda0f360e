#pragma once
// Packed low-bit weight blocks: plain structs, one per group of consecutive weights of a row
// (ggml style), with their sizes asserted. A packed row is an array of blocks; rows follow each other.
//
// Integer codes are stored as unsigned offset-binary values u = q + 2^(bits-1) where that makes
// the unpacking cheap (4, 3 and 2 bits), so a code's value is q = u - 2^(bits-1). int8 keeps q as
// it is. Within a block, element order is chosen so that SIMD unpacking lands the elements in their
// natural order (see each struct).
#include <cstddef>
#include <cstdint>

namespace lowbit::kernels {

// 32 int8 weights with a float32 scale: w[i] = scale * q[i].
struct BlockInt8 {
  static constexpr int kElements = 32;
  float scale;
  int8_t q[32];
};
static_assert(sizeof(BlockInt8) == 36);

// int4 with a float32 scale per 32 weights, stored 4 blocks (128 weights) at a time, the codes
// before the scales as the E2M1 structs below lay them out: byte 16 k + j holds element j of block k
// (low nibble) and element j + 16 (high nibble), each as u = q + 8; scale[k] is block k's scale.
struct BlockInt4G32x4 {
  static constexpr int kElements = 128;
  static constexpr int kBlockElements = 32;  // weights per scale
  uint8_t codes[64];
  float scale[4];
};
static_assert(sizeof(BlockInt4G32x4) == 80);

// 128 int4 weights with one scale: byte 32 h + j (h = 0, 1) holds element 64 h + j (low nibble) and
// element 64 h + 32 + j (high nibble), each as u = q + 8.
struct BlockInt4G128 {
  static constexpr int kElements = 128;
  float scale;
  uint8_t codes[64];
};
static_assert(sizeof(BlockInt4G128) == 68);

// 32 int3 weights as u = q + 4 in 0..7: the two low bits of element j + 8 s sit at bits 2 s..2 s + 1
// of low_bits[j] (s = 0..3); bit i of the little-endian 32-bit word high_bits is bit 2 of element i.
struct BlockInt3 {
  static constexpr int kElements = 32;
  float scale;
  uint8_t low_bits[8];
  uint8_t high_bits[4];
};
static_assert(sizeof(BlockInt3) == 16);

// 32 int2 weights as u = q + 2 in 0..3: element j + 8 s sits at bits 2 s..2 s + 1 of codes[j].
struct BlockInt2 {
  static constexpr int kElements = 32;
  float scale;
  uint8_t codes[8];
};
static_assert(sizeof(BlockInt2) == 12);

// The E2M1 formats (and int4 g32 above) store 128 weights per struct, their blocks' codes before
// their scales: with blocks of n codes, byte n/2 k + j holds code j of block k (low nibble) and code
// j + n/2 (high nibble). One shift and one mask then split the 64 code bytes into 128 codes, and one
// load fetches the scales. The int8-activation kernels take each 128 columns' activations in the
// order of the codes (the low nibbles of bytes 0..63, then the high nibbles), so every group of 4
// bytes they multiply belongs to one block.

// OCP MXFP4: blocks of 32 E2M1 codes, each with one E8M0 scale 2^(scale_e8m0[k] - 127).
struct BlockMxfp4x4 {
  static constexpr int kElements = 128;
  static constexpr int kBlockElements = 32;  // weights per scale
  uint8_t codes[64];
  uint8_t scale_e8m0[4];
};
static_assert(sizeof(BlockMxfp4x4) == 68);

// NVFP4: blocks of 16 E2M1 codes, each with one E4M3 (fn) scale; the matrix has a float32 tensor
// scale on top: w = e2m1 * (e4m3 * tensor_scale).
struct BlockNvfp4x8 {
  static constexpr int kElements = 128;
  static constexpr int kBlockElements = 16;  // weights per scale
  uint8_t codes[64];
  uint8_t scale_e4m3[8];
};
static_assert(sizeof(BlockNvfp4x8) == 72);

// int2 weights for the lookup-table (T-MAC style) kernel: a tile of 64 rows x 32 columns, stored as
// bit planes. For column group g (columns 4 g..4 g + 3) and plane p, byte j of planes[g][p] holds
// the 4-bit index of row j (low nibble) and of row j + 32 (high nibble); bit i of a row's index is
// bit p of u = q + 2 at column 4 g + i. One float32 scale per row and 32 columns.
struct TileInt2Lut {
  static constexpr int kRows = 64;
  static constexpr int kElements = 32;  // columns
  static constexpr int kGroups = kElements / 4;
  float scale[kRows];
  uint8_t planes[kGroups][2][kRows / 2];
};
static_assert(sizeof(TileInt2Lut) == 64 * 4 + 8 * 2 * 32);

// E2M1 (float4_e2m1fn) code -> value, code = sign << 3 | exponent << 1 | mantissa.
inline constexpr float kE2m1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

}  // namespace lowbit::kernels
