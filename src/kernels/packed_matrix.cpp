#include "lowbit/kernels/packed_matrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/format.hpp"
#include "lowbit/kernels/blocks.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "src/kernels/block_codes.hpp"

namespace lowbit::kernels {
namespace {

struct FormatInfo {
  StorageFormat format;
  std::string_view name;
  int block_elements;   // weights per scale
  int struct_elements;  // weights per stored struct
  size_t struct_bytes;
  int bits;  // integer formats: width of the quantized values; 0 otherwise
  bool int8_activations;
};

template <class Block>
constexpr FormatInfo block_info(StorageFormat format, std::string_view name, int bits, bool int8_activations) {
  return {format, name, detail::kScaleElements<Block>, Block::kElements, sizeof(Block), bits, int8_activations};
}

constexpr FormatInfo kInfo[] = {
    {StorageFormat::F32, "f32", 1, 1, sizeof(float), 0, false},
    block_info<BlockInt8>(StorageFormat::Int8, "int8", 8, true),
    block_info<BlockInt4G32x4>(StorageFormat::Int4G32, "int4g32", 4, true),
    block_info<BlockInt4G128>(StorageFormat::Int4G128, "int4g128", 4, true),
    block_info<BlockInt3>(StorageFormat::Int3, "int3", 3, true),
    block_info<BlockInt2>(StorageFormat::Int2, "int2", 2, true),
    block_info<TileInt2Lut>(StorageFormat::Int2Lut, "int2lut", 2, true),
    block_info<BlockMxfp4x4>(StorageFormat::Mxfp4, "mxfp4", 0, false),
    block_info<BlockNvfp4x8>(StorageFormat::Nvfp4, "nvfp4", 0, false),
    block_info<BlockMxfp4x4>(StorageFormat::Mxfp4A8, "mxfp4a8", 0, true),
    block_info<BlockNvfp4x8>(StorageFormat::Nvfp4A8, "nvfp4a8", 0, true),
};

const FormatInfo& info(StorageFormat f) {
  for (const FormatInfo& i : kInfo)
    if (i.format == f) return i;
  throw std::invalid_argument("unknown storage format");
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Symmetric min-max round-to-nearest-even per group along each row, as lowbit's Quantizer defines
// it: the integers and one float32 scale per (row, group).
struct IntegerQuantized {
  std::vector<int32_t> q;  // rows x cols
  std::vector<float> scale;  // rows x groups
  int64_t groups = 0;
};

IntegerQuantized quantize_integers(std::span<const float> w, int64_t rows, int64_t cols, int bits, int group) {
  QuantizerConfig config(Format::parse(fmt::format("int{}", bits)));
  config.granularity = Granularity::Group;
  config.axis = 1;
  config.group_size = group;
  Quantizer quantizer(config);
  const int64_t shape[] = {rows, cols};
  quantizer.observe(w, shape);
  quantizer.set_params(quantizer.compute_params());
  IntegerQuantized r;
  r.q.resize(w.size());
  quantizer.quantize_to_integers(w, r.q, shape);
  r.scale = quantizer.params()->scale;
  r.groups = (cols + group - 1) / group;
  return r;
}

template <class Block>
void pack_integer_rows(PackedMatrix& m, std::span<const float> w) {
  constexpr int n = detail::kScaleElements<Block>;
  const IntegerQuantized iq = quantize_integers(w, m.rows(), m.cols(), info(m.format()).bits, n);
  for (int64_t r = 0; r < m.rows(); ++r) {
    Block* blocks = m.row<Block>(r);
    for (int64_t g = 0; g < m.padded_cols() / n; ++g) {  // padding: scale 0, codes of q = 0
      Block& b = blocks[g * n / Block::kElements];
      const int first = static_cast<int>(g * n % Block::kElements);  // of the block, in its struct
      if (g < iq.groups) detail::set_scale(b, first, iq.scale[static_cast<size_t>(r * iq.groups + g)]);
      for (int i = 0; i < n; ++i) {
        const int64_t c = g * n + i;
        detail::set_code(b, first + i, c < m.cols() ? iq.q[static_cast<size_t>(r * m.cols() + c)] : 0);
      }
    }
  }
}

void pack_int2_lut(PackedMatrix& m, std::span<const float> w) {
  constexpr int kCols = TileInt2Lut::kElements, kRows = TileInt2Lut::kRows;
  const IntegerQuantized iq = quantize_integers(w, m.rows(), m.cols(), 2, kCols);
  const int64_t tiles_per_row = m.padded_cols() / kCols;
  for (int64_t t = 0; t < m.padded_rows() / kRows; ++t) {
    TileInt2Lut* tiles = m.row<TileInt2Lut>(t);
    for (int64_t g = 0; g < tiles_per_row; ++g)
      for (int r = 0; r < kRows; ++r) {
        const int64_t row = t * kRows + r;
        const bool real_row = row < m.rows() && g < iq.groups;
        tiles[g].scale[r] = real_row ? iq.scale[static_cast<size_t>(row * iq.groups + g)] : 0.0f;
        for (int i = 0; i < kCols; ++i) {
          const int64_t c = g * kCols + i;
          const bool real = real_row && c < m.cols();
          detail::set_code(tiles[g], r, i, real ? iq.q[static_cast<size_t>(row * m.cols() + c)] : 0);
        }
      }
  }
}

// lowbit's block format fake quantization (BlockFormat::quantize_reference), keeping the codes.
template <class Block>
void pack_e2m1_rows(PackedMatrix& m, std::span<const float> w, std::string_view spec) {
  const BlockFormat format = *Format::parse(spec).block();
  const ScalarFormat& element = format.element();
  const ScalarFormat& scale_format = *format.params().scale.format;
  float tensor = 1.0f;
  if (format.params().tensor_scale) {
    float amax = 0;
    for (float v : w) amax = std::max(amax, std::fabs(v));
    tensor = format.tensor_scale_for(amax);
  }
  m.set_tensor_scale(tensor);
  constexpr int bs = detail::kScaleElements<Block>;
  for (int64_t r = 0; r < m.rows(); ++r) {
    Block* blocks = m.row<Block>(r);
    const float* src = w.data() + r * m.cols();
    for (int64_t c0 = 0; c0 < m.cols(); c0 += bs) {
      const int n = static_cast<int>(std::min<int64_t>(bs, m.cols() - c0));
      double amax = 0;
      for (int i = 0; i < n; ++i) amax = std::max(amax, static_cast<double>(std::fabs(src[c0 + i])));
      const double s = format.block_scale(amax, tensor);
      if (std::isnan(s)) throw std::invalid_argument(fmt::format("{}: block scale out of range at row {}", spec, r));
      Block& b = blocks[c0 / Block::kElements];
      const int first = static_cast<int>(c0 % Block::kElements);  // of the block, in its struct
      detail::set_scale_code(b, first, static_cast<int>(scale_format.code_of(s)));
      const float eff = static_cast<float>(s * tensor);
      if (eff == 0) continue;  // every element quantizes to +0: code 0
      for (int i = 0; i < n; ++i)
        detail::set_code(b, first + i, static_cast<int>(element.encode(src[c0 + i] / eff, Rounding::NearestEven)));
    }
  }
}

}  // namespace

namespace detail {

const float* e8m0_values() {
  static const std::vector<float> table = [] {
    const ScalarFormat f = *Format::parse("float8_e8m0fnu").scalar();
    std::vector<float> t(256);
    for (uint32_t c = 0; c < 256; ++c) t[c] = static_cast<float>(f.decode(c));
    return t;
  }();
  return table.data();
}

const float* e4m3_values() {
  static const std::vector<float> table = [] {
    const ScalarFormat f = *Format::parse("float8_e4m3fn").scalar();
    std::vector<float> t(256);
    for (uint32_t c = 0; c < 256; ++c) t[c] = static_cast<float>(f.decode(c));
    return t;
  }();
  return table.data();
}

}  // namespace detail

std::string_view to_string(StorageFormat f) { return info(f).name; }

StorageFormat parse_storage_format(std::string_view name) {
  for (const FormatInfo& i : kInfo)
    if (i.name == name) return i.format;
  std::string known;
  for (const FormatInfo& i : kInfo) known += fmt::format("{}{}", known.empty() ? "" : ", ", i.name);
  throw std::invalid_argument(fmt::format("unknown storage format '{}' (known: {})", name, known));
}

bool uses_int8_activations(StorageFormat f) { return info(f).int8_activations; }
int block_elements(StorageFormat f) { return info(f).block_elements; }
int tile_rows(StorageFormat f) { return f == StorageFormat::Int2Lut ? TileInt2Lut::kRows : 1; }

void PackedMatrix::AlignedFree::operator()(std::byte* p) const { std::free(p); }

PackedMatrix::PackedMatrix(StorageFormat format, int64_t rows, int64_t cols)
    : format_(format), rows_(rows), cols_(cols) {
  if (rows < 1 || cols < 1)
    throw std::invalid_argument(fmt::format("packed matrix needs rows and cols >= 1, got {} x {}", rows, cols));
  const FormatInfo& i = info(format);
  padded_cols_ = round_up(cols, kColumnAlign);
  padded_rows_ = round_up(rows, tile_rows(format));
  row_bytes_ = static_cast<size_t>(padded_cols_ / i.struct_elements) * i.struct_bytes;
  size_bytes_ = static_cast<size_t>(padded_rows_ / tile_rows(format)) * row_bytes_;
  const size_t alloc = static_cast<size_t>(round_up(static_cast<int64_t>(size_bytes_) + 64, 64));
  data_.reset(static_cast<std::byte*>(std::aligned_alloc(64, alloc)));
  if (!data_) throw std::bad_alloc();
  std::memset(data_.get(), 0, alloc);
}

PackedMatrix pack(std::span<const float> w, int64_t rows, int64_t cols, StorageFormat format) {
  if (rows < 1 || cols < 1 || static_cast<int64_t>(w.size()) != rows * cols)
    throw std::invalid_argument(
        fmt::format("pack: {} weights do not form a {} x {} matrix", w.size(), rows, cols));
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i]))
      throw std::invalid_argument(fmt::format("pack: weight {} (row {}, col {}) is {}", i, static_cast<int64_t>(i) / cols,
                                              static_cast<int64_t>(i) % cols, w[i]));
  PackedMatrix m(format, rows, cols);
  switch (format) {
    case StorageFormat::F32:
      for (int64_t r = 0; r < rows; ++r) std::memcpy(m.row<float>(r), w.data() + r * cols, sizeof(float) * cols);
      break;
    case StorageFormat::Int8: pack_integer_rows<BlockInt8>(m, w); break;
    case StorageFormat::Int4G32: pack_integer_rows<BlockInt4G32x4>(m, w); break;
    case StorageFormat::Int4G128: pack_integer_rows<BlockInt4G128>(m, w); break;
    case StorageFormat::Int3: pack_integer_rows<BlockInt3>(m, w); break;
    case StorageFormat::Int2: pack_integer_rows<BlockInt2>(m, w); break;
    case StorageFormat::Int2Lut: pack_int2_lut(m, w); break;
    case StorageFormat::Mxfp4:
    case StorageFormat::Mxfp4A8: pack_e2m1_rows<BlockMxfp4x4>(m, w, "mxfp4"); break;
    case StorageFormat::Nvfp4:
    case StorageFormat::Nvfp4A8: pack_e2m1_rows<BlockNvfp4x8>(m, w, "nvfp4"); break;
  }
  return m;
}

