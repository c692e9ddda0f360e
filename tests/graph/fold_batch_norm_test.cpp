// BatchNormalization folding: Conv (the real ResNet-20 and MobileNet) and Gemm in every layout
// (transB 0 / 1, alpha, beta, per-column / single / absent bias) give the unfolded graph's outputs;
// what cannot be folded is left alone.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/fold_batch_norm.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

Tensor random_tensor(Shape shape, std::mt19937& rng, float lo = -1, float hi = 1) {
  Tensor t(DType::F32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// max |a - b| / max |a|
double relative_difference(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double err = 0, norm = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
    norm = std::max(norm, std::fabs(static_cast<double>(a.data<float>()[i])));
  }
  return err / norm;
}

int count(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op_type == op;
  return n;
}

// x [M, K] -> Gemm -> BatchNormalization -> y [M, N]
Graph gemm_bn(int64_t M, int64_t K, int64_t N, bool trans_b, float alpha, float beta, int bias_kind, std::mt19937& rng) {
  Graph g;
  g.inputs.push_back(ValueInfo{"x", DType::F32, {M, K}, {"", ""}, true});
  g.outputs.push_back(ValueInfo{"y", DType::F32, {}, {}, false});
  g.initializers["w"] = random_tensor(trans_b ? Shape{N, K} : Shape{K, N}, rng);
  Node gemm;
  gemm.name = "fc";
  gemm.op_type = "Gemm";
  gemm.inputs = {"x", "w"};
  gemm.outputs = {"h"};
  gemm.attrs["transB"] = Attribute{int64_t{trans_b}};
  gemm.attrs["alpha"] = Attribute{alpha};
  gemm.attrs["beta"] = Attribute{beta};
  if (bias_kind == 1) g.initializers["c"] = random_tensor({N}, rng);
  if (bias_kind == 2) g.initializers["c"] = random_tensor({1, N}, rng);
  if (bias_kind == 3) g.initializers["c"] = random_tensor({1}, rng);
  if (bias_kind > 0) gemm.inputs.push_back("c");
  g.nodes.push_back(gemm);
  g.initializers["gamma"] = random_tensor({N}, rng, 0.5f, 2.0f);
  g.initializers["beta_bn"] = random_tensor({N}, rng);
  g.initializers["mean"] = random_tensor({N}, rng);
  g.initializers["var"] = random_tensor({N}, rng, 0.1f, 3.0f);
  Node bn;
  bn.name = "bn";
  bn.op_type = "BatchNormalization";
  bn.inputs = {"h", "gamma", "beta_bn", "mean", "var"};
  bn.outputs = {"y"};
  bn.attrs["epsilon"] = Attribute{1e-3f};
  g.nodes.push_back(bn);
  return g;
}

TEST(FoldBatchNorm, GemmInEveryLayout) {
  std::mt19937 rng(11);
  for (bool trans_b : {false, true})
    for (int bias_kind : {0, 1, 2, 3})
      for (float beta : {1.0f, 0.5f}) {
        Graph g = gemm_bn(5, 7, 6, trans_b, 1.5f, beta, bias_kind, rng);
        Graph folded = g;
        ASSERT_EQ(fold_batch_norm(folded), 1) << trans_b << " " << bias_kind;
        EXPECT_EQ(count(folded, "BatchNormalization"), 0);
        EXPECT_EQ(folded.initializers.count("gamma"), 0u);  // unread parameters are dropped
        Tensor x = random_tensor({5, 7}, rng);
        Session a(g, SessionOptions{1, false}), b(folded, SessionOptions{1, false});
        EXPECT_LT(relative_difference(a.run(x).at(0), b.run(x).at(0)), 1e-5) << trans_b << " " << bias_kind << " " << beta;
      }
}

TEST(FoldBatchNorm, LeavesWhatItCannotFold) {
  std::mt19937 rng(12);
  Graph full_bias = gemm_bn(5, 7, 6, true, 1.0f, 1.0f, 0, rng);  // C of [M, N]: one bias per row
  full_bias.initializers["c"] = random_tensor({5, 6}, rng);
  full_bias.nodes[0].inputs.push_back("c");
  EXPECT_EQ(fold_batch_norm(full_bias), 0);
  Graph read_twice = gemm_bn(5, 7, 6, true, 1.0f, 1.0f, 1, rng);  // the Gemm output is also a graph output
  read_twice.outputs.push_back(ValueInfo{"h", DType::F32, {}, {}, false});
  EXPECT_EQ(fold_batch_norm(read_twice), 0);
  Graph training = gemm_bn(5, 7, 6, true, 1.0f, 1.0f, 1, rng);
  training.nodes[1].attrs["training_mode"] = Attribute{int64_t{1}};
  EXPECT_EQ(fold_batch_norm(training), 0);
  Graph computed_weight = gemm_bn(5, 7, 6, true, 1.0f, 1.0f, 1, rng);  // W is an input, not a constant
  computed_weight.initializers.erase("w");
  computed_weight.inputs.push_back(ValueInfo{"w", DType::F32, {6, 7}, {"", ""}, true});
  EXPECT_EQ(fold_batch_norm(computed_weight), 0);
}

TEST(FoldBatchNorm, RealConvNetsKeepTheirLogits) {
  for (const char* name : {"resnet20_cifar10.onnx", "mobilenet_v1_0.75_224.onnx"}) {
    const std::string model = std::string(LOWBIT_SHARED_DATA) + "/models/" + name;
    Graph g = load_onnx(model);
    const int bn = count(g, "BatchNormalization");
    ASSERT_GT(bn, 0) << name;
    Graph folded = g;
    EXPECT_EQ(fold_batch_norm(folded), bn) << name;
    EXPECT_EQ(count(folded, "BatchNormalization"), 0) << name;
    ModelCard card = *find_model_card(model);
    Tensor x;
    calibration_feed(calibration_set(card), card.preprocess_for(card.calibration_data), 4, 4, 2)([&](Tensor t) { x = std::move(t); });
    Session a(g, SessionOptions{2, false}), b(folded, SessionOptions{2, false});
    EXPECT_LT(relative_difference(a.run(x).at(0), b.run(x).at(0)), 1e-4) << name;
  }
}

}  // namespace
}  // namespace lowbit
