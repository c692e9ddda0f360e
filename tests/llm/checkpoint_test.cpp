// llama2.c checkpoints: the real legacy file, round trips through versions 0, 1 and 2, and clear
// errors for truncated or inconsistent files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lowbit/llm/checkpoint.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

using test::TempDir;

TEST(Llama2cCheckpoint, LoadsStories260K) {
  const LlamaModel m = load_llama2c(test::model_path());
  const LlamaConfig& c = m.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_EQ(c.kv_dim(), 32);
  // The legacy header's vocab size is positive for this file: the classifier is the embedding.
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(m.classifier.w, m.embedding.w);
  for (const auto& l : m.layers) {
    EXPECT_EQ(l[LinearKind::Wk].rows, 32);
    EXPECT_EQ(l[LinearKind::W2].cols, 172);
    for (float v : l.rms_att) ASSERT_TRUE(std::isfinite(v));
  }
  // Norm weights of a trained model are mostly well away from zero.
  double mean = 0;
  for (float v : m.rms_final) mean += std::fabs(v);
  EXPECT_GT(mean / m.rms_final.size(), 0.1);
}

void expect_same_weights(const LlamaModel& a, const LlamaModel& b, float tol) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  auto near = [&](const std::vector<float>& x, const std::vector<float>& y, const char* what) {
    ASSERT_EQ(x.size(), y.size()) << what;
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], tol) << what << " element " << i;
  };
  near(a.embedding.w, b.embedding.w, "embedding");
  near(a.classifier.w, b.classifier.w, "classifier");
  near(a.rms_final, b.rms_final, "rms_final");
  for (size_t l = 0; l < a.layers.size(); ++l) {
    near(a.layers[l].rms_att, b.layers[l].rms_att, "rms_att");
    near(a.layers[l].rms_ffn, b.layers[l].rms_ffn, "rms_ffn");
    for (LinearKind k : kLinearKinds) near(a.layers[l][k].w, b.layers[l][k].w, std::string(to_string(k)).c_str());
  }
}

TEST(Llama2cCheckpoint, LegacyRoundTripIsByteExactInTheWeights) {
  TempDir dir;
  const LlamaModel m = load_llama2c(test::model_path());
  save_llama2c(m, dir.file("v0.bin"), 0);
  const auto original = test::read_bytes(test::model_path()), written = test::read_bytes(dir.file("v0.bin"));
  ASSERT_EQ(original.size(), written.size());
  expect_same_weights(m, load_llama2c(dir.file("v0.bin")), 0.0f);
}

TEST(Llama2cCheckpoint, Version1RoundTrip) {
  TempDir dir;
  LlamaModel m = load_llama2c(test::model_path());
  save_llama2c(m, dir.file("v1.bin"), 1);
  const auto bytes = test::read_bytes(dir.file("v1.bin"));
  uint32_t magic;
  std::memcpy(&magic, bytes.data(), 4);
  EXPECT_EQ(magic, kLlama2cMagic);
  EXPECT_EQ(bytes.size(), 256 + 4 * m.parameter_count());
  expect_same_weights(m, load_llama2c(dir.file("v1.bin")), 0.0f);
  // An unshared classifier is stored after the layers.
  m.config.shared_classifier = false;
  m.classifier.w[5] += 1.0f;
  save_llama2c(m, dir.file("v1u.bin"), 1);
  const LlamaModel u = load_llama2c(dir.file("v1u.bin"));
  EXPECT_FALSE(u.config.shared_classifier);
  expect_same_weights(m, u, 0.0f);
}

TEST(Llama2cCheckpoint, Version2Q8RoundTripWithinHalfAStep) {
  TempDir dir;
  const LlamaModel m = load_llama2c(test::model_path());
  save_llama2c(m, dir.file("v2.bin"), 2);
  const LlamaModel q = load_llama2c(dir.file("v2.bin"));
  // Groups of 64 (dim 64 divides it): every value within half a step (amax / 254) of the original.
  auto check = [](const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t g = 0; g < a.size(); g += 64) {
      float amax = 0;
      for (size_t i = g; i < g + 64; ++i) amax = std::max(amax, std::fabs(a[i]));
      for (size_t i = g; i < g + 64; ++i) ASSERT_LE(std::fabs(a[i] - b[i]), amax / 254 * 1.0001f + 1e-12f);
    }
  };
  check(m.embedding.w, q.embedding.w);
  for (size_t l = 0; l < m.layers.size(); ++l)
    for (LinearKind k : kLinearKinds) check(m.layers[l][k].w, q.layers[l][k].w);
  EXPECT_EQ(m.layers[2].rms_ffn, q.layers[2].rms_ffn);  // norms stay float32
}

// Every truncation of a checkpoint, and every header that disagrees with the size, is refused with
// a message naming the file.
void expect_refused(const std::string& path) {
  try {
    (void)load_llama2c(path);
    FAIL() << path << " was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Llama2cCheckpoint, TruncatedFilesGiveClearErrors) {
  TempDir dir;
  const LlamaModel m = load_llama2c(test::model_path());
  for (int version : {0, 1, 2}) {
    const std::string full = dir.file("full" + std::to_string(version) + ".bin");
    save_llama2c(m, full, version);
    const auto bytes = test::read_bytes(full);
    for (size_t keep : {size_t{0}, size_t{3}, size_t{20}, size_t{100}, size_t{256}, size_t{300}, bytes.size() / 2, bytes.size() - 4,
                        bytes.size() - 1}) {
      const std::string cut = dir.file("cut.bin");
      test::write_bytes(cut, bytes, keep);
      SCOPED_TRACE("version " + std::to_string(version) + ", " + std::to_string(keep) + " bytes");
      expect_refused(cut);
    }
    // Trailing bytes are as wrong as missing ones.
    auto longer = bytes;
    longer.push_back(0);
    test::write_bytes(dir.file("long.bin"), longer, longer.size());
    expect_refused(dir.file("long.bin"));
  }
}

TEST(Llama2cCheckpoint, InconsistentHeadersGiveClearErrors) {
  TempDir dir;
  const auto bytes = test::read_bytes(test::model_path());
  auto with_field = [&](int index, int32_t value) {
    auto b = bytes;
    std::memcpy(b.data() + 4 * index, &value, 4);
    const std::string p = dir.file("bad" + std::to_string(index) + "_" + std::to_string(value) + ".bin");
    test::write_bytes(p, b, b.size());
    return p;
  };
  expect_refused(with_field(0, 65));          // dim: not a multiple of the heads, and the size
  expect_refused(with_field(0, 128));         // dim consistent with heads, not with the size
  expect_refused(with_field(1, 200));         // hidden_dim
  expect_refused(with_field(2, 6));           // layers
  expect_refused(with_field(4, 3));           // kv heads do not divide heads
  expect_refused(with_field(5, -512));        // an unshared classifier that is not there
  expect_refused(with_field(5, INT32_MIN));   // no absolute value
  expect_refused(with_field(6, 1 << 30));     // seq_len beyond any model
  expect_refused(with_field(2, 0));
}

}  // namespace
}  // namespace lowbit::llm