namespace {

template <class Block>
void unpack_integer_rows(const PackedMatrix& m, std::vector<float>& out) {
  for (int64_t r = 0; r < m.rows(); ++r) {
    const Block* blocks = m.row<Block>(r);
    for (int64_t c = 0; c < m.cols(); ++c) {
      const Block& b = blocks[c / Block::kElements];
      const int i = static_cast<int>(c % Block::kElements);
      out[static_cast<size_t>(r * m.cols() + c)] = static_cast<float>(detail::code(b, i)) * detail::block_scale(b, i);
    }
  }
}

template <class Block>
void unpack_e2m1_rows(const PackedMatrix& m, std::vector<float>& out) {
  for (int64_t r = 0; r < m.rows(); ++r) {
    const Block* blocks = m.row<Block>(r);
    for (int64_t c = 0; c < m.cols(); ++c) {
      const Block& b = blocks[c / Block::kElements];
      const int i = static_cast<int>(c % Block::kElements);
      const double s = detail::block_scale(b, i);
      const float eff = static_cast<float>(s * m.tensor_scale());
      const float value = kE2m1Values[detail::code(b, i)];
      out[static_cast<size_t>(r * m.cols() + c)] = eff == 0 ? 0.0f : value * eff;
    }
  }
}

}  // namespace

