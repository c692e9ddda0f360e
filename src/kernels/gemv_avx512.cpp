// AVX-512 kernels (F, BW, VL, DQ, VNNI), compiled for that target function by function through the
// pragma below and only called after the run-time CPU check in gemv.cpp.
//
// Integer formats: 64 weights at a time are unpacked to unsigned bytes u = q + offset, and
// vpdpbusd(u, x) sums 4 products per int32 lane; the lane starts from -offset * (sum of its 4 x),
// so it ends at the exact signed dot product. Each lane then takes its block's scale by one FMA.
// GCC 12 warns falsely inside the intrinsics that start from _mm512_undefined_*() (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "lowbit/kernels/blocks.hpp"
#include "src/kernels/block_codes.hpp"
#include "src/kernels/kernel_set.hpp"

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

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

inline __m512 pair_scales(float s0, float s1) {
  return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1);
}

// Two int2 blocks' 8 code bytes -> 64 bytes u in 0..3, elements in order.
inline __m512i int2_pair(const uint8_t* c0, const uint8_t* c1) {
  const __m128i both = _mm_set_epi64x(static_cast<long long>(load_u64(c1)), static_cast<long long>(load_u64(c0)));
  const __m512i spread = _mm512_permutexvar_epi64(_mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0), _mm512_castsi128_si512(both));
  return _mm512_and_si512(_mm512_srlv_epi64(spread, _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0)), _mm512_set1_epi8(3));
}

// The 64 code bytes of a struct of 4-bit blocks (blocks.hpp) -> their low nibbles, then their high
// nibbles, as bytes: the activations come in that order.
inline void nibble_halves(const uint8_t* codes, __m512i* u) {
  const __m512i v = _mm512_loadu_si512(codes);
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  u[0] = _mm512_and_si512(v, nibble);
  u[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
}

// Each decoder gives the unsigned codes of the kChunks x 64 elements of group g of a row (64 per
// vector, one int32 lane of vpdpbusd per 4), and the scale of each int32 lane, the same for all of
// the group's vectors.
struct Int8Decoder {
  using Block = BlockInt8;
  static constexpr int kChunks = 1;
  static void load(const Block* row, int64_t g, __m512i* u, __m512& s) {
    const Block* b = row + 2 * g;
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].q))),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].q)), 1);
    u[0] = _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));
    s = pair_scales(b[0].scale, b[1].scale);
  }
};

// A BlockInt4G32x4 (4 blocks, 128 weights) per group: int32 lanes 4 k..4 k + 3 of both vectors hold
// block k, so they share one scale vector: the 4 scales each 4 times.
struct Int4G32Decoder {
  using Block = BlockInt4G32x4;
  static constexpr int kChunks = 2;
  static void load(const Block* row, int64_t g, __m512i* u, __m512& s) {
    const Block& b = row[g];
    nibble_halves(b.codes, u);
    const __m512i each_four_times = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    s = _mm512_permutexvar_ps(each_four_times, _mm512_castps128_ps512(_mm_loadu_ps(b.scale)));
  }
};

struct Int4G128Decoder {
  using Block = BlockInt4G128;
  static constexpr int kChunks = 2;
  static void load(const Block* row, int64_t g, __m512i* u, __m512& s) {
    const Block& b = row[g];
#pragma GCC unroll 2
    for (int k = 0; k < 2; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.codes + 32 * k));
      u[k] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), _mm512_set1_epi8(0x0F));
    }
    s = _mm512_set1_ps(b.scale);
  }
};

struct Int3Decoder {
  using Block = BlockInt3;
  static constexpr int kChunks = 1;
  static void load(const Block* row, int64_t g, __m512i* u, __m512& s) {
    const Block* b = row + 2 * g;
    const uint64_t high = load_u32(b[0].high_bits) | static_cast<uint64_t>(load_u32(b[1].high_bits)) << 32;
    u[0] = _mm512_or_si512(int2_pair(b[0].low_bits, b[1].low_bits), _mm512_maskz_mov_epi8(high, _mm512_set1_epi8(4)));
    s = pair_scales(b[0].scale, b[1].scale);
  }
};

