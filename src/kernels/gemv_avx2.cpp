// AVX2 + FMA kernels, compiled for that target through the pragma below and only called after the
// run-time CPU check in gemv.cpp.
//
// Integer formats, per block of 32: vpmaddubsw multiplies unsigned by signed bytes and adds pairs
// into int16 with saturation. 4-, 3- and 2-bit codes u = q + offset (<= 15) times int8 x stay far
// from saturation, and the -offset * sum(x) start of each int32 lane restores the signed dot. int8
// codes use |q| times x with q's sign (|q| <= 128, |x| <= 127: at most 32512 per pair).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "lowbit/kernels/blocks.hpp"
#include "src/kernels/block_codes.hpp"
#include "src/kernels/kernel_set.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace lowbit::kernels::detail {
namespace {

inline uint64_t load_u64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 int2 code bytes -> 32 bytes u in 0..3, elements in order.
inline __m256i int2_block(const uint8_t* codes) {
  const __m256i spread = _mm256_set1_epi64x(static_cast<long long>(load_u64(codes)));
  return _mm256_and_si256(_mm256_srlv_epi64(spread, _mm256_set_epi64x(6, 4, 2, 0)), _mm256_set1_epi8(3));
}

// Decoders: codes of the 32 elements of chunk c of a row, and the scale of each int32 lane of the
// dot product (lane k: elements 4 k..4 k + 3). kSigned: the codes are q itself (int8), else
// u = q + offset.
struct Int8Decoder {
  using Block = BlockInt8;
  static constexpr bool kSigned = true;
  static __m256i load(const Block* row, int64_t c, __m256& s) {
    s = _mm256_set1_ps(row[c].scale);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[c].q));
  }
};

// Chunk c is quarter t = c % 4 of a struct of 4-bit blocks (blocks.hpp): the low (t < 2) or high
// nibbles of code bytes 32 (t % 2) .. + 31.
inline __m256i nibble_quarter(const uint8_t* codes, int t) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * (t % 2)));
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * (t / 2))), _mm256_set1_epi8(0x0F));
}

// int4 g32 and MXFP4: quarter t holds blocks 2 (t % 2) and + 1, int32 lane l block 2 (t % 2) + l / 4.
struct Int4G32Decoder {
  using Block = BlockInt4G32x4;
  static constexpr bool kSigned = false;
  static __m256i load(const Block* row, int64_t c, __m256& s) {
    const Block& b = row[c / 4];
    const int t = static_cast<int>(c % 4);
    s = _mm256_set_m128(_mm_set1_ps(b.scale[2 * (t % 2) + 1]), _mm_set1_ps(b.scale[2 * (t % 2)]));
    return nibble_quarter(b.codes, t);
  }
};

struct Int4G128Decoder {
  using Block = BlockInt4G128;
  static constexpr bool kSigned = false;
  static __m256i load(const Block* row, int64_t c, __m256& s) {
    const Block& b = row[c / 4];
    s = _mm256_set1_ps(b.scale);
    const int part = static_cast<int>(c % 4);
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.codes + 32 * (part / 2)));
    if (part % 2) v = _mm256_srli_epi16(v, 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
  }
};

struct Int3Decoder {
  using Block = BlockInt3;
  static constexpr bool kSigned = false;
  static __m256i load(const Block* row, int64_t c, __m256& s) {
    s = _mm256_set1_ps(row[c].scale);
    // Bit i of the 32-bit word -> byte i: spread byte i / 8 to byte i, test bit i % 8.
    const __m256i word = _mm256_set1_epi32(static_cast<int>(load_u32(row[c].high_bits)));
    const __m256i spread = _mm256_shuffle_epi8(
        word, _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    return _mm256_or_si256(int2_block(row[c].low_bits), _mm256_and_si256(set, _mm256_set1_epi8(4)));
  }
};

struct Int2Decoder {
  using Block = BlockInt2;
  static constexpr bool kSigned = false;
  static __m256i load(const Block* row, int64_t c, __m256& s) {
    s = _mm256_set1_ps(row[c].scale);
    return int2_block(row[c].codes);
  }
};

// E2M1 codes (low nibble of each byte) -> u = 2 x value + 12 in 0..24: q = u - 12 is 2 x the value.
inline __m256i e2m1_twice_offset(__m256i nibbles) {
  const __m128i table = _mm_load_si128(reinterpret_cast<const __m128i*>(kE2m1TwicePlus12));
  return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), nibbles);
}