std::vector<float> unpack(const PackedMatrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows() * m.cols()));
  switch (m.format()) {
    case StorageFormat::F32:
      for (int64_t r = 0; r < m.rows(); ++r) std::memcpy(out.data() + r * m.cols(), m.row<float>(r), sizeof(float) * m.cols());
      break;
    case StorageFormat::Int8: unpack_integer_rows<BlockInt8>(m, out); break;
    case StorageFormat::Int4G32: unpack_integer_rows<BlockInt4G32x4>(m, out); break;
    case StorageFormat::Int4G128: unpack_integer_rows<BlockInt4G128>(m, out); break;
    case StorageFormat::Int3: unpack_integer_rows<BlockInt3>(m, out); break;
    case StorageFormat::Int2: unpack_integer_rows<BlockInt2>(m, out); break;
    case StorageFormat::Int2Lut:
      for (int64_t r = 0; r < m.rows(); ++r) {
        const TileInt2Lut* tiles = m.row<TileInt2Lut>(r / TileInt2Lut::kRows);
        const int tr = static_cast<int>(r % TileInt2Lut::kRows);
        for (int64_t c = 0; c < m.cols(); ++c) {
          const TileInt2Lut& t = tiles[c / TileInt2Lut::kElements];
          out[static_cast<size_t>(r * m.cols() + c)] =
              static_cast<float>(detail::code(t, tr, static_cast<int>(c % TileInt2Lut::kElements))) * t.scale[tr];
        }
      }
      break;
    case StorageFormat::Mxfp4:
    case StorageFormat::Mxfp4A8: unpack_e2m1_rows<BlockMxfp4x4>(m, out); break;
    case StorageFormat::Nvfp4:
    case StorageFormat::Nvfp4A8: unpack_e2m1_rows<BlockNvfp4x8>(m, out); break;
  }
  return out;
}

}  // namespace lowbit::kernels
