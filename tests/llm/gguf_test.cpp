// GGUF: fp16 and q8_0 bit layouts, the stories260K model through f32 / f16 / q8_0 files (same or
// near perplexity), the embedded tokenizer, and clear errors for truncated or inconsistent files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/format/format.hpp"
#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/gguf.hpp"
#include "lowbit/llm/perplexity.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

TEST(Gguf, Fp16MatchesTheFormatLibrary) {
  // Every binary16 code decodes as lowbit's float16 (e5m10) format says; encoding rounds to the
  // same code as the library's nearest-even quantization.
  const Format f16 = Format::parse("float16");
  const ScalarFormat& s = *f16.scalar();
  for (uint32_t code = 0; code < 65536; ++code) {
    const double ref = s.decode(code);
    const float got = fp16_to_fp32(static_cast<uint16_t>(code));
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(got)) << code;
      continue;
    }
    ASSERT_EQ(static_cast<double>(got), ref) << code;
    ASSERT_EQ(std::signbit(got), std::signbit(ref)) << code;
  }
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    float x;
    const uint32_t bits = (state & 0x8fffffffu) | ((state >> 3 & 0x3) << 28);  // magnitudes around the fp16 range
    std::memcpy(&x, &bits, 4);
    if (!std::isfinite(x)) continue;
    const double q = s.quantize(x, Rounding::NearestEven);
    ASSERT_EQ(static_cast<double>(fp16_to_fp32(fp32_to_fp16(x))), q) << x;
  }
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);
}

TEST(Gguf, Q8_0FollowsGgml) {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i - 16) * 0.25f;  // amax 4: d = 4/127
  x[31] = 4.0f;
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  const float d = 4.0f / 127;
  EXPECT_EQ(b.d, fp32_to_fp16(d));
  for (int i = 0; i < 32; ++i) EXPECT_EQ(b.qs[i], static_cast<int8_t>(std::round(x[i] * (1.0f / d)))) << i;
  EXPECT_EQ(b.qs[31], 127);
  EXPECT_EQ(b.qs[0], -127);
  // roundf: a tie goes away from zero (1.5 * d -> 2, -2.5 * d -> -3), unlike nearest-even.
  float ties[32] = {};
  ties[0] = 127.0f;
  ties[1] = 1.5f;
  ties[2] = -2.5f;
  quantize_row_q8_0(ties, &b, 32);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -3);
  float back[32];
  dequantize_row_q8_0(&b, back, 32);
  EXPECT_EQ(back[0], 127.0f);
  EXPECT_THROW(quantize_row_q8_0(x, &b, 31), std::invalid_argument);
}

double ppl(const LlamaModel& m, const std::vector<int>& tokens, int windows) {
  PerplexityOptions o;
  o.max_windows = windows;
  o.threads = 2;
  return perplexity(m, tokens, o).perplexity;
}

TEST(Gguf, Stories260KRoundTrips) {
  test::TempDir dir;
  const LlamaModel m = load_llama2c(test::model_path());
  const Tokenizer tok = Tokenizer::load_llama2c(test::tokenizer_path());
  const auto tokens = tok.encode(test::read_text(test::text_path()), true, false);
  const int windows = test::test_scale() < 1 ? 3 : 24;
  const double base = ppl(m, tokens, windows);

  save_gguf(m, &tok, dir.file("f32.gguf"), GgmlType::F32);
  const GgufModel f32 = load_gguf(dir.file("f32.gguf"));
  EXPECT_EQ(f32.model.embedding.w, m.embedding.w);
  for (size_t l = 0; l < m.layers.size(); ++l)
    for (LinearKind k : kLinearKinds) ASSERT_EQ(f32.model.layers[l][k].w, m.layers[l][k].w);
  EXPECT_EQ(ppl(f32.model, tokens, windows), base);  // identical weights, identical arithmetic
  // The embedded tokenizer encodes the text identically.
  ASSERT_TRUE(f32.tokenizer.has_value());
  EXPECT_EQ(f32.tokenizer->encode(test::read_text(test::text_path()).substr(0, 5000), true, false),
            tok.encode(test::read_text(test::text_path()).substr(0, 5000), true, false));
  // load_model tells the formats apart.
  EXPECT_TRUE(load_model(dir.file("f32.gguf")).tokenizer.has_value());
  EXPECT_FALSE(load_model(test::model_path()).tokenizer.has_value());

  save_gguf(m, nullptr, dir.file("f16.gguf"), GgmlType::F16);
  const GgufModel f16 = load_gguf(dir.file("f16.gguf"));
  EXPECT_FALSE(f16.tokenizer.has_value());
  EXPECT_NEAR(ppl(f16.model, tokens, windows), base, 0.002 * base);

  save_gguf(m, &tok, dir.file("q8.gguf"), GgmlType::Q8_0);
  const GgufModel q8 = load_gguf(dir.file("q8.gguf"));
  EXPECT_NE(q8.model.layers[0][LinearKind::Wq].w, m.layers[0][LinearKind::Wq].w);
  EXPECT_NEAR(ppl(q8.model, tokens, windows), base, 0.005 * base);
  // w2 has rows of 172 values: not whole q8_0 blocks, so it is stored as f16.
  for (size_t i = 0; i < m.layers[0][LinearKind::W2].w.size(); ++i)
    ASSERT_EQ(q8.model.layers[0][LinearKind::W2].w[i], fp16_to_fp32(fp32_to_fp16(m.layers[0][LinearKind::W2].w[i])));
}

