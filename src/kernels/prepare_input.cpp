#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include <immintrin.h>

#include "lowbit/kernels/blocks.hpp"
#include "lowbit/kernels/gemv.hpp"
#include "src/kernels/block_codes.hpp"
#include "src/kernels/kernel_set.hpp"

namespace lowbit::kernels {

namespace {

// The same arithmetic 8 floats at a time where the CPU has AVX2 (every step is exact or correctly
// rounded, so both paths give identical bytes).
__attribute__((target("avx2"))) float amax_avx2(const float* x, size_t n, bool& finite) {
  const __m256 magnitude_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 largest = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude_mask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, largest, _CMP_NLE_UQ));
    amax = _mm256_max_ps(amax, a);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, amax);
  float m = 0;
  for (float v : lanes) m = std::max(m, v);
  finite = _mm256_movemask_ps(bad) == 0;
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    finite &= a <= std::numeric_limits<float>::max();
    m = std::max(m, a);
  }
  return m;
}

inline int8_t quantize_one(float x, float scale) {
  const float v = std::min(std::max(x / scale, -127.0f), 127.0f);
  return static_cast<int8_t>(static_cast<int>((v + 0x1.8p23f) - 0x1.8p23f));  // + 1.5 * 2^23 rounds half to even
}

__attribute__((target("avx2"))) inline __m256i quantize8_avx2(const float* p, __m256 scale) {
  const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(_mm256_loadu_ps(p), scale), _mm256_set1_ps(-127.0f)),
                                 _mm256_set1_ps(127.0f));
  const __m256 magic = _mm256_set1_ps(0x1.8p23f);
  return _mm256_cvtps_epi32(_mm256_sub_ps(_mm256_add_ps(v, magic), magic));
}

__attribute__((target("avx2"))) size_t quantize_avx2(const float* x, int8_t* q, size_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i ab = _mm256_packs_epi32(quantize8_avx2(x + i, s), quantize8_avx2(x + i + 8, s));
    const __m256i cd = _mm256_packs_epi32(quantize8_avx2(x + i + 16, s), quantize8_avx2(x + i + 24, s));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
  }
  return i;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

// Int2Lut tables (see PreparedInput::lut) of `groups` groups of 4 activations.
__attribute__((target("avx2"))) int64_t build_tables_avx2(const int8_t* xq, uint8_t* lut, int64_t groups) {
  // Entry i of the 16 takes activation j when bit j of i is set.
  __m256i take[4];
  for (int j = 0; j < 4; ++j) {
    alignas(32) int16_t m[16];
    for (int i = 0; i < 16; ++i) m[i] = static_cast<int16_t>(i >> j & 1 ? -1 : 0);
    take[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
  }
  const __m256i low_byte = _mm256_set1_epi16(0xFF);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i sums = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) sums = _mm256_add_epi16(sums, _mm256_and_si256(_mm256_set1_epi16(xq[4 * g + j]), take[j]));
    for (int plane = 0; plane < 2; ++plane) {
      const __m256i v = plane ? _mm256_add_epi16(sums, sums) : sums;
      // bytes: 16 low bytes, then 16 high bytes
      const __m256i packed = _mm256_packus_epi16(_mm256_and_si256(v, low_byte), _mm256_srli_epi16(v, 8));
      // packus works per 128-bit lane: [lo 0-7, hi 0-7 | lo 8-15, hi 8-15] -> [lo 0-15 | hi 0-15]
      const __m256i ordered = _mm256_permute4x64_epi64(packed, 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lut + 64 * g + 32 * plane), ordered);
    }
  }
  return groups;
}

}  // namespace

float quantize_activations_int8(std::span<const float> x, std::span<int8_t> q) {
  const size_t n = std::min(x.size(), q.size());
  bool finite = true;
  float amax = 0;
  if (has_avx2()) {
    amax = amax_avx2(x.data(), x.size(), finite);
  } else {
    for (float v : x) {
      const float a = std::fabs(v);
      finite &= a <= std::numeric_limits<float>::max();
      amax = std::max(amax, a);
    }
  }
  if (!finite) {  // the result is NaN, as float arithmetic would give
    std::fill(q.begin(), q.end(), int8_t{0});
    return std::numeric_limits<float>::quiet_NaN();
  }
  // amax / 127 underflows to 0 below 63.5 subnormal steps: the smallest positive scale keeps x / s finite.
  const float scale = amax > 0 ? std::max(amax / 127.0f, std::numeric_limits<float>::denorm_min()) : 1.0f;
  size_t i = has_avx2() ? quantize_avx2(x.data(), q.data(), n, scale) : 0;
  for (; i < n; ++i) q[i] = quantize_one(x[i], scale);
  std::fill(q.begin() + static_cast<std::ptrdiff_t>(n), q.end(), int8_t{0});
  return scale;
}

