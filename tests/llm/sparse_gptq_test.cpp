// SparseGPT's joint pruning and quantization (sparsity=N:M;prune=sparsegpt;method=gptq) on real
// stories260K layers with Hessians from their real inputs: the N:M structure holds, the kept weights
// lie on the quantization grid, and the output error is no worse than pruning with SparseGPT and
// then rounding to nearest (the configuration without method=gptq) summed over 14 real layers.
// Layer by layer the pruning error dominates (about 95 % of either) and the joint pass's masks
// differ: 12 of 14 layers come out better, layer 0's wq and wk 1 - 4 % worse (6 % with the one
// calibration window of LOWBIT_TEST_SCALE=0.1), hence 1.1 per layer; the sum is the claim.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/evaluate.hpp"
#include "lowbit/llm/tokenizer.hpp"
#include "lowbit/ptq/gptq.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

constexpr const char* kJoint = "sparsity=2:4;prune=sparsegpt;w=int4;group=32;method=gptq";
constexpr const char* kPruneThenRtn = "sparsity=2:4;prune=sparsegpt;w=int4;group=32";

// Hessians of every block Linear of `layer` from its inputs on the first windows of the text.
std::vector<HessianAccumulator> layer_hessians(int layer, int windows) {
  const LlamaModel& m = test::stories_and_text().model;
  std::vector<HessianAccumulator> h;
  for (LinearKind k : kLinearKinds) h.emplace_back(m.layers[static_cast<size_t>(layer)][k].cols);
  Decoder d(m);
  d.set_observer([&](int l, LinearKind k, const float* x, int64_t rows, int64_t) {
    if (l == layer) h[static_cast<size_t>(k)].add(x, rows);
  });
  const auto all = perplexity_windows(test::stories_and_text().tokens, 512);
  for (int w = 0; w < windows; ++w) {
    d.reset();
    d.forward(all[static_cast<size_t>(w)].first(all[static_cast<size_t>(w)].size() - 1));
  }
  return h;
}

TEST(SparseGptq, ConfigIsAccepted) {
  const LlmQuantConfig c = parse_quant_config(kJoint);
  EXPECT_EQ(c.method, WeightMethod::Gptq);
  EXPECT_EQ(c.prune, PruneMethod::SparseGpt);
  EXPECT_TRUE(c.needs_calibration());
  EXPECT_EQ(parse_quant_config(c.to_string()).to_string(), c.to_string());
  // Magnitude pruning then GPTQ would refill the pruned weights: refused with a pointer to sparsegpt.
  try {
    parse_quant_config("sparsity=2:4;w=int4;method=gptq");
    FAIL() << "accepted GPTQ with magnitude pruning";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("prune=sparsegpt"), std::string::npos) << e.what();
  }
}

TEST(SparseGptq, NoWorseThanPruneThenRoundToNearestOnRealLayers) {
  const LlamaModel& m = test::stories_and_text().model;
  const LlmQuantConfig rtn_cfg = parse_quant_config(kPruneThenRtn);
  QuantizerConfig qcfg(Format::parse("int4"));  // as w=int4;group=32
  qcfg.granularity = Granularity::Group;
  qcfg.axis = 1;
  qcfg.group_size = 32;
  const std::vector<int> layers = test::test_scale() < 1 ? std::vector<int>{0} : std::vector<int>{0, 3};
  double sum_joint = 0, sum_rtn = 0;
  for (int layer : layers) {
    const auto hessians = layer_hessians(layer, test::test_scale() < 1 ? 1 : 4);
    for (LinearKind k : kLinearKinds) {
      const Linear& lin = m.layers[static_cast<size_t>(layer)][k];
      const auto& h = hessians[static_cast<size_t>(k)].hessian();
      Linear separate = lin;
      prune_sparsegpt(separate.w, lin.rows, lin.cols, h, 2, 4);
      quantize_weights_rtn(separate, rtn_cfg);
      std::vector<float> joint = lin.w;
      prune_quantize_sparsegpt(joint, lin.rows, lin.cols, h, 2, 4, qcfg);

      // 2:4 structure, and the kept weights of every row's group of 32 on one int4 grid: some scale
      // s makes every one an integer multiple k s with |k| <= 8.
      for (int64_t r = 0; r < lin.rows; ++r) {
        const float* row = joint.data() + r * lin.cols;
        for (int64_t g = 0; g < lin.cols; g += 4)
          ASSERT_GE(std::count(row + g, row + std::min(g + 4, lin.cols), 0.0f), 2) << to_string(k) << " row " << r << " col " << g;
        for (int64_t g = 0; g < lin.cols; g += 32) {
          const int64_t end = std::min(g + 32, lin.cols);
          const float largest = std::fabs(*std::max_element(row + g, row + end, [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
          bool on_grid = largest == 0;
          for (int steps = 1; steps <= 8 && !on_grid; ++steps) {
            const double scale = largest / steps;
            on_grid = std::all_of(row + g, row + end, [&](float v) { return std::fabs(v / scale - std::nearbyint(v / scale)) < 1e-4; });
          }
          ASSERT_TRUE(on_grid) << to_string(k) << " row " << r << " group at " << g;
        }
      }

      const double e_joint = layer_output_error(lin.w, joint, lin.rows, lin.cols, h);
      const double e_rtn = layer_output_error(lin.w, separate.w, lin.rows, lin.cols, h);
      EXPECT_LE(e_joint, 1.1 * e_rtn) << "layer " << layer << " " << to_string(k);
      std::cout << "layer " << layer << " " << to_string(k) << ": output error joint " << e_joint << ", prune then RTN " << e_rtn << "\n";
      sum_joint += e_joint;
      sum_rtn += e_rtn;
    }
  }
  EXPECT_LE(sum_joint, sum_rtn);
}

// The whole model through quantize_model (calibration from the text's last windows, layer by layer):
// perplexity on the first windows no worse than pruning then rounding (full text: 39.00 vs 45.75).
TEST(SparseGptq, PerplexityNoWorseThanPruneThenRoundToNearest) {
  EvalSetup s;
  s.max_windows = test::test_scale() < 1 ? 2 : 24;
  s.calib_windows = test::test_scale() < 1 ? 4 : 16;  // the protocol's calibration; 8 windows are too few to tell
  s.threads = 2;
  const double joint = evaluate_config(test::stories_and_text().model, test::stories_and_text().tokens, parse_quant_config(kJoint), s).all.perplexity;
  const double separate = evaluate_config(test::stories_and_text().model, test::stories_and_text().tokens, parse_quant_config(kPruneThenRtn), s).all.perplexity;
  std::cout << "perplexity joint " << joint << ", prune then RTN " << separate << "\n";
  EXPECT_LE(joint, separate);
}

}  // namespace
}  // namespace lowbit::llm
