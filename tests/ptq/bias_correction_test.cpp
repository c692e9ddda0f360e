// Empirical bias correction on the real ResNet-20 with coarse per-tensor weights.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/quantize_graph.hpp"

namespace lowbit {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

// Per-channel means of a value over the calibration batches.
std::vector<double> channel_means(const Graph& g, const std::string& value, const std::vector<Tensor>& batches) {
  Session s(g, SessionOptions{2, false});
  std::vector<double> sum;
  double count = 0;
  s.set_value_hook({value}, [&](const std::string&, const Tensor& t) {
    int64_t n = t.dim(0), c = t.dim(1), inner = t.size() / (n * c);
    sum.resize(static_cast<size_t>(c));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t k = 0; k < inner; ++k) sum[static_cast<size_t>(ch)] += t.data<float>()[(i * c + ch) * inner + k];
    count += static_cast<double>(n * inner);
  });
  for (const Tensor& b : batches) s.run(b);
  for (double& v : sum) v /= count;
  return sum;
}

TEST(BiasCorrection, RemovesTheMeanShiftAndHelpsAccuracy) {
  ModelCard card = *find_model_card(kResnet20);
  ImageDataset calib = calibration_set(card);
  CalibrationFeed feed = calibration_feed(calib, card.preprocess, 256, 64, 2);
  std::vector<Tensor> batches;
  feed([&](Tensor x) { batches.push_back(std::move(x)); });
  Graph g = load_onnx(kResnet20);
  const char* base = R"({"weights": {"format": "int4", "granularity": "tensor"}})";
  nlohmann::json with = nlohmann::json::parse(base);
  with["passes"] = nlohmann::json::array({{{"name", "bias_correction"}}});
  QuantizeGraphResult plain = quantize_graph(g, QuantRecipe::from_json(nlohmann::json::parse(base)), feed, 2);
  QuantizeGraphResult corrected = quantize_graph(g, QuantRecipe::from_json(with), feed, 2);
  ASSERT_TRUE(corrected.bias_correction.has_value());
  EXPECT_EQ(corrected.bias_correction->layers, 20);  // 19 convs and the Gemm
  EXPECT_GT(corrected.bias_correction->mean_abs_shift, 0.0);

  // The first layer sees float inputs: after correction its output means equal the float ones.
  Graph reference = g;
  fold_batch_norm(reference);
  const std::string first = corrected.layers.front().output;
  std::vector<double> want = channel_means(reference, first, batches), before = channel_means(plain.graph, first, batches),
                      after = channel_means(corrected.graph, first, batches);
  double shift_before = 0, shift_after = 0;
  for (size_t c = 0; c < want.size(); ++c) {
    shift_before += std::fabs(before[c] - want[c]);
    shift_after += std::fabs(after[c] - want[c]);
    EXPECT_NEAR(after[c], want[c], 1e-4 * (1 + std::fabs(want[c])));
  }
  EXPECT_LT(shift_after, 0.01 * shift_before);

  // And accuracy on held-out images improves.
  ImageDataset eval = spread_subset(without(auto_detect(card.eval_data), calib), 2000);
  auto top1 = [&](const Graph& q) {
    Session s(q, SessionOptions{2, true});
    return evaluate_classifier(s, eval, card.preprocess, ClassifyOptions{64, 2, false, "bc", {}}).top1();
  };
  double acc_plain = top1(plain.graph), acc_corrected = top1(corrected.graph);
  std::printf("ResNet-20, int4 per-tensor weights: top-1 %.2f %% without bias correction, %.2f %% with\n", acc_plain, acc_corrected);
  EXPECT_GT(acc_corrected, acc_plain + 1.0);
}

}  // namespace
}  // namespace lowbit
