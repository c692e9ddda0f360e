// unsigned_if_nonnegative: on the real ResNet-20, every activation that calibration sees as
// non-negative (the ReLU outputs) drops its sign bit, the normalized image keeps it, and the
// freed bit lowers the error of the quantized logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

TEST(UnsignedActivations, SameWidthCounterparts) {
  auto counterpart = [](const char* spec) {
    std::optional<ScalarFormat> u = unsigned_of_same_width(*Format::parse(spec).scalar());
    return u ? u->to_string() : std::string("none");
  };
  EXPECT_EQ(counterpart("e4m3"), "ue4m4");
  EXPECT_EQ(counterpart("e2m1:specials=none"), "ue2m2:specials=none");
  EXPECT_EQ(counterpart("int8"), "uint8");
  EXPECT_EQ(counterpart("int4n"), "uint4");
  EXPECT_EQ(counterpart("uint8"), "none");
  EXPECT_EQ(counterpart("float8_e4m3fnuz"), "none");
  EXPECT_EQ(counterpart("ue4m4"), "none");
  // Same exponent range, twice the values: OCP E4M3's 448 becomes 480 (1.875 x 2^8).
  std::optional<ScalarFormat> u = unsigned_of_same_width(*Format::parse("float8_e4m3fn").scalar());
  ASSERT_TRUE(u);
  EXPECT_EQ(u->bits(), 8);
  EXPECT_EQ(u->max(), 480.0);
  EXPECT_EQ(u->finite_values(), 255u);  // 256 codes, one NaN
}

TEST(UnsignedActivations, QuantizerKnowsWhenCalibrationWasNonNegative) {
  QuantizerConfig c(Format::parse("e4m3"));
  Quantizer q(c);
  EXPECT_FALSE(q.observed_nonnegative());  // nothing seen yet
  std::vector<float> relu_out = {0.0f, 0.5f, 3.0f, 0.25f};
  std::vector<int64_t> shape = {4};
  q.observe(relu_out, shape);
  EXPECT_TRUE(q.observed_nonnegative());
  double signed_scale = q.compute_params().scale.at(0);
  q.set_format(Format::parse("ue4m4"));
  EXPECT_NEAR(q.compute_params().scale.at(0), signed_scale * 240.0 / 248.0, 1e-6 * signed_scale);  // max 240 -> 248 (fp32 scales)
  std::vector<float> negative = {-0.01f};
  q.observe(negative, std::vector<int64_t>{1});
  EXPECT_FALSE(q.observed_nonnegative());
  EXPECT_THROW(QuantRecipe::from_json(nlohmann::json::parse(R"({"weights": {"format": "int8", "unsigned_if_nonnegative": true}})")),
               std::runtime_error);
}

double relative_error(const Tensor& want, const Tensor& got) {
  double err = 0, norm = 0;
  for (int64_t i = 0; i < want.size(); ++i) {
    double d = static_cast<double>(got.data<float>()[i]) - want.data<float>()[i];
    err += d * d;
    norm += static_cast<double>(want.data<float>()[i]) * want.data<float>()[i];
  }
  return err / norm;
}

TEST(UnsignedActivations, ReluOutputsDropTheSignBitOnResnet20) {
  ModelCard card = *find_model_card(kResnet20);
  const char* scale = std::getenv("LOWBIT_TEST_SCALE");
  const size_t images = scale && std::atof(scale) < 1 ? 16 : 64;
  std::vector<Tensor> data;
  calibration_feed(calibration_set(card), card.preprocess_for(card.calibration_data), images, 16, 2)(
      [&](Tensor x) { data.push_back(std::move(x)); });
  CalibrationFeed feed = [&data](const std::function<void(Tensor)>& f) {
    for (const Tensor& t : data) f(t);
  };
  Graph g = load_onnx(kResnet20);
  auto quantize = [&](bool drop_sign) {
    nlohmann::json r = nlohmann::json::parse(R"({"weights": {"format": "int8"},
        "activations": {"format": "e2m1:specials=none", "observer": "percentile"}})");
    r["activations"]["unsigned_if_nonnegative"] = drop_sign;
    return quantize_graph(g, QuantRecipe::from_json(r), feed, 2);
  };
  QuantizeGraphResult plain = quantize(false), dropped = quantize(true);
  ASSERT_EQ(dropped.layers.size(), 20u);  // 19 convolutions and the Gemm
  EXPECT_EQ(dropped.layers.front().activation_format, "e2m1:specials=none");  // the normalized image has negatives
  for (size_t i = 1; i < dropped.layers.size(); ++i)
    EXPECT_EQ(dropped.layers[i].activation_format, "ue2m2:specials=none") << dropped.layers[i].node;
  int unsigned_nodes = 0, signed_nodes = 0;
  for (const Node& n : dropped.graph.nodes) {
    if (n.op_type != "FakeQuant") continue;
    (n.s("format", "") == "ue2m2:specials=none" ? unsigned_nodes : signed_nodes)++;
  }
  EXPECT_EQ(signed_nodes, 1);
  EXPECT_GT(unsigned_nodes, 10);
  for (const auto& rep : plain.layers) EXPECT_EQ(rep.activation_format, "e2m1:specials=none");
  // The freed bit halves the step of every ReLU activation's grid: the logits come closer to float
  // (measured: 0.71x the squared error of the signed grid).
  Session reference(plain.reference, SessionOptions{2, true}), a(plain.graph, SessionOptions{2, true}),
      b(dropped.graph, SessionOptions{2, true});
  double err_plain = 0, err_dropped = 0;
  for (const Tensor& x : data) {
    Tensor want = reference.run(x).at(0);
    err_plain += relative_error(want, a.run(x).at(0));
    err_dropped += relative_error(want, b.run(x).at(0));
  }
  EXPECT_LT(err_dropped, 0.8 * err_plain) << err_dropped << " vs " << err_plain;
}

}  // namespace
}  // namespace lowbit