TEST(Gguf, TruncatedAndInconsistentFilesGiveClearErrors) {
  test::TempDir dir;
  const LlamaModel m = load_llama2c(test::model_path());
  const Tokenizer tok = Tokenizer::load_llama2c(test::tokenizer_path());
  save_gguf(m, &tok, dir.file("q8.gguf"), GgmlType::Q8_0);
  const auto bytes = test::read_bytes(dir.file("q8.gguf"));
  auto expect_refused = [&](const std::string& p) {
    try {
      (void)load_gguf(p);
      FAIL() << p << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  const size_t step = test::test_scale() < 1 ? bytes.size() / 7 : bytes.size() / 97;
  for (size_t keep = 0; keep < bytes.size(); keep += step) {
    test::write_bytes(dir.file("cut.gguf"), bytes, keep);
    SCOPED_TRACE(keep);
    expect_refused(dir.file("cut.gguf"));
  }
  for (size_t keep : {size_t{3}, size_t{8}, size_t{23}, size_t{24}, size_t{40}, bytes.size() - 1}) {
    test::write_bytes(dir.file("cut.gguf"), bytes, keep);
    expect_refused(dir.file("cut.gguf"));
  }
  // A huge metadata count and a huge string length in the header.
  auto patched = [&](size_t at, uint64_t value) {
    auto b = bytes;
    std::memcpy(b.data() + at, &value, 8);
    test::write_bytes(dir.file("bad.gguf"), b, b.size());
    return dir.file("bad.gguf");
  };
  expect_refused(patched(8, uint64_t{1} << 60));   // tensor count
  expect_refused(patched(16, uint64_t{1} << 60));  // metadata count
  expect_refused(patched(24, uint64_t{1} << 62));  // first key's length
  // A tokenizer that does not match the model's vocabulary cannot be written into it.
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < 100; ++i) {
    pieces.push_back(tok.piece(i));
    scores.push_back(tok.score(i));
  }
  const Tokenizer small(pieces, scores, "small");
  EXPECT_THROW(save_gguf(m, &small, dir.file("x.gguf"), GgmlType::F32), std::runtime_error);
  // A llama2.c file is not GGUF.
  expect_refused(test::model_path());
}


// Little-endian GGUF header pieces for crafted files.
struct GgufBytes {
  std::vector<char> bytes;
  template <class T>
  GgufBytes& put(T v) {
    const char* p = reinterpret_cast<const char*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  GgufBytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  // magic, version 3, no tensors, one metadata pair whose value is an array of `type` x `length`.
  static GgufBytes array_header(uint32_t type, uint64_t length) {
    GgufBytes g;
    g.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
    g.str("crafted.array").put<uint32_t>(9).put<uint32_t>(type).put<uint64_t>(length);
    return g;
  }
};

// Every count in the file is bounded by the bytes left before anything is allocated for it:
// crafted lengths give an error naming the file (they used to reach std::bad_alloc).
TEST(Gguf, CraftedCountsGiveClearErrorsNotBadAlloc) {
  test::TempDir dir;
  auto expect_refused = [&](const GgufBytes& g, const std::string& needle) {
    const std::string p = dir.file("crafted.gguf");
    test::write_bytes(p, g.bytes, g.bytes.size());
    try {
      (void)load_gguf(p);
      FAIL() << "accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // u64 elements (type 10) take 8 bytes each: 1000 bytes left hold 125, not 1000.
  GgufBytes u64s = GgufBytes::array_header(10, 1000);
  u64s.bytes.resize(u64s.bytes.size() + 1000, 0);
  expect_refused(u64s, "array elements");
  // Strings (type 8) and nested arrays (type 9) take at least 8 and 12 bytes.
  GgufBytes strings = GgufBytes::array_header(8, 200);
  strings.bytes.resize(strings.bytes.size() + 1000, 0);
  expect_refused(strings, "array elements");
  GgufBytes nested = GgufBytes::array_header(9, 100);
  nested.bytes.resize(nested.bytes.size() + 1000, 0);
  expect_refused(nested, "array elements");
  // Lengths near 2^64 (no overflow in the size arithmetic).
  expect_refused(GgufBytes::array_header(0, ~uint64_t{0}), "array elements");
  expect_refused(GgufBytes::array_header(10, uint64_t{1} << 61), "array elements");
  // An array longer than any real metadata (2^24 + 1 one-byte values, all present in the file) is
  // refused before 2^24 values are held in memory.
  if (test::test_scale() >= 1) {
    GgufBytes long_array = GgufBytes::array_header(0, (uint64_t{1} << 24) + 1);
    long_array.bytes.resize(long_array.bytes.size() + (size_t{1} << 24) + 1, 0);
    expect_refused(long_array, "metadata array of 16777217 values");
  }

  // A header whose model sizes ask for far more weights than the file holds (2^20 layers of SwiGLU
  // width 2^20: 2^46 zero weights) is refused before the model is allocated.
  const LlamaModel m = load_llama2c(test::model_path());
  save_gguf(m, nullptr, dir.file("f32.gguf"), GgmlType::F32);
  auto bytes = test::read_bytes(dir.file("f32.gguf"));
  auto set_u32 = [&](const std::string& key, uint32_t expected, uint32_t value) {
    const auto at = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
    ASSERT_NE(at, bytes.end()) << key;
    const size_t value_at = static_cast<size_t>(at - bytes.begin()) + key.size() + 4;  // after the u32 type
    uint32_t old = 0;
    std::memcpy(&old, bytes.data() + value_at, 4);
    ASSERT_EQ(old, expected) << key;
    std::memcpy(bytes.data() + value_at, &value, 4);
  };
  set_u32("llama.feed_forward_length", 172, 1u << 20);
  set_u32("llama.block_count", 5, 1u << 20);
  GgufBytes huge;
  huge.bytes = bytes;
  expect_refused(huge, "weights");
}

}  // namespace
}  // namespace lowbit::llm
