// Accuracy of the shipped models on their real evaluation data against the figures of an
// independent engine (../shared/data/README.md), in float32 and at W8A8.
#include <gtest/gtest.h>

#include <cstdlib>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"

namespace lowbit {
namespace {

const std::string kData = LOWBIT_SHARED_DATA;

// Whole-set evaluations take seconds in release builds and minutes under the sanitizers, where
// LOWBIT_TEST_SCALE < 1 is set; there the release run already checks the figures.
bool full_scale() {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  return !s || std::atof(s) >= 1.0;
}

ClassifyResult evaluate(const std::string& model, const std::optional<QuantRecipe>& recipe, bool exclude_calibration) {
  const std::string path = kData + "/models/" + model;
  ModelCard card = *find_model_card(path);
  ImageDataset data = auto_detect(card.eval_data);
  Graph g = load_onnx(path);
  if (recipe || exclude_calibration) {
    ImageDataset calib = calibration_set(card);
    data = without(data, calib);
    if (recipe)
      g = quantize_graph(std::move(g), *recipe, calibration_feed(calib, card.preprocess_for(card.calibration_data), calib.size(), 32, 2), 2)
              .graph;
  }
  Session s(std::move(g), SessionOptions{2, true});
  return evaluate_classifier(s, data, card.preprocess_for(card.eval_data), ClassifyOptions{32, 2, false, model, {}});
}

TEST(Accuracy, MobileNetV1Fp32OnVal1300) {
  if (!full_scale()) GTEST_SKIP() << "whole-set evaluation runs in the release suite";
  ClassifyResult r = evaluate("mobilenet_v1_0.75_224.onnx", std::nullopt, false);
  EXPECT_EQ(r.images, 1300u);
  EXPECT_NEAR(r.top1(), 78.1, 0.2);
  EXPECT_NEAR(r.top5(), 94.6, 0.2);
}

TEST(Accuracy, ResNetsFp32OnCifar10) {
  if (!full_scale()) GTEST_SKIP() << "whole-set evaluation runs in the release suite";
  ClassifyResult r20 = evaluate("resnet20_cifar10.onnx", std::nullopt, false);
  ClassifyResult r56 = evaluate("resnet56_cifar10.onnx", std::nullopt, false);
  EXPECT_EQ(r20.images, 10000u);
  EXPECT_NEAR(r20.top1(), 81.0, 0.3);
  EXPECT_NEAR(r56.top1(), 83.2, 0.3);
}

TEST(Accuracy, ResNet20W8A8DropsAtMostOnePoint) {
  if (!full_scale()) GTEST_SKIP() << "whole-set evaluation runs in the release suite";
  ClassifyResult fp32 = evaluate("resnet20_cifar10.onnx", std::nullopt, true);
  ClassifyResult w8a8 = evaluate("resnet20_cifar10.onnx", QuantRecipe::from_formats("int8", "int8"), true);
  EXPECT_EQ(fp32.images, 9500u);
  EXPECT_EQ(w8a8.images, 9500u);
  EXPECT_LE(fp32.top1() - w8a8.top1(), 1.0);
  // 4-bit weights and activations must cost clearly more: the quantizers act.
  ClassifyResult w4a4 = evaluate("resnet20_cifar10.onnx", QuantRecipe::from_formats("int4", "int4"), true);
  EXPECT_GT(fp32.top1() - w4a4.top1(), 3.0);
}

}  // namespace
}  // namespace lowbit
