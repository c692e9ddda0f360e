// Quantization of stories260K: configuration parsing, pruning structure, and sane perplexities
// (GPTQ no worse than round-to-nearest, W8 and KIVI-4 close to fp32), on a prefix of the text
// with calibration from the text's last windows.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/evaluate.hpp"
#include "lowbit/llm/tokenizer.hpp"
#include "lowbit/ptq/gptq.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

double ppl(const std::string& config) {
  EvalSetup s;
  s.max_windows = test::test_scale() < 1 ? 4 : 20;
  s.calib_windows = test::test_scale() < 1 ? 2 : 8;
  s.threads = 2;
  return evaluate_config(test::stories_and_text().model, test::stories_and_text().tokens, parse_quant_config(config), s).all.perplexity;
}

TEST(QuantConfig, ParsesTextAndJson) {
  const auto c = parse_quant_config("w=int4; group=128; method=gptq; a=int8; smooth=0.5; kv=kivi2");
  ASSERT_TRUE(c.weights && c.weights->scalar());
  EXPECT_EQ(c.group, 128);
  EXPECT_EQ(c.method, WeightMethod::Gptq);
  EXPECT_EQ(c.kv.kind, KvQuantKind::Kivi);
  EXPECT_EQ(c.kv.bits, 2);
  EXPECT_TRUE(c.needs_calibration());
  EXPECT_EQ(parse_quant_config(c.to_string()).to_string(), c.to_string());
  const auto j = parse_quant_config(R"({"name": "x", "w": "nvfp4", "kv": "fp8", "sparsity": "2:4", "prune": "sparsegpt"})");
  EXPECT_TRUE(j.weights->block());
  EXPECT_EQ(j.kv.kind, KvQuantKind::PerToken);
  EXPECT_EQ(j.sparse_n, 2);
  EXPECT_EQ(parse_quant_config("").to_string(), "fp32");
  for (const char* bad : {"w=int99", "group=-1", "method=adaround", "sparsity=5:4", "kv=kivi0", "smooth=0.5", "w=mxfp4;group=32",
                          "w=int4;method=gptq;sparsity=2:4", "bogus=1", "w", "{not json"})
    EXPECT_THROW(parse_quant_config(bad), std::invalid_argument) << bad;
}

TEST(Pruning, NofMStructureAndSparseGptBeatsMagnitude) {
  const auto& m = test::stories_and_text().model;
  const Linear& lin = m.layers[1][LinearKind::W1];  // 172 x 64
  // A Hessian from the layer's real inputs.
  HessianAccumulator h(lin.cols);
  Decoder d(m);
  d.set_observer([&](int l, LinearKind k, const float* x, int64_t rows, int64_t) {
    if (l == 1 && k == LinearKind::W1) h.add(x, rows);
  });
  const auto windows = perplexity_windows(test::stories_and_text().tokens, 512);
  for (int w = 0; w < 4; ++w) {
    d.reset();
    d.forward(windows[static_cast<size_t>(w)].first(512));
  }
  for (auto [n, mm] : {std::pair{2, 4}, std::pair{4, 8}}) {
    auto mag = lin.w, sgpt = lin.w;
    prune_magnitude(mag, lin.rows, lin.cols, n, mm);
    prune_sparsegpt(sgpt, lin.rows, lin.cols, h.hessian(), n, mm);
    for (int64_t r = 0; r < lin.rows; ++r)
      for (int64_t g = 0; g < lin.cols; g += mm) {
        int zeros_mag = 0, zeros_sgpt = 0;
        for (int j = 0; j < mm; ++j) {
          zeros_mag += mag[static_cast<size_t>(r * lin.cols + g + j)] == 0;
          zeros_sgpt += sgpt[static_cast<size_t>(r * lin.cols + g + j)] == 0;
        }
        ASSERT_EQ(zeros_mag, mm - n);
        ASSERT_GE(zeros_sgpt, mm - n);
      }
    // The magnitude mask keeps the largest of each group.
    for (int j = 0; j < mm; ++j) {
      if (mag[static_cast<size_t>(j)] != 0) continue;
      for (int k = 0; k < mm; ++k) {
        if (mag[static_cast<size_t>(k)] != 0) {
          EXPECT_GE(std::fabs(lin.w[static_cast<size_t>(k)]), std::fabs(lin.w[static_cast<size_t>(j)]));
        }
      }
    }
    // SparseGPT's output error on the calibration inputs is well below magnitude pruning's.
    const double e_mag = layer_output_error(lin.w, mag, lin.rows, lin.cols, h.hessian());
    const double e_sgpt = layer_output_error(lin.w, sgpt, lin.rows, lin.cols, h.hessian());
    EXPECT_LT(e_sgpt, 0.8 * e_mag) << n << ":" << mm;
  }
}

TEST(QuantizedPerplexity, SaneOrdering) {
  const double fp32 = ppl("");
  const double w8 = ppl("w=int8");
  const double kivi4 = ppl("kv=kivi4");
  const double rtn = ppl("w=int4;group=128");
  const double gptq = ppl("w=int4;group=128;method=gptq");
  EXPECT_LT(std::fabs(w8 / fp32 - 1), 0.005) << w8 << " vs " << fp32;
  EXPECT_LT(std::fabs(kivi4 / fp32 - 1), 0.01) << kivi4 << " vs " << fp32;
  EXPECT_LE(gptq, rtn);
  EXPECT_GT(rtn, fp32);  // 4 bits cost something
  if (test::test_scale() < 1) return;
  // KIVI-2 costs more than KIVI-4; per-token int8 KV beats per-token fp8 (3 mantissa bits, every
  // token quantized); SmoothQuant W8A8 stays close to fp32.
  EXPECT_GT(ppl("kv=kivi2"), kivi4);
  const double kv_int8 = ppl("kv=int8"), kv_fp8 = ppl("kv=fp8");
  EXPECT_LT(std::fabs(kv_int8 / fp32 - 1), 0.01);
  EXPECT_LT(kv_int8, kv_fp8);
  EXPECT_LT(kv_fp8 / fp32 - 1, 0.05);
  EXPECT_LT(std::fabs(ppl("w=int8;a=int8;smooth=0.5") / fp32 - 1), 0.01);
}

TEST(QuantizedPerplexity, TextTooShortIsRefused) {
  // No window to score: a clear error, also for configurations that calibrate on the text.
  EvalSetup s;
  s.window = 8;
  const std::vector<int> one_token = {Tokenizer::kBos};
  for (const char* config : {"", "w=int4;group=32;method=gptq"})
    EXPECT_THROW(evaluate_config(test::stories_and_text().model, one_token, parse_quant_config(config), s), std::invalid_argument) << config;
}

TEST(QuantizedPerplexity, BlockAndBitmodFormatsRun) {
  const double fp32 = ppl("");
  for (const char* c : {"w=mxfp4", "w=nvfp4", "w=bitmod_fp4", "sparsity=2:4;prune=sparsegpt;w=int8"}) {
    if (test::test_scale() < 1 && std::string(c) != "w=mxfp4") continue;
    const double p = ppl(c);
    EXPECT_TRUE(std::isfinite(p)) << c;
    EXPECT_GT(p, fp32) << c;
  }
}

}  // namespace
}  // namespace lowbit::llm