namespace detail {
namespace {

int code_offset(StorageFormat f) {
  switch (f) {
    case StorageFormat::Int8: return 128;
    case StorageFormat::Int4G32:
    case StorageFormat::Int4G128: return 8;
    case StorageFormat::Int3: return 4;
    case StorageFormat::Int2:
    case StorageFormat::Int2Lut: return 2;
    case StorageFormat::Mxfp4A8:
    case StorageFormat::Nvfp4A8: return 12;
    default: return 0;
  }
}

// Each 128 columns in the order of a multi-block struct's codes (activation_position).
template <class Block>
void to_code_order(std::vector<int8_t>& xq) {
  static_assert(PackedMatrix::kColumnAlign % Block::kElements == 0);
  int8_t natural[Block::kElements];
  for (size_t c0 = 0; c0 < xq.size(); c0 += Block::kElements) {
    std::memcpy(natural, xq.data() + c0, sizeof natural);
    for (int i = 0; i < Block::kElements; ++i) xq[c0 + activation_position<Block>(i)] = natural[i];
  }
}

}  // namespace

void prepare_input(const PackedMatrix& w, const float* x, int batch, PreparedInput& in) {
  const int64_t K = w.padded_cols(), cols = w.cols();
  in.batch = batch;
  in.padded_cols = K;
  if (!uses_int8_activations(w.format())) {
    in.xf.assign(static_cast<size_t>(batch * K), 0.0f);
    for (int b = 0; b < batch; ++b) std::memcpy(in.xf.data() + b * K, x + b * cols, sizeof(float) * cols);
    return;
  }
  in.xq.resize(static_cast<size_t>(batch * K));
  in.x_scale.resize(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b)
    in.x_scale[b] = quantize_activations_int8({x + b * cols, static_cast<size_t>(cols)},
                                              {in.xq.data() + b * K, static_cast<size_t>(K)});
  if (w.format() == StorageFormat::Int4G32) to_code_order<BlockInt4G32x4>(in.xq);
  if (w.format() == StorageFormat::Mxfp4A8) to_code_order<BlockMxfp4x4>(in.xq);
  if (w.format() == StorageFormat::Nvfp4A8) to_code_order<BlockNvfp4x8>(in.xq);
  const int offset = code_offset(w.format());
  if (w.format() != StorageFormat::Int2Lut) {
    in.quad_correction.resize(static_cast<size_t>(batch * K / 4));
    for (int64_t i = 0; i < batch * K / 4; ++i) {
      const int8_t* q = in.xq.data() + 4 * i;
      in.quad_correction[i] = -offset * (q[0] + q[1] + q[2] + q[3]);
    }
    return;
  }
  in.lut.resize(static_cast<size_t>(batch * K / 4 * 64));
  const int64_t done = has_avx2() ? build_tables_avx2(in.xq.data(), in.lut.data(), batch * K / 4) : 0;
  for (int64_t g = done; g < batch * K / 4; ++g) {
    const int8_t* q = in.xq.data() + 4 * g;
    int16_t sums[16];
    sums[0] = 0;
    for (int i = 1; i < 16; ++i) sums[i] = static_cast<int16_t>(sums[i & (i - 1)] + q[std::countr_zero(static_cast<unsigned>(i))]);
    uint8_t* table = in.lut.data() + 64 * g;
    for (int i = 0; i < 16; ++i) {
      const uint16_t once = static_cast<uint16_t>(sums[i]), twice = static_cast<uint16_t>(2 * sums[i]);
      table[i] = static_cast<uint8_t>(once);
      table[16 + i] = static_cast<uint8_t>(once >> 8);
      table[32 + i] = static_cast<uint8_t>(twice);
      table[48 + i] = static_cast<uint8_t>(twice >> 8);
    }
  }
  in.block_correction.resize(static_cast<size_t>(batch * K / 32));
  for (int64_t blk = 0; blk < batch * K / 32; ++blk) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += in.xq[blk * 32 + j];
    in.block_correction[blk] = -offset * sum;
  }
}

}  // namespace detail
}  // namespace lowbit::kernels