struct Int2Decoder {
  using Block = BlockInt2;
  static constexpr int kChunks = 1;
  static void load(const Block* row, int64_t g, __m512i* u, __m512& s) {
    const Block* b = row + 2 * g;
    u[0] = int2_pair(b[0].codes, b[1].codes);
    s = pair_scales(b[0].scale, b[1].scale);
  }
};

// E2M1 codes (low nibble of each byte) -> u = 2 x value + 12 in 0..24: q = u - 12 is 2 x the value.
inline __m512i e2m1_twice_offset(__m512i nibbles) {
  const __m128i table = _mm_load_si128(reinterpret_cast<const __m128i*>(kE2m1TwicePlus12));
  return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(table), nibbles);
}

// The 64 code bytes of an E2M1 struct -> u of their low nibbles, then of their high nibbles.
inline void e2m1_struct_codes(const uint8_t* codes, __m512i* u) {
  nibble_halves(codes, u);
  u[0] = e2m1_twice_offset(u[0]);
  u[1] = e2m1_twice_offset(u[1]);
}

// E8M0 codes as int32 -> 2^(code - 127): the code in float's exponent field; code 0 is the
// subnormal 2^-127 (bit 22 alone), code 255 NaN.
inline __m512 e8m0_decode(__m512i code) {
  const __m512i bits = _mm512_max_epu32(_mm512_slli_epi32(code, 23), _mm512_set1_epi32(1 << 22));
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(code, _mm512_set1_epi32(255));
  return _mm512_mask_mov_ps(_mm512_castsi512_ps(bits), nan, _mm512_set1_ps(__builtin_nanf("")));
}

// A BlockMxfp4x4 (4 blocks, 128 weights) per group: int32 lanes 4 k..4 k + 3 of both vectors hold
// block k, so they share one scale vector: the 4 scale codes each 4 times, decoded in registers.
struct Mxfp4A8Decoder {
  using Block = BlockMxfp4x4;
  static constexpr int kChunks = 2;
  static constexpr bool kTensorScale = true;
  void load(const Block* row, int64_t g, __m512i* u, __m512& s) const {
    const Block& b = row[g];
    e2m1_struct_codes(b.codes, u);
    const __m128i codes = _mm_cvtsi32_si128(static_cast<int>(load_u32(b.scale_e8m0)));
    const __m128i each_four_times = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    s = e8m0_decode(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(codes, each_four_times)));
  }
};

// E4M3 (fn) codes, sign-extended to int32 -> their values: the 7 magnitude bits moved to float's
// exponent and mantissa, times 2^(127 - 7) (exact, subnormals included), the sign from bit 31 of
// the extension, NaN at magnitude 0x7F.
inline __m512 e4m3_decode(__m512i code) {
  const __m512i bits = _mm512_and_si512(_mm512_slli_epi32(code, 20), _mm512_set1_epi32(static_cast<int>(0x87F00000u)));
  const __m512 value = _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0x1p120f));
  const __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_or_si512(code, _mm512_set1_epi32(~0x7F)), _mm512_set1_epi32(-1));
  return _mm512_mask_mov_ps(value, nan, _mm512_set1_ps(__builtin_nanf("")));
}

// A BlockNvfp4x8 (8 blocks, 128 weights) per group: int32 lanes 2 k and 2 k + 1 of both vectors hold
// block k, so they share one scale vector: the 8 scale codes each twice, decoded in registers.
struct Nvfp4A8Decoder {
  using Block = BlockNvfp4x8;
  static constexpr int kChunks = 2;
  static constexpr bool kTensorScale = true;
  void load(const Block* row, int64_t g, __m512i* u, __m512& s) const {
    const Block& b = row[g];
    e2m1_struct_codes(b.codes, u);
    const __m128i codes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scale_e4m3));
    s = e4m3_decode(_mm512_cvtepi8_epi32(_mm_unpacklo_epi8(codes, codes)));
  }
};