struct Mxfp4A8Decoder {
  using Block = BlockMxfp4x4;
  static constexpr bool kSigned = false;
  static constexpr bool kTensorScale = true;
  const float* scales = e8m0_values();
  __m256i load(const Block* row, int64_t c, __m256& s) const {
    const Block& b = row[c / 4];
    const int t = static_cast<int>(c % 4);
    const uint8_t* scale_codes = b.scale_e8m0 + 2 * (t % 2);
    s = _mm256_set_m128(_mm_set1_ps(scales[scale_codes[1]]), _mm_set1_ps(scales[scale_codes[0]]));
    return e2m1_twice_offset(nibble_quarter(b.codes, t));
  }
};

// E4M3 (fn) codes, sign-extended to int32 -> their values: the 7 magnitude bits moved to float's
// exponent and mantissa, times 2^(127 - 7) (exact, subnormals included), the sign from bit 31 of
// the extension, NaN at magnitude 0x7F.
inline __m256 e4m3_decode(__m256i code) {
  const __m256i bits = _mm256_and_si256(_mm256_slli_epi32(code, 20), _mm256_set1_epi32(static_cast<int>(0x87F00000u)));
  const __m256 value = _mm256_mul_ps(_mm256_castsi256_ps(bits), _mm256_set1_ps(0x1p120f));
  const __m256i nan = _mm256_cmpeq_epi32(_mm256_or_si256(code, _mm256_set1_epi32(~0x7F)), _mm256_set1_epi32(-1));
  return _mm256_blendv_ps(value, _mm256_set1_ps(__builtin_nanf("")), _mm256_castsi256_ps(nan));
}

// NVFP4: quarter t holds blocks 4 (t % 2) .. + 3, int32 lane l block 4 (t % 2) + l / 2.
struct Nvfp4A8Decoder {
  using Block = BlockNvfp4x8;
  static constexpr bool kSigned = false;
  static constexpr bool kTensorScale = true;
  __m256i load(const Block* row, int64_t c, __m256& s) const {
    const Block& b = row[c / 4];
    const int t = static_cast<int>(c % 4);
    const __m128i scale_codes = _mm_cvtsi32_si128(static_cast<int>(load_u32(b.scale_e4m3 + 4 * (t % 2))));
    s = e4m3_decode(_mm256_cvtepi8_epi32(_mm_unpacklo_epi8(scale_codes, scale_codes)));
    return e2m1_twice_offset(nibble_quarter(b.codes, t));
  }
};

// Rows r0..r0 + R - 1 for B vectors: R x B independent accumulator chains, x loads shared by the rows.
// Loops over rows and vectors are unrolled completely so that GCC keeps acc in registers.
template <class Decoder, int B, int R>
void integer_row_block(const KernelArgs& a, int64_t r0) {
  const int64_t chunks = a.in.padded_cols / 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const Decoder decoder;
  const typename Decoder::Block* rows[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<typename Decoder::Block>(r0 + i);
  __m256 acc[R][B];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
  for (int64_t c = 0; c < chunks; ++c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      __m256 s;
      const __m256i w = decoder.load(rows[i], c, s);
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.in.ints(b) + 32 * c));
        __m256i dot;
        if constexpr (Decoder::kSigned) {
          dot = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)), ones);
        } else {
          const __m256i start = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.in.quads(b) + 8 * c));
          dot = _mm256_add_epi32(start, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones));
        }
        acc[i][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[i][b]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = hsum(acc[i][b]) * output_scale<Decoder>(a, b);
}

// Enough rows at once that the FMA chains hide their latency where B is small.
template <int B>
constexpr int kRowsAtOnce = B == 1 ? 4 : (B == 2 ? 2 : 1);

template <class Decoder, int B>
void integer_rows(const KernelArgs& a) {
  constexpr int R = kRowsAtOnce<B>;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) integer_row_block<Decoder, B, R>(a, r);
  for (; r < a.row_end; ++r) integer_row_block<Decoder, B, 1>(a, r);
}

template <int B>
void f32_rows(const KernelArgs& a) {
  constexpr int R = B <= 2 ? 4 : 1;
  const int64_t K = a.in.padded_cols;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) {
    __m256 acc[R][B];
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {
      __m256 x[B];
      for (int b = 0; b < B; ++b) x[b] = _mm256_loadu_ps(a.in.floats(b) + k);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const __m256 w = _mm256_load_ps(a.w.row<float>(r + i) + k);
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) acc[i][b] = _mm256_fmadd_ps(w, x[b], acc[i][b]);
      }
    }
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) a.y[b * a.ldy + r + i] = hsum(acc[i][b]);
  }
  for (; r < a.row_end; ++r) {
    __m256 acc[B];
    for (int b = 0; b < B; ++b) acc[b] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {
      const __m256 w = _mm256_load_ps(a.w.row<float>(r) + k);
      for (int b = 0; b < B; ++b) acc[b] = _mm256_fmadd_ps(w, _mm256_loadu_ps(a.in.floats(b) + k), acc[b]);
    }
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r] = hsum(acc[b]);
  }
}

