// Model-level figures of ResNet-20 (CIFAR-10), checked against the network's own arithmetic.
#include "lowbit/hw/model_cost.hpp"

#include <gtest/gtest.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/shape_inference.hpp"

namespace lowbit::hw {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

const ValueInfo& info_of(const Graph& g, const std::string& name) {
  for (const auto* list : {&g.value_info, &g.outputs})
    for (const ValueInfo& v : *list)
      if (v.name == name) return v;
  throw std::runtime_error("no value info for " + name);
}

class ResNet20 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    graph_ = new Graph(load_onnx(kResnet20));
    infer_shapes(*graph_);
  }
  static void TearDownTestSuite() { delete graph_; }
  static Graph* graph_;
};
Graph* ResNet20::graph_ = nullptr;

TEST_F(ResNet20, MacsMatchTheGraphAndTheArchitecture) {
  // From the graph: each Conv's output channels x output pixels (from the inferred shapes) x
  // kernel volume (from its weight), the classifier's in x out features.
  int64_t from_graph = 0, weights = 0, convs = 0, gemms = 0;
  for (const Node& n : graph_->nodes) {
    if (n.op_type != "Conv" && n.op_type != "Gemm" && n.op_type != "MatMul") continue;
    const Tensor& w = *graph_->initializer(n.inputs[1]);
    weights += w.size();
    if (n.op_type == "Conv") {
      ++convs;
      const ValueInfo& y = info_of(*graph_, n.outputs[0]);
      from_graph += w.dim(0) * y.dims[2] * y.dims[3] * w.dim(1) * w.dim(2) * w.dim(3);
    } else {
      ++gemms;
      from_graph += w.dim(0) * w.dim(1);
    }
  }
  EXPECT_EQ(convs, 19);
  EXPECT_EQ(gemms, 1);
  // ResNet-20 for CIFAR: a 3x3 stem to 16 channels at 32x32, three stages of three basic blocks
  // (two 3x3 convs each) at 16/32x32, 32/16x16, 64/8x8 channels/pixels (the first conv of stages
  // two and three has stride 2 and half the input channels), a 64 -> 10 classifier.
  auto conv = [](int64_t cin, int64_t cout, int64_t side) { return cout * side * side * cin * 9; };
  const int64_t architecture = conv(3, 16, 32) + 6 * conv(16, 16, 32) + conv(16, 32, 16) + 5 * conv(32, 32, 16) + conv(32, 64, 8) +
                               5 * conv(64, 64, 8) + 64 * 10;
  EXPECT_EQ(from_graph, architecture);
  EXPECT_NEAR(static_cast<double>(architecture) / 1e6, 40.55, 0.01);

  const ModelCost c = model_cost(*graph_, {"int4", "int8", Parallelism{}, true, {}}, CostModel::builtin());
  EXPECT_EQ(c.macs, architecture);
  EXPECT_EQ(c.layers.size(), 20u);
  EXPECT_DOUBLE_EQ(c.bit_ops, static_cast<double>(architecture) * 4 * 8);
  EXPECT_DOUBLE_EQ(c.weight_bits, static_cast<double>(weights) * 4);
  EXPECT_DOUBLE_EQ(c.activation_bits_peak, 16.0 * 32 * 32 * 8);  // the stage-one conv inputs
}

TEST_F(ResNet20, LayerParallelResourcesAddUp) {
  const ModelCost c = model_cost(*graph_, {"int4", "int8", Parallelism{}, true, {}}, CostModel::builtin());
  // One MAC unit per output channel: 16 + 6 x 16 + 6 x 32 + 6 x 64 + 10.
  EXPECT_EQ(c.units, 16 + 6 * 16 + 6 * 32 + 6 * 64 + 10);
  double lut = 0;
  for (const LayerCost& l : c.layers) {
    EXPECT_EQ(l.units, l.out_channels);
    EXPECT_EQ(l.acc_bits, plan_accumulator(make_mac_config("int4", "int8", static_cast<uint64_t>(l.dot_length))).bits);
    EXPECT_GT(l.unit.lut, 0);
    lut += l.unit.lut * static_cast<double>(l.units);
    EXPECT_EQ(l.cycles, l.outputs / l.units * l.dot_length);
  }
  EXPECT_NEAR(c.total.lut, lut, 1e-6 * lut);
  EXPECT_DOUBLE_EQ(c.total.dsp, static_cast<double>(c.units));  // a 4 x 8 multiplier (12-bit product) maps to a DSP48E2
  EXPECT_EQ(c.layers.front().dot_length, 27);
  EXPECT_EQ(c.layers.back().dot_length, 64);

  const ModelCost no_dsp = model_cost(*graph_, {"int4", "int8", Parallelism{}, false, {}}, CostModel::builtin());
  EXPECT_EQ(no_dsp.total.dsp, 0);
  EXPECT_GT(no_dsp.total.lut, c.total.lut);  // the multipliers move into LUTs

  const ModelCost fixed = model_cost(*graph_, {"float8_e4m3fn", "float8_e4m3fn", parse_parallelism("8"), true, {}}, CostModel::builtin());
  EXPECT_EQ(fixed.units, 20 * 8);
  int64_t slowest = 0;
  for (const LayerCost& l : fixed.layers) slowest = std::max(slowest, (l.outputs + 7) / 8 * l.dot_length);
  EXPECT_EQ(fixed.interval_cycles, slowest);
  EXPECT_NE(format_model_cost(fixed).find("initiation interval"), std::string::npos);
}

TEST_F(ResNet20, LayerFormatsOverrideTheDefaultPerLayer) {
  const ModelCost int4 = model_cost(*graph_, {"int4", "int8", Parallelism{}, false, {}}, CostModel::builtin());
  const ModelCost int8 = model_cost(*graph_, {"int8", "int8", Parallelism{}, false, {}}, CostModel::builtin());
  const std::string first = int4.layers.front().name;
  ModelCostOptions o{"int4", "int8", Parallelism{}, false, {}};
  o.layer_formats = [&](const Node& n) -> std::optional<LayerFormats> {
    if ((n.name.empty() ? n.outputs.at(0) : n.name) == first) return LayerFormats{"int8", "int8"};
    return std::nullopt;
  };
  const ModelCost mixed = model_cost(*graph_, o, CostModel::builtin());
  EXPECT_EQ(mixed.layers.front().weight_format, "int8");
  EXPECT_EQ(mixed.layers.back().weight_format, "int4");
  EXPECT_DOUBLE_EQ(mixed.layers.front().total.lut, int8.layers.front().total.lut);
  EXPECT_DOUBLE_EQ(mixed.layers.back().total.lut, int4.layers.back().total.lut);
  EXPECT_DOUBLE_EQ(mixed.bit_ops - int4.bit_ops, static_cast<double>(int4.layers.front().macs) * 4 * 8);
  EXPECT_GT(mixed.total.lut, int4.total.lut);
  EXPECT_LT(mixed.total.lut, int8.total.lut);
}

TEST(Parallelism, ParsesChannelOrACount) {
  EXPECT_TRUE(parse_parallelism("channel").per_channel);
  EXPECT_EQ(parse_parallelism("16").units, 16);
  EXPECT_THROW(parse_parallelism("0"), std::invalid_argument);
  EXPECT_THROW(parse_parallelism("lots"), std::invalid_argument);
  EXPECT_THROW(parse_parallelism("4x"), std::invalid_argument);
}

}  // namespace
}  // namespace lowbit::hw