// Int8, one vector: the 16 rows at once are 16 short streams (4.6 KB for 4096 columns) and the
// hardware prefetcher starts each one late, so the kernel fetches the next 16 rows itself while it
// computes these (11008x4096 from memory, 1 thread: 0.72 -> 0.89 of the read bandwidth). The 4-bit
// formats run slower with it when their weights sit in the last-level cache, and keep without.
template <class Decoder, int B, int R>
constexpr bool kPrefetchNextRows = B == 1 && R > 1 && std::is_same_v<Decoder, Int8Decoder>;
template <class Decoder>
constexpr int64_t kChunkBytes = sizeof(typename Decoder::Block) * 64 / Decoder::Block::kElements;  // per 64 weights

// Rows r0..r0 + R - 1 for B vectors: R x B independent accumulator chains, x loads shared by the rows.
// Every loop over rows and vectors is unrolled completely: GCC then keeps acc, u and s in registers
// (with partial unrolling it kept them on the stack and the kernel ran at half the memory rate).
template <class Decoder, int B, int R>
void integer_row_block(const KernelArgs& a, int64_t r0) {
  constexpr int K = Decoder::kChunks;
  const Decoder decoder;
  const int64_t chunks = a.in.padded_cols / 64;
  const typename Decoder::Block* rows[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<typename Decoder::Block>(r0 + i);
  __m512 acc[R][B];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) acc[i][b] = _mm512_setzero_ps();
  for (int64_t c = 0; c < chunks; c += K) {
    __m512i x[K][B], start[B];
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) {
      start[b] = _mm512_loadu_si512(a.in.quads(b) + 16 * c);
#pragma GCC unroll 4
      for (int k = 0; k < K; ++k) {
        x[k][b] = _mm512_loadu_si512(a.in.ints(b) + 64 * (c + k));
        if (k > 0) start[b] = _mm512_add_epi32(start[b], _mm512_loadu_si512(a.in.quads(b) + 16 * (c + k)));
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      if constexpr (kPrefetchNextRows<Decoder, B, R>) {
        const char* next = reinterpret_cast<const char*>(rows[i]) + R * a.w.row_bytes() + c * kChunkBytes<Decoder>;
        _mm_prefetch(next, _MM_HINT_T0);
        if constexpr (K * kChunkBytes<Decoder> > 64) _mm_prefetch(next + K * kChunkBytes<Decoder> - 1, _MM_HINT_T0);
      }
      __m512i dot[B], u[K];
      __m512 s;
      decoder.load(rows[i], c / K, u, s);
#pragma GCC unroll 4
      for (int k = 0; k < K; ++k)
#pragma GCC unroll 16
        for (int b = 0; b < B; ++b) dot[b] = _mm512_dpbusd_epi32(k == 0 ? start[b] : dot[b], u[k], x[k][b]);
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) acc[i][b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[b]), s, acc[i][b]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = _mm512_reduce_add_ps(acc[i][b]) * output_scale<Decoder>(a, b);
}

// Enough rows at once that the FMA chains hide their latency: R x B >= 4 where B is small. One
// vector reads best with 16 rows at once (the memory system serves several streams faster than one).
template <int B>
constexpr int kRowsAtOnce = B == 1 ? 4 : (B == 2 ? 2 : 1);
template <int B>
constexpr int kIntegerRowsAtOnce = B == 1 ? 16 : kRowsAtOnce<B>;

template <class Decoder, int B>
void integer_rows(const KernelArgs& a) {
  constexpr int R = kIntegerRowsAtOnce<B>;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) integer_row_block<Decoder, B, R>(a, r);
  for (; r < a.row_end; ++r) integer_row_block<Decoder, B, 1>(a, r);
}