// E2M1 codes in the low 4 bits of each int32 lane (higher bits ignored) -> values: the magnitude
// from an 8-entry table (vpermps reads the low 3 bits), the sign from bit 3.
inline __m256 e2m1_decode(__m256i codes, __m256 magnitudes) {
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(codes, 28), _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_xor_ps(_mm256_permutevar8x32_ps(magnitudes, codes), _mm256_castsi256_ps(sign));
}

template <int B, int R>
void mxfp4_row_block(const KernelArgs& a, int64_t r0) {
  const __m256 magnitudes = _mm256_loadu_ps(kE2m1Values);
  const float* scales = e8m0_values();
  const int64_t blocks = a.in.padded_cols / 32;
  const BlockMxfp4x4* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<BlockMxfp4x4>(r0 + i);
  __m256 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
  for (int64_t j = 0; j < blocks; ++j)
    for (int i = 0; i < R; ++i) {
      const BlockMxfp4x4& chunk = rows[i][j / 4];
      const uint8_t* codes = chunk.codes + 16 * (j % 4);
      const __m256i b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
      const __m256i b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8)));
      const __m256 w[4] = {e2m1_decode(b0, magnitudes), e2m1_decode(b1, magnitudes),
                           e2m1_decode(_mm256_srli_epi32(b0, 4), magnitudes), e2m1_decode(_mm256_srli_epi32(b1, 4), magnitudes)};
      const __m256 s = _mm256_set1_ps(scales[chunk.scale_e8m0[j % 4]]);
#pragma GCC unroll 8
      for (int b = 0; b < B; ++b) {
        const float* x = a.in.floats(b) + 32 * j;
        __m256 dot = _mm256_mul_ps(w[0], _mm256_loadu_ps(x));
        for (int k = 1; k < 4; ++k) dot = _mm256_fmadd_ps(w[k], _mm256_loadu_ps(x + 8 * k), dot);
        acc[i][b] = _mm256_fmadd_ps(dot, s, acc[i][b]);
      }
    }
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = hsum(acc[i][b]);
}

template <int B, int R>
void nvfp4_row_block(const KernelArgs& a, int64_t r0) {
  const __m256 magnitudes = _mm256_loadu_ps(kE2m1Values);
  const float* scales = e4m3_values();
  const int64_t blocks = a.in.padded_cols / 16;
  const BlockNvfp4x8* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<BlockNvfp4x8>(r0 + i);
  __m256 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
  for (int64_t j = 0; j < blocks; ++j)
    for (int i = 0; i < R; ++i) {
      const BlockNvfp4x8& chunk = rows[i][j / 8];
      const __m256i codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(chunk.codes + 8 * (j % 8))));
      const __m256 s = _mm256_set1_ps(scales[chunk.scale_e4m3[j % 8]]);
      const __m256 w0 = _mm256_mul_ps(e2m1_decode(codes, magnitudes), s);
      const __m256 w1 = _mm256_mul_ps(e2m1_decode(_mm256_srli_epi32(codes, 4), magnitudes), s);
#pragma GCC unroll 8
      for (int b = 0; b < B; ++b) {
        const float* x = a.in.floats(b) + 16 * j;
        acc[i][b] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc[i][b]));
      }
    }
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = hsum(acc[i][b]) * a.w.tensor_scale();
}

template <int B>
void mxfp4_rows(const KernelArgs& a) {
  constexpr int R = kRowsAtOnce<B>;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) mxfp4_row_block<B, R>(a, r);
  for (; r < a.row_end; ++r) mxfp4_row_block<B, 1>(a, r);
}

template <int B>
void nvfp4_rows(const KernelArgs& a) {
  constexpr int R = kRowsAtOnce<B>;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) nvfp4_row_block<B, R>(a, r);
  for (; r < a.row_end; ++r) nvfp4_row_block<B, 1>(a, r);
}

