#pragma once
// Scalar access to the codes of one block, and the inverse used by pack(): the single definition of
// each block's element layout (blocks.hpp describes it in words).
#include <cstdint>
#include <cstring>

#include "lowbit/kernels/blocks.hpp"

namespace lowbit::kernels::detail {

inline int code(const BlockInt8& b, int i) { return b.q[i]; }
inline int code(const BlockInt4G128& b, int i) {
  const int half = i / 64, j = i % 64;
  return ((b.codes[32 * half + j % 32] >> (4 * (j / 32))) & 15) - 8;
}
inline int code(const BlockInt3& b, int i) {
  const int low = (b.low_bits[i % 8] >> (2 * (i / 8))) & 3;
  const int high = (b.high_bits[i / 8] >> (i % 8)) & 1;
  return (low | high << 2) - 4;
}
inline int code(const BlockInt2& b, int i) { return ((b.codes[i % 8] >> (2 * (i / 8))) & 3) - 2; }
// Structs of several 4-bit blocks (blocks.hpp: BlockInt4G32x4 and the E2M1 ones): element i = n k + j
// is code j of block k, in nibble nibble_shift(i) / 4 of byte nibble_byte(i).
template <class Block>
concept SeveralBlocks = requires { Block::kBlockElements; };
template <SeveralBlocks Block>
constexpr int nibble_byte(int i) {
  constexpr int half = Block::kBlockElements / 2;
  return half * (i / Block::kBlockElements) + i % half;
}
template <SeveralBlocks Block>
constexpr int nibble_shift(int i) {
  constexpr int half = Block::kBlockElements / 2;
  return 4 * (i % Block::kBlockElements / half);
}
template <SeveralBlocks Block>
int nibble(const Block& b, int i) {
  return (b.codes[nibble_byte<Block>(i)] >> nibble_shift<Block>(i)) & 15;
}
inline int code(const BlockInt4G32x4& b, int i) { return nibble(b, i) - 8; }
inline int code(const BlockMxfp4x4& b, int i) { return nibble(b, i); }
inline int code(const BlockNvfp4x8& b, int i) { return nibble(b, i); }
// Row r (0..63) of a tile, column i (0..31): the int2 value.
inline int code(const TileInt2Lut& t, int r, int i) {
  int u = 0;
  for (int p = 0; p < 2; ++p) {
    const int index = (t.planes[i / 4][p][r % 32] >> (4 * (r / 32))) & 15;
    u |= ((index >> (i % 4)) & 1) << p;
  }
  return u - 2;
}

// Stores value q (integer formats) or code c (E2M1) at element i of a zero-initialized block.
inline void set_code(BlockInt8& b, int i, int q) { b.q[i] = static_cast<int8_t>(q); }
inline void set_code(BlockInt4G128& b, int i, int q) {
  const int half = i / 64, j = i % 64;
  b.codes[32 * half + j % 32] |= static_cast<uint8_t>((q + 8) << (4 * (j / 32)));
}
inline void set_code(BlockInt3& b, int i, int q) {
  const int u = q + 4;
  b.low_bits[i % 8] |= static_cast<uint8_t>((u & 3) << (2 * (i / 8)));
  b.high_bits[i / 8] |= static_cast<uint8_t>((u >> 2) << (i % 8));
}
inline void set_code(BlockInt2& b, int i, int q) { b.codes[i % 8] |= static_cast<uint8_t>((q + 2) << (2 * (i / 8))); }
template <SeveralBlocks Block>
void set_nibble(Block& b, int i, int c) {
  b.codes[nibble_byte<Block>(i)] |= static_cast<uint8_t>(c << nibble_shift<Block>(i));
}
inline void set_code(BlockInt4G32x4& b, int i, int q) { set_nibble(b, i, q + 8); }
inline void set_code(BlockMxfp4x4& b, int i, int c) { set_nibble(b, i, c); }
inline void set_code(BlockNvfp4x8& b, int i, int c) { set_nibble(b, i, c); }
inline void set_code(TileInt2Lut& t, int r, int i, int q) {
  const int u = q + 2;
  for (int p = 0; p < 2; ++p)
    t.planes[i / 4][p][r % 32] |= static_cast<uint8_t>(((u >> p) & 1) << (i % 4 + 4 * (r / 32)));
}

inline float block_scale(const BlockInt8& b) { return b.scale; }
inline float block_scale(const BlockInt4G128& b) { return b.scale; }
inline float block_scale(const BlockInt3& b) { return b.scale; }
inline float block_scale(const BlockInt2& b) { return b.scale; }

// The block scales of the float formats as float32: E8M0 (code 255 is NaN) and E4M3 (fn).
const float* e8m0_values();  // 256 entries
const float* e4m3_values();  // 256 entries

// E2M1 code -> 2 x its value, an integer: the weights of the int8-activation kernels (Mxfp4A8,
// Nvfp4A8), which multiply their results by 1/2 at the end.
inline constexpr int8_t kE2m1Twice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
// The same plus 12, in 0..24: the unsigned codes of the dot-product kernels (vpshufb table).
alignas(16) inline constexpr uint8_t kE2m1TwicePlus12[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};
static_assert([] {
  for (int i = 0; i < 16; ++i)
    if (kE2m1TwicePlus12[i] != kE2m1Twice[i] + 12) return false;
  return true;
}());

// Weights per scale: a struct's elements, except where it holds several blocks.
template <class Block>
inline constexpr int kScaleElements = Block::kElements;
template <SeveralBlocks Block>
inline constexpr int kScaleElements<Block> = Block::kBlockElements;

// The scale of element i of a struct, and setting the scale (integer formats) or scale code (E2M1
// formats) of element i's block.
template <class Block>
float block_scale(const Block& b, int /*i*/) {
  return block_scale(b);
}
inline float block_scale(const BlockInt4G32x4& b, int i) { return b.scale[i / BlockInt4G32x4::kBlockElements]; }
template <class Block>
void set_scale(Block& b, int /*i*/, float s) {
  b.scale = s;
}
inline void set_scale(BlockInt4G32x4& b, int i, float s) { b.scale[i / BlockInt4G32x4::kBlockElements] = s; }
inline float block_scale(const BlockMxfp4x4& b, int i) { return e8m0_values()[b.scale_e8m0[i / BlockMxfp4x4::kBlockElements]]; }
inline float block_scale(const BlockNvfp4x8& b, int i) { return e4m3_values()[b.scale_e4m3[i / BlockNvfp4x8::kBlockElements]]; }
inline void set_scale_code(BlockMxfp4x4& b, int i, int c) {
  b.scale_e8m0[i / BlockMxfp4x4::kBlockElements] = static_cast<uint8_t>(c);
}
inline void set_scale_code(BlockNvfp4x8& b, int i, int c) {
  b.scale_e4m3[i / BlockNvfp4x8::kBlockElements] = static_cast<uint8_t>(c);
}

// Where the int8-activation kernels find element i's activation among its struct's columns: structs
// of several blocks take them in code order (blocks.hpp), every other format in natural order.
template <class Block>
constexpr int activation_position(int i) {
  if constexpr (SeveralBlocks<Block>)
    return 64 * (nibble_shift<Block>(i) / 4) + nibble_byte<Block>(i);
  else
    return i;
}

}  // namespace lowbit::kernels::detail