template <int B>
void f32_rows(const KernelArgs& a) {
  constexpr int R = B <= 2 ? 4 : 2;  // rows at once, sharing each x load
  const int64_t K = a.in.padded_cols;
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) {
    __m512 acc[R][B];
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) acc[i][b] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      __m512 x[B];
      for (int b = 0; b < B; ++b) x[b] = _mm512_loadu_ps(a.in.floats(b) + k);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const __m512 w = _mm512_load_ps(a.w.row<float>(r + i) + k);
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) acc[i][b] = _mm512_fmadd_ps(w, x[b], acc[i][b]);
      }
    }
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) a.y[b * a.ldy + r + i] = _mm512_reduce_add_ps(acc[i][b]);
  }
  for (; r < a.row_end; ++r) {
    __m512 acc[B];
    for (int b = 0; b < B; ++b) acc[b] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __m512 w = _mm512_load_ps(a.w.row<float>(r) + k);
      for (int b = 0; b < B; ++b) acc[b] = _mm512_fmadd_ps(w, _mm512_loadu_ps(a.in.floats(b) + k), acc[b]);
    }
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r] = _mm512_reduce_add_ps(acc[b]);
  }
}

// E2M1 codes in the low 4 bits of each int32 lane -> values (vpermps reads only those 4 bits).
inline __m512 e2m1_decode(__m512i codes, __m512 table) { return _mm512_permutexvar_ps(codes, table); }

template <int B, int R>
void mxfp4_row_block(const KernelArgs& a, int64_t r0) {
  const __m512 table = _mm512_loadu_ps(kE2m1Values);
  const float* scales = e8m0_values();
  const int64_t blocks = a.in.padded_cols / 32;
  const BlockMxfp4x4* rows[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<BlockMxfp4x4>(r0 + i);
  __m512 acc[R][B];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) acc[i][b] = _mm512_setzero_ps();
  for (int64_t j = 0; j < blocks; ++j) {
    __m512 x0[B], x1[B];
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) {
      x0[b] = _mm512_loadu_ps(a.in.floats(b) + 32 * j);
      x1[b] = _mm512_loadu_ps(a.in.floats(b) + 32 * j + 16);
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const BlockMxfp4x4& chunk = rows[i][j / 4];
      const __m512i low = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk.codes + 16 * (j % 4))));
      const __m512 w0 = e2m1_decode(low, table), w1 = e2m1_decode(_mm512_srli_epi32(low, 4), table);
      const __m512 s = _mm512_set1_ps(scales[chunk.scale_e8m0[j % 4]]);
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) acc[i][b] = _mm512_fmadd_ps(_mm512_fmadd_ps(w1, x1[b], _mm512_mul_ps(w0, x0[b])), s, acc[i][b]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = _mm512_reduce_add_ps(acc[i][b]);
}

template <int B, int R>
void nvfp4_row_block(const KernelArgs& a, int64_t r0) {
  const __m512 table = _mm512_loadu_ps(kE2m1Values);
  const __m512i shifts = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
  const float* scales = e4m3_values();
  const int64_t blocks = a.in.padded_cols / 16;
  const BlockNvfp4x8* rows[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) rows[i] = a.w.row<BlockNvfp4x8>(r0 + i);
  __m512 acc[R][B];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) acc[i][b] = _mm512_setzero_ps();
  for (int64_t j = 0; j < blocks; ++j) {
    __m512 x[B];
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) x[b] = _mm512_loadu_ps(a.in.floats(b) + 16 * j);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      // Lanes 0-7 read the low nibbles of the 8 code bytes (codes 0-7), lanes 8-15 the high ones.
      const BlockNvfp4x8& chunk = rows[i][j / 8];
      const __m128i bytes = _mm_set1_epi64x(static_cast<long long>(load_u64(chunk.codes + 8 * (j % 8))));
      const __m512 w = _mm512_mul_ps(e2m1_decode(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(bytes), shifts), table),
                                     _mm512_set1_ps(scales[chunk.scale_e4m3[j % 8]]));
