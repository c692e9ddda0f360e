// pack() quantizes with lowbit's format library: the packed weights decode to exactly lowbit's
// fake quantization (block formats) or the Quantizer's integers times their scales.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/format/format.hpp"
#include "lowbit/kernels/blocks.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "tests/kernels/test_data.hpp"

namespace lowbit::kernels {
namespace {

std::vector<test::Matrix> test_matrices() {
  const test::Stories260K s = test::load_stories260k();
  std::vector<test::Matrix> out = {s.wq, s.w1, s.w2};
  uint32_t seed = 1;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 31}, {7, 100}, {65, 129}, {130, 300}})
    out.push_back({"random", rows, cols, test::random_weights(rows * cols, seed++)});
  return out;
}

void expect_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i]) && mismatches++ < 5)
      ADD_FAILURE() << what << " element " << i << ": unpacked " << got[i] << ", fake quantization " << want[i];
  EXPECT_EQ(mismatches, 0u) << what;
}

TEST(Pack, BlockFormatsDecodeToLowbitFakeQuantization) {
  for (auto [format, spec] : {std::pair{StorageFormat::Mxfp4, "mxfp4"}, std::pair{StorageFormat::Nvfp4, "nvfp4"},
                              std::pair{StorageFormat::Mxfp4A8, "mxfp4"}, std::pair{StorageFormat::Nvfp4A8, "nvfp4"}})
    for (const test::Matrix& m : test_matrices()) {
      const int64_t shape[] = {m.rows, m.cols};
      std::vector<float> want(m.values.size());
      fake_quant(Format::parse(spec), m.values, want, shape);
      expect_bitwise_equal(unpack(pack(m.values, m.rows, m.cols, format)), want,
                           fmt::format("{} {} {}x{}", spec, m.name, m.rows, m.cols));
    }
}

TEST(Pack, IntegerFormatsDecodeToTheQuantizersIntegers) {
  const std::pair<StorageFormat, int> formats[] = {{StorageFormat::Int8, 8},    {StorageFormat::Int4G32, 4},
                                                   {StorageFormat::Int4G128, 4}, {StorageFormat::Int3, 3},
                                                   {StorageFormat::Int2, 2},    {StorageFormat::Int2Lut, 2}};
  for (auto [format, bits] : formats)
    for (const test::Matrix& m : test_matrices()) {
      QuantizerConfig config(Format::parse(fmt::format("int{}", bits)));
      config.granularity = Granularity::Group;
      config.axis = 1;
      config.group_size = block_elements(format);
      Quantizer quantizer(config);
      const int64_t shape[] = {m.rows, m.cols};
      quantizer.observe(m.values, shape);
      std::vector<int32_t> q(m.values.size());
      quantizer.quantize_to_integers(m.values, q, shape);
      std::vector<float> want(m.values.size()), fake(m.values.size());
      quantizer.dequantize_integers(q, want, shape);
      quantizer.fake_quant(m.values, fake, shape);
      const std::vector<float> got = unpack(pack(m.values, m.rows, m.cols, format));
      const std::string what = fmt::format("{} {} {}x{}", to_string(format), m.name, m.rows, m.cols);
      expect_bitwise_equal(got, want, what);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], fake[i]) << what << " element " << i;
    }
}

TEST(Pack, CodesCoverTheFormatsRange) {
  // Rows of -7..7 (scale amax / 7 = 1): every symmetric int4 value comes back exactly.
  std::vector<float> w(2 * 128);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 15) - 7);
  for (StorageFormat f : {StorageFormat::Int4G32, StorageFormat::Int4G128})
    EXPECT_EQ(unpack(pack(w, 2, 128, f)), w) << to_string(f);
}

TEST(Pack, TablesAgreeWithTheFormatLibrary) {
  const ScalarFormat e2m1 = *Format::parse("float4_e2m1fn").scalar();
  for (uint32_t c = 0; c < 16; ++c)
    EXPECT_EQ(std::bit_cast<uint32_t>(kE2m1Values[c]), std::bit_cast<uint32_t>(static_cast<float>(e2m1.decode(c)))) << c;
}

TEST(Pack, SizesAndPadding) {
  const PackedMatrix m(StorageFormat::Int4G32, 3, 130);
  EXPECT_EQ(m.padded_cols(), 256);
  EXPECT_EQ(m.row_bytes(), 2 * sizeof(BlockInt4G32x4));
  EXPECT_EQ(m.size_bytes(), 3 * 2 * sizeof(BlockInt4G32x4));
  const PackedMatrix lut(StorageFormat::Int2Lut, 65, 32);
  EXPECT_EQ(lut.padded_rows(), 128);
  EXPECT_EQ(lut.size_bytes(), 2 * 4 * sizeof(TileInt2Lut));
  for (StorageFormat f : kAllStorageFormats) EXPECT_EQ(parse_storage_format(to_string(f)), f);
}

TEST(Pack, BadInputIsRefusedWithAMessage) {
  std::vector<float> w(12, 1.0f);
  EXPECT_THROW(pack(w, 5, 3, StorageFormat::Int8), std::invalid_argument);
  EXPECT_THROW(pack(w, 0, 12, StorageFormat::Int8), std::invalid_argument);
  w[7] = std::numeric_limits<float>::quiet_NaN();
  try {
    pack(w, 3, 4, StorageFormat::Mxfp4);
    ADD_FAILURE() << "a NaN weight was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1, col 3"), std::string::npos) << e.what();
  }
  try {
    parse_storage_format("int5");
    ADD_FAILURE() << "int5 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'int5'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit::kernels
