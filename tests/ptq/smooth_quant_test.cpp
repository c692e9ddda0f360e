// SmoothQuant on the real MobileNet v1: the float function is kept, alpha = 1 flattens the pointwise
// layers' input channels completely, and a recipe naming it runs.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/ptq/smooth_quant.hpp"

namespace lowbit {
namespace {

const std::string kMobilenet = std::string(LOWBIT_SHARED_DATA) + "/models/mobilenet_v1_0.75_224.onnx";

std::vector<Tensor> calibration(size_t images) {
  ModelCard card = *find_model_card(kMobilenet);
  std::vector<Tensor> out;
  calibration_feed(calibration_set(card), card.preprocess_for(card.calibration_data), images, 8, 2)([&](Tensor x) { out.push_back(std::move(x)); });
  return out;
}

std::vector<float> logits(const Graph& g, const Tensor& x) {
  Session s(g, SessionOptions{2, false});
  Tensor y = s.run(x).at(0);
  return {y.data<float>(), y.data<float>() + y.size()};
}

TEST(SmoothQuant, KeepsTheFloatFunctionAndFlattensTheChannels) {
  std::vector<Tensor> data = calibration(16);
  Graph g = load_onnx(kMobilenet);
  fold_batch_norm(g);
  const std::vector<float> want = logits(g, data[0]);
  Graph smoothed = g;
  SmoothQuantReport r = smooth_quant(smoothed, data, SmoothQuantOptions{0.5}, 2);
  EXPECT_EQ(r.layers.size(), 14u);  // 13 pointwise convolutions and the 1x1 classifier
  const std::vector<float> got = logits(smoothed, data[0]);
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    norm = std::max(norm, std::fabs(static_cast<double>(want[i])));
  }
  EXPECT_LT(err, 1e-4 * norm);
  // alpha = 1 moves all of the activations' spread into the weights: every channel's range is 1.
  Graph flat = g;
  SmoothQuantReport all = smooth_quant(flat, data, SmoothQuantOptions{1.0}, 2);
  EXPECT_GT(all.activation_spread_before, 1.2);  // ReLU6 caps many channels at 6, not all
  EXPECT_NEAR(all.activation_spread_after, 1.0, 1e-6);
  EXPECT_THROW(smooth_quant(flat, data, SmoothQuantOptions{1.5}, 2), std::invalid_argument);
}

TEST(SmoothQuant, RunsFromARecipeAndIsRefusedWithAnUnknownParameter) {
  auto recipe = QuantRecipe::from_json(nlohmann::json::parse(
      R"({"weights": {"format": "int8"}, "activations": {"format": "int8"}, "passes": [{"name": "smoothquant", "alpha": 0.5}]})"));
  std::vector<Tensor> data = calibration(8);
  QuantizeGraphResult q = quantize_graph(load_onnx(kMobilenet), recipe, [&](const std::function<void(Tensor)>& f) {
    for (const Tensor& t : data) f(t);
  }, 2);
  ASSERT_TRUE(q.smooth_quant.has_value());
  EXPECT_EQ(q.smooth_quant->layers.size(), 14u);
  EXPECT_THROW(QuantRecipe::from_json(nlohmann::json::parse(R"({"passes": [{"name": "smoothquant", "beta": 1}]})")), std::runtime_error);
}

}  // namespace
}  // namespace lowbit