// T-MAC style lookup table kernel (see gemv_avx512.cpp), 32 rows per vpshufb.
template <int B>
void int2lut_rows(const KernelArgs& a) {
  constexpr int kRows = TileInt2Lut::kRows, kGroups = TileInt2Lut::kGroups;
  const int64_t blocks = a.in.padded_cols / TileInt2Lut::kElements;
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  for (int64_t t = a.row_begin / kRows; t * kRows < a.row_end; ++t) {
    const TileInt2Lut* tiles = a.w.row<TileInt2Lut>(t);
    alignas(32) float acc[B][kRows] = {};
    for (int64_t j = 0; j < blocks; ++j) {
      const TileInt2Lut& tile = tiles[j];
      for (int b = 0; b < B; ++b) {
        // half h = rows 32 h..32 h + 31; low[h] words: rows 16 l + 0..7 of 128-bit lane l, high[h]: 16 l + 8..15.
        __m256i low[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        __m256i high[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int g = 0; g < kGroups; ++g) {
          const uint8_t* table = a.in.tables(b) + (j * kGroups + g) * 64;
          for (int p = 0; p < 2; ++p) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile.planes[g][p]));
            const __m256i index[2] = {_mm256_and_si256(v, nibble), _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)};
            const __m256i lo_bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 32 * p)));
            const __m256i hi_bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 32 * p + 16)));
            for (int h = 0; h < 2; ++h) {
              const __m256i l = _mm256_shuffle_epi8(lo_bytes, index[h]), hb = _mm256_shuffle_epi8(hi_bytes, index[h]);
              low[h] = _mm256_add_epi16(low[h], _mm256_unpacklo_epi8(l, hb));
              high[h] = _mm256_add_epi16(high[h], _mm256_unpackhi_epi8(l, hb));
            }
          }
        }
        const __m256i correction = _mm256_set1_epi32(a.in.block_corrections(b)[j]);
        for (int h = 0; h < 2; ++h) {
          const __m256i rows[2] = {_mm256_permute2x128_si256(low[h], high[h], 0x20),   // rows 0..15 of the half
                                   _mm256_permute2x128_si256(low[h], high[h], 0x31)};  // rows 16..31
          for (int i = 0; i < 4; ++i) {
            const __m128i words = i % 2 ? _mm256_extracti128_si256(rows[i / 2], 1) : _mm256_castsi256_si128(rows[i / 2]);
            const __m256i dot = _mm256_add_epi32(_mm256_cvtepi16_epi32(words), correction);
            float* out = acc[b] + 32 * h + 8 * i;
            _mm256_store_ps(out, _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_loadu_ps(tile.scale + 32 * h + 8 * i),
                                                 _mm256_load_ps(out)));
          }
        }
      }
    }
    for (int b = 0; b < B; ++b)
      for (int r = 0; r < kRows && t * kRows + r < a.row_end; ++r)
        a.y[b * a.ldy + t * kRows + r] = acc[b][r] * a.in.x_scale[b];
  }
}

template <template <int> class Body>
void by_batch(const KernelArgs& a) {
  switch (a.in.batch) {
    case 1: return Body<1>::run(a);
    case 2: return Body<2>::run(a);
    case 3: return Body<3>::run(a);
    case 4: return Body<4>::run(a);
    case 5: return Body<5>::run(a);
    case 6: return Body<6>::run(a);
    case 7: return Body<7>::run(a);
    default: return Body<8>::run(a);
  }
}

template <class Decoder>
struct Integer {
  template <int B>
  struct Body {
    static void run(const KernelArgs& a) { integer_rows<Decoder, B>(a); }
  };
};
template <int B>
struct F32 {
  static void run(const KernelArgs& a) { f32_rows<B>(a); }
};
template <int B>
struct Mxfp4 {
  static void run(const KernelArgs& a) { mxfp4_rows<B>(a); }
};
template <int B>
struct Nvfp4 {
  static void run(const KernelArgs& a) { nvfp4_rows<B>(a); }
};
template <int B>
struct Int2Lut {
  static void run(const KernelArgs& a) { int2lut_rows<B>(a); }
};

}  // namespace
}  // namespace lowbit::kernels::detail

#pragma GCC pop_options

namespace lowbit::kernels::detail {

// Compiled for the baseline target: callable to look up kernels on any CPU.
const KernelSet& avx2_kernels() {
  static const KernelSet set{by_batch<F32>,
                             by_batch<Integer<Int8Decoder>::Body>,
                             by_batch<Integer<Int4G32Decoder>::Body>,
                             by_batch<Integer<Int4G128Decoder>::Body>,
                             by_batch<Integer<Int3Decoder>::Body>,
                             by_batch<Integer<Int2Decoder>::Body>,
                             by_batch<Int2Lut>,
                             by_batch<Mxfp4>,
                             by_batch<Nvfp4>,
                             by_batch<Integer<Mxfp4A8Decoder>::Body>,
                             by_batch<Integer<Nvfp4A8Decoder>::Body>};
  return set;
}

}  // namespace lowbit::kernels::detail