#pragma GCC unroll 16
      for (int b = 0; b < B; ++b) acc[i][b] = _mm512_fmadd_ps(w, x[b], acc[i][b]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
    for (int b = 0; b < B; ++b) a.y[b * a.ldy + r0 + i] = _mm512_reduce_add_ps(acc[i][b]) * a.w.tensor_scale();
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

// T-MAC style lookup table kernel: for each group of 4 columns, the 16 subset sums of the 4 int8
// activations (split into low and high bytes) sit in a 128-bit register; vpshufb looks up 64 rows'
// 4-bit indices at once, for each of the two bit planes.
template <int B>
void int2lut_rows(const KernelArgs& a) {
  constexpr int kRows = TileInt2Lut::kRows, kGroups = TileInt2Lut::kGroups;
  const int64_t blocks = a.in.padded_cols / TileInt2Lut::kElements;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  const __m512i rows_0_31 = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i rows_32_63 = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  for (int64_t t = a.row_begin / kRows; t * kRows < a.row_end; ++t) {
    const TileInt2Lut* tiles = a.w.row<TileInt2Lut>(t);
    __m512 acc[B][4];
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < 4; ++i) acc[b][i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < blocks; ++j) {
      const TileInt2Lut& tile = tiles[j];
      // int16 sums; byte lane l of an index vector is row l; after unpacklo/hi the words of
      // low[] are rows 16 l + 0..7 of 128-bit lane l, those of high[] rows 16 l + 8..15.
      __m512i low[B], high[B];
      for (int b = 0; b < B; ++b) low[b] = high[b] = _mm512_setzero_si512();
      for (int g = 0; g < kGroups; ++g) {
        __m512i index[2];
        for (int p = 0; p < 2; ++p) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile.planes[g][p]));
          index[p] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), nibble);
        }
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) {
          const uint8_t* table = a.in.tables(b) + (j * kGroups + g) * 64;
#pragma GCC unroll 2
          for (int p = 0; p < 2; ++p) {
            const __m512i lo_bytes = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 32 * p)));
            const __m512i hi_bytes = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 32 * p + 16)));
            const __m512i l = _mm512_shuffle_epi8(lo_bytes, index[p]), h = _mm512_shuffle_epi8(hi_bytes, index[p]);
            low[b] = _mm512_add_epi16(low[b], _mm512_unpacklo_epi8(l, h));
            high[b] = _mm512_add_epi16(high[b], _mm512_unpackhi_epi8(l, h));
          }
        }
      }
      for (int b = 0; b < B; ++b) {
        const __m512i correction = _mm512_set1_epi32(a.in.block_corrections(b)[j]);
        const __m512i rows[2] = {_mm512_permutex2var_epi64(low[b], rows_0_31, high[b]),
                                 _mm512_permutex2var_epi64(low[b], rows_32_63, high[b])};
        for (int i = 0; i < 4; ++i) {
          const __m256i words = i % 2 ? _mm512_extracti64x4_epi64(rows[i / 2], 1) : _mm512_castsi512_si256(rows[i / 2]);
          const __m512i dot = _mm512_add_epi32(_mm512_cvtepi16_epi32(words), correction);
          acc[b][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(tile.scale + 16 * i), acc[b][i]);
        }
      }
    }
    for (int b = 0; b < B; ++b) {
      alignas(64) float out[kRows];
      const __m512 xs = _mm512_set1_ps(a.in.x_scale[b]);
      for (int i = 0; i < 4; ++i) _mm512_store_ps(out + 16 * i, _mm512_mul_ps(acc[b][i], xs));
      for (int r = 0; r < kRows && t * kRows + r < a.row_end; ++r) a.y[b * a.ldy + t * kRows + r] = out[r];
    }
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
const KernelSet& avx512_kernels() {
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
