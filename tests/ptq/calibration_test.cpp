// Activation calibration observers on a real activation of ResNet-20 (the input of layer3.0.conv1
// over 64 calibration images).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

std::vector<float> real_activation() {
  ModelCard card = *find_model_card(kResnet20);
  Graph g = load_onnx(kResnet20);
  fold_batch_norm(g);
  std::string value;
  for (const Node& n : g.nodes)
    if (n.name == "layer3.0.conv1") value = n.inputs.at(0);
  EXPECT_FALSE(value.empty());
  std::vector<float> out;
  Session s(g, SessionOptions{2, false});
  s.set_value_hook({value}, [&](const std::string&, const Tensor& t) { out.insert(out.end(), t.data<float>(), t.data<float>() + t.size()); });
  calibration_feed(calibration_set(card), card.preprocess, 64, 32, 2)([&](Tensor x) { s.run(x); });
  return out;
}

double threshold(ObserverKind kind, const char* format, std::span<const float> x) {
  QuantizerConfig c(Format::parse(format));
  c.observer = kind;
  Quantizer q(c);
  q.observe(x, std::vector<int64_t>{static_cast<int64_t>(x.size())});
  return q.compute_params().scale.at(0) * Format::parse(format).scalar()->max();
}

TEST(Calibration, EntropyClipsTheTailAndIgnoresAnOutlier) {
  std::vector<float> x = real_activation();
  ASSERT_GT(x.size(), 100000u);
  for (const char* format : {"int8", "int4", "e4m3", "e2m1"}) {
    double amax = threshold(ObserverKind::MinMax, format, x);
    double kl = threshold(ObserverKind::Entropy, format, x);
    EXPECT_GT(kl, 0.05 * amax) << format;
    EXPECT_LE(kl, amax * 1.0001) << format;
    // One value 100x beyond the range moves min-max 100x, and the entropy threshold hardly at all.
    std::vector<float> with_outlier = x;
    with_outlier.push_back(static_cast<float>(100 * amax));
    EXPECT_NEAR(threshold(ObserverKind::MinMax, format, with_outlier), 100 * amax, amax);
    // (Not for e4m3: its 17 binades hold the data even at a 100x wider scale, and 2048 even bins
    // over the wider range cannot resolve the data below; the divergence is then flat.)
    if (std::string(format) != "e4m3") {
      EXPECT_LT(threshold(ObserverKind::Entropy, format, with_outlier), 2 * amax) << format;
    }
  }
  // Fewer levels: a tighter threshold (coarser grids lose more to rounding than to clipping).
  EXPECT_LT(threshold(ObserverKind::Entropy, "int4", x), threshold(ObserverKind::Entropy, "int8", x));
}

}  // namespace
}  // namespace lowbit
