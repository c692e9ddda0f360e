#pragma once
// A weight matrix (rows = output features, cols = input features) packed in one storage format.
// pack() quantizes with lowbit's format library, so unpack(pack(w)) is exactly the fake
// quantization of w in that format (see docs/kernels.md for the definitions).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace lowbit::kernels {

enum class StorageFormat : uint8_t {
  F32,       // plain float32 rows
  Int8,      // BlockInt8: int8 per group of 32, float32 scale (symmetric, min-max)
  Int4G32,   // BlockInt4G32x4
  Int4G128,  // BlockInt4G128
  Int3,      // BlockInt3 (group 32)
  Int2,      // BlockInt2 (group 32), int8 x int2 dot-product kernels
  Int2Lut,   // TileInt2Lut: the same int2 values, laid out for the lookup-table kernel
  Mxfp4,     // BlockMxfp4x4 (lowbit's "mxfp4")
  Nvfp4,     // BlockNvfp4x8 (lowbit's "nvfp4")
  Mxfp4A8,   // BlockMxfp4x4 weights, run on int8 activations (integer dot products, as int4)
  Nvfp4A8,   // BlockNvfp4x8 weights, run on int8 activations
};
inline constexpr StorageFormat kAllStorageFormats[] = {
    StorageFormat::F32,  StorageFormat::Int8,    StorageFormat::Int4G32, StorageFormat::Int4G128, StorageFormat::Int3,
    StorageFormat::Int2, StorageFormat::Int2Lut, StorageFormat::Mxfp4,   StorageFormat::Nvfp4,    StorageFormat::Mxfp4A8,
    StorageFormat::Nvfp4A8};

std::string_view to_string(StorageFormat f);
// Parses the names to_string gives ("f32", "int8", "int4g32", "int4g128", "int3", "int2",
// "int2lut", "mxfp4", "nvfp4", "mxfp4a8", "nvfp4a8"); throws std::invalid_argument naming the
// text otherwise.
StorageFormat parse_storage_format(std::string_view name);
// Integer formats and the "a8" E2M1 formats run on int8-quantized activations; F32, Mxfp4 and
// Nvfp4 on float32 activations.
bool uses_int8_activations(StorageFormat f);
// Weights per scale (columns; 16 for NVFP4, whose structs hold 8 such blocks), and rows per tile
// (64 for Int2Lut, 1 otherwise).
int block_elements(StorageFormat f);
int tile_rows(StorageFormat f);

class PackedMatrix {
 public:
  // Every row is stored padded with zero weights to a multiple of this many columns, so kernels
  // run over whole 128-column chunks.
  static constexpr int64_t kColumnAlign = 128;

  PackedMatrix() = default;
  PackedMatrix(StorageFormat format, int64_t rows, int64_t cols);  // zero-filled storage

  StorageFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t padded_cols() const { return padded_cols_; }
  // Rows rounded up to whole tiles (Int2Lut); equal to rows() otherwise.
  int64_t padded_rows() const { return padded_rows_; }
  // NVFP4's float32 tensor scale (1 otherwise).
  float tensor_scale() const { return tensor_scale_; }
  void set_tensor_scale(float s) { tensor_scale_ = s; }

  // Bytes of one stored row (row formats), or of one 64-row tile row (Int2Lut: a tile's 64 rows).
  size_t row_bytes() const { return row_bytes_; }
  // All weight bytes a GEMV reads.
  size_t size_bytes() const { return size_bytes_; }
  const std::byte* data() const { return data_.get(); }
  std::byte* data() { return data_.get(); }

  // Blocks of row r (row formats); blocks of tile t (Int2Lut).
  template <class Block>
  const Block* row(int64_t r) const {
    return reinterpret_cast<const Block*>(data_.get() + static_cast<size_t>(r) * row_bytes_);
  }
  template <class Block>
  Block* row(int64_t r) {
    return reinterpret_cast<Block*>(data_.get() + static_cast<size_t>(r) * row_bytes_);
  }

 private:
  struct AlignedFree {
    void operator()(std::byte* p) const;
  };
  StorageFormat format_ = StorageFormat::F32;
  int64_t rows_ = 0, cols_ = 0, padded_cols_ = 0, padded_rows_ = 0;
  float tensor_scale_ = 1.0f;
  size_t row_bytes_ = 0, size_bytes_ = 0;
  // 64-byte aligned, with 64 readable bytes after the end (SIMD loads of the last block may overrun).
  std::unique_ptr<std::byte[], AlignedFree> data_;
};

// Quantizes row-major float weights (rows x cols) into `format`. Integer formats: symmetric
// round-to-nearest-even per group of the block size along each row, float32 scale amax / qmax
// (lowbit's Quantizer with granularity group). MXFP4 / NVFP4: lowbit's block formats "mxfp4" and
// "nvfp4" along each row. Throws std::invalid_argument on a size mismatch or a non-finite weight.
PackedMatrix pack(std::span<const float> w, int64_t rows, int64_t cols, StorageFormat format);
// The dequantized weights, row-major rows x cols.
std::vector<float> unpack(const PackedMatrix& m);

}  // namespace lowbit::kernels
