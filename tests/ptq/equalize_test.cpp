// Cross-layer equalization on the real MobileNet v1 0.75 and ResNet-20: the function is kept, the
// ranges are balanced, per-tensor int8 weights get much better.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/equalize.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

const std::string kData = LOWBIT_SHARED_DATA;
const std::string kMobileNet = kData + "/models/mobilenet_v1_0.75_224.onnx";
const std::string kResNet20 = kData + "/models/resnet20_cifar10.onnx";

Graph load_folded(const std::string& path) {
  Graph g = load_onnx(path);
  g.sort_topologically();
  fold_batch_norm(g);
  return g;
}

// `count` images spread over the model's evaluation set, as one NCHW batch.
Tensor eval_images(const std::string& model, size_t count) {
  ModelCard card = *find_model_card(model);
  ImageDataset data = spread_subset(auto_detect(card.eval_data), count);
  std::vector<float> x;
  std::vector<int> labels;
  load_batch(data, 0, data.size(), card.preprocess_for(card.eval_data), x, labels, 2);
  int64_t n = static_cast<int64_t>(data.size());
  int64_t hw = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(x.size()) / static_cast<double>(3 * n))));
  return Tensor::from<float>({n, 3, hw, hw}, x);
}

Tensor run(const Graph& g, const Tensor& x) {
  Session s(g, SessionOptions{2, true});
  return s.run(x)[0];
}

// max |a - b| / max |a|
double relative_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double amax = 0, err = 0;
  for (int64_t k = 0; k < a.size(); ++k) {
    amax = std::max(amax, std::fabs(static_cast<double>(a.data<float>()[k])));
    err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[k]) - b.data<float>()[k]));
  }
  return err / amax;
}

const Node& node_with_weight(const Graph& g, const std::string& weight) {
  for (const Node& n : g.nodes)
    if (n.inputs.size() > 1 && n.inputs[1] == weight) return n;
  throw std::runtime_error("no node reads " + weight);
}

// Written from the ONNX definitions, independently of the pass: max |w| of output channel i of a
// Conv weight [O, I/g, k...], and of input channel c (c reads the group c / (I/g)).
std::vector<double> conv_output_ranges(const Tensor& w) {
  int64_t o = w.dim(0), per = w.size() / o;
  std::vector<double> r(static_cast<size_t>(o), 0.0);
  for (int64_t i = 0; i < o; ++i)
    for (int64_t k = 0; k < per; ++k) r[static_cast<size_t>(i)] = std::max(r[static_cast<size_t>(i)], std::fabs(double{w.data<float>()[i * per + k]}));
  return r;
}

std::vector<double> conv_input_ranges(const Tensor& w, int64_t groups) {
  int64_t o = w.dim(0), ig = w.dim(1), kernel = w.size() / (o * ig), og = o / groups;
  std::vector<double> r(static_cast<size_t>(ig * groups), 0.0);
  for (int64_t oc = 0; oc < o; ++oc)
    for (int64_t j = 0; j < ig; ++j) {
      auto c = static_cast<size_t>((oc / og) * ig + j);
      for (int64_t k = 0; k < kernel; ++k) r[c] = std::max(r[c], std::fabs(double{w.data<float>()[(oc * ig + j) * kernel + k]}));
    }
  return r;
}

bool is_depthwise(const Node& n, const Tensor& w) { return n.op_type == "Conv" && w.dim(1) == 1 && n.i("group", 1) == w.dim(0) && w.dim(0) > 1; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Max channel range / median channel range of every depthwise layer, in graph order.
std::vector<double> depthwise_spreads(const Graph& g) {
  std::vector<double> out;
  for (const Node& n : g.nodes) {
    const Tensor* w = n.op_type == "Conv" ? g.initializer(n.inputs[1]) : nullptr;
    if (!w || !is_depthwise(n, *w)) continue;
    std::vector<double> r = conv_output_ranges(*w);
    out.push_back(*std::max_element(r.begin(), r.end()) / median(r));
  }
  return out;
}

// SQNR of per-tensor symmetric int8 quantization of every depthwise weight, in graph order.
std::vector<double> depthwise_int8_sqnr(const Graph& g) {
  std::vector<double> out;
  for (const Node& n : g.nodes) {
    const Tensor* w = n.op_type == "Conv" ? g.initializer(n.inputs[1]) : nullptr;
    if (!w || !is_depthwise(n, *w)) continue;
    QuantizerConfig c(Format::parse("int8"));
    c.granularity = Granularity::Tensor;
    Quantizer q(c);
    q.observe(w->span<float>(), w->shape());
    Tensor wq(DType::F32, w->shape());
    q.fake_quant(w->span<float>(), wq.span<float>(), w->shape());
    out.push_back(sqnr_db(w->span<float>(), wq.span<float>()));
  }
  return out;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

size_t count_ops(const Graph& g, const std::string& op) {
  return static_cast<size_t>(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op_type == op; }));
}

TEST(CrossLayerEqualization, MobileNetFunctionUnchanged) {
  Graph g = load_folded(kMobileNet);
  Graph before = g;
  EqualizeReport r = equalize_cross_layer(g);
  size_t dw_pw = 0, conv_dw = 0;
  for (const EqualizedPair& p : r.pair_list) {
    const Node& a = node_with_weight(g, p.first_weight);
    const Node& b = node_with_weight(g, p.second_weight);
    dw_pw += is_depthwise(a, *g.initializer(p.first_weight)) && !is_depthwise(b, *g.initializer(p.second_weight));
    conv_dw += !is_depthwise(a, *g.initializer(p.first_weight)) && is_depthwise(b, *g.initializer(p.second_weight));
    EXPECT_EQ(p.activation, "Clip") << p.first << " -> " << p.second;
  }
  std::printf("MobileNet: %d pairs (%zu depthwise->pointwise, %zu conv->depthwise), %d sweeps, final change %.3g\n", r.pairs, dw_pw,
              conv_dw, r.iterations, r.final_change);
  EXPECT_EQ(dw_pw, 13u);
  EXPECT_EQ(conv_dw, 13u);
  EXPECT_GT(r.iterations, 1);
  EXPECT_LT(r.final_change, EqualizeOptions{}.tolerance);
  // Every Clip between pairs became Relu -> Min with per-channel bounds.
  EXPECT_EQ(count_ops(g, "Min"), static_cast<size_t>(r.pairs));
  EXPECT_EQ(count_ops(g, "Clip") + count_ops(g, "Min"), count_ops(before, "Clip"));

  Tensor x = eval_images(kMobileNet, 16);
  Tensor y0 = run(before, x), y1 = run(g, x);
  double err = relative_error(y0, y1);
  std::printf("MobileNet logits: max |change| / max |logit| = %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(CrossLayerEqualization, ResNet20FunctionUnchanged) {
  Graph g = load_folded(kResNet20);
  Graph before = g;
  EqualizeReport r = equalize_cross_layer(g);
  std::printf("ResNet-20: %d pairs, %d sweeps\n", r.pairs, r.iterations);
  // The two convolutions of each of the 9 basic blocks, joined by a Relu.
  EXPECT_EQ(r.pairs, 9);
  for (const EqualizedPair& p : r.pair_list) EXPECT_EQ(p.activation, "Relu");
  // Pairs share no layer: one sweep balances them exactly, the second only confirms.
  EXPECT_EQ(r.iterations, 2);
  Tensor x = eval_images(kResNet20, 64);
  double err = relative_error(run(before, x), run(g, x));
  std::printf("ResNet-20 logits: max |change| / max |logit| = %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(CrossLayerEqualization, RangesBalancedAndInt8SqnrRises) {
  Graph g = load_folded(kMobileNet);
  std::vector<double> spread0 = depthwise_spreads(g), sqnr0 = depthwise_int8_sqnr(g);
  EqualizeReport r = equalize_cross_layer(g);
  std::vector<double> spread1 = depthwise_spreads(g), sqnr1 = depthwise_int8_sqnr(g);

  // After convergence each pair's two ranges match channel by channel: r1_i / r2_i = 1.
  for (const EqualizedPair& p : r.pair_list) {
    const Tensor& w1 = *g.initializer(p.first_weight);
    const Tensor& w2 = *g.initializer(p.second_weight);
    std::vector<double> r1 = conv_output_ranges(w1), r2 = conv_input_ranges(w2, node_with_weight(g, p.second_weight).i("group", 1));
    ASSERT_EQ(r1.size(), r2.size()) << p.first;
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < r1.size(); ++i) {
      if (r1[i] == 0 || r2[i] == 0) continue;
      lo = std::min(lo, r1[i] / r2[i]);
      hi = std::max(hi, r1[i] / r2[i]);
    }
    EXPECT_LT(hi / lo - 1, 1e-5) << p.first << " -> " << p.second;
    EXPECT_NEAR(hi, 1.0, 1e-5) << p.first << " -> " << p.second;
  }

  ASSERT_EQ(spread0.size(), 13u);
  std::printf("depthwise layer   max/median range (before -> after)   per-tensor int8 SQNR dB (before -> after)\n");
  for (size_t k = 0; k < spread0.size(); ++k)
    std::printf("  dw %2zu            %8.2f -> %6.2f                        %6.2f -> %6.2f\n", k + 1, spread0[k], spread1[k], sqnr0[k],
                sqnr1[k]);
  std::printf("  mean            %8.2f -> %6.2f                        %6.2f -> %6.2f\n", mean(spread0), mean(spread1), mean(sqnr0),
              mean(sqnr1));
  EXPECT_LT(mean(spread1), 0.5 * mean(spread0));
  EXPECT_LT(median(spread1), 0.5 * median(spread0));
  EXPECT_GT(mean(sqnr1) - mean(sqnr0), 5.0);
  size_t worse = 0;
  for (size_t k = 0; k < sqnr0.size(); ++k) worse += sqnr1[k] < sqnr0[k];
  EXPECT_LE(worse, 2u);
}

TEST(CrossLayerEqualization, PerTensorInt8WeightsRecoverAccuracy) {
  ModelCard card = *find_model_card(kMobileNet);
  ImageDataset data = spread_subset(auto_detect(card.eval_data), 260);
  Preprocess pre = card.preprocess_for(card.eval_data);
  QuantRecipe recipe = QuantRecipe::from_json(nlohmann::json::parse(R"({"weights": {"format": "int8", "granularity": "tensor"}})"));
  auto top1 = [&](Graph g, const char* label) {
    Session s(quantize_graph(std::move(g), recipe, CalibrationFeed{}, 2).graph, SessionOptions{2, true});
    return evaluate_classifier(s, data, pre, ClassifyOptions{32, 2, false, label, {}}).top1();
  };
  Graph plain = load_folded(kMobileNet);
  Graph equalized = plain;
  equalize_cross_layer(equalized);
  double without = top1(plain, "w8 tensor");
  double with = top1(equalized, "w8 tensor + cle");
  std::printf("MobileNet v1 0.75, 260 images of val1300, per-tensor int8 weights: top-1 %.1f %% without CLE, %.1f %% with\n",
              without, with);
  EXPECT_GE(with - without, 10.0);
}

TEST(CrossLayerEqualization, Relu6ToReluAndIdempotence) {
  Graph relu = load_folded(kMobileNet);
  EqualizeOptions o;
  o.relu6_to_relu = true;
  EqualizeReport rr = equalize_cross_layer(relu, o);
  Graph g = load_folded(kMobileNet);
  EqualizeReport r1 = equalize_cross_layer(g);
  EXPECT_EQ(rr.pairs, r1.pairs);
  EXPECT_EQ(count_ops(relu, "Min"), 0u);
  for (const EqualizedPair& p : rr.pair_list) EXPECT_EQ(p.activation, "Clip");
  // The Clips between pairs became Relus; the last one (before the pooling) stays.
  EXPECT_EQ(count_ops(relu, "Clip"), count_ops(g, "Clip"));
  EXPECT_EQ(count_ops(relu, "Relu"), static_cast<size_t>(rr.pairs));
  // The weights are the same either way: the activation does not enter the scales.
  for (size_t k = 0; k < rr.pair_list.size(); ++k) {
    const Tensor& a = *relu.initializer(rr.pair_list[k].first_weight);
    const Tensor& b = *g.initializer(r1.pair_list[k].first_weight);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_TRUE(std::equal(a.span<float>().begin(), a.span<float>().end(), b.span<float>().begin()));
  }

  // Twice: the second run finds the same pairs (now through Relu -> Min) and barely moves. The
  // first run stops once a sweep moves no scale by more than the tolerance; the chain converges
  // slowly, so what is left to the fixed point is a small multiple of that.
  Graph once = g;
  EqualizeReport r2 = equalize_cross_layer(g);
  EXPECT_EQ(r2.pairs, r1.pairs);
  for (const EqualizedPair& p : r2.pair_list) EXPECT_EQ(p.activation, "Relu+Min");
  EXPECT_LT(r2.final_change, o.tolerance);
  double moved = 0;
  for (const EqualizedPair& p : r2.pair_list)
    for (double s : p.scale) moved = std::max(moved, std::fabs(s - 1));
  std::printf("second run: %d sweeps, largest cumulative scale change %.3g (first run: %d sweeps)\n", r2.iterations, moved,
              r1.iterations);
  EXPECT_LT(moved, 10 * o.tolerance);
  EXPECT_LE(r2.iterations, 5);
  EXPECT_EQ(count_ops(g, "Min"), count_ops(once, "Min"));
  Tensor x = eval_images(kMobileNet, 4);
  EXPECT_LT(relative_error(run(once, x), run(g, x)), 1e-5);
}

// Nodes and initializers equal, value by value.
void expect_same_graph(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t k = 0; k < a.nodes.size(); ++k) {
    EXPECT_EQ(a.nodes[k].op_type, b.nodes[k].op_type);
    EXPECT_EQ(a.nodes[k].inputs, b.nodes[k].inputs);
    EXPECT_EQ(a.nodes[k].outputs, b.nodes[k].outputs);
  }
  ASSERT_EQ(a.initializers.size(), b.initializers.size());
  for (const auto& [name, t] : a.initializers) {
    const Tensor* u = b.initializer(name);
    ASSERT_TRUE(u) << name;
    ASSERT_EQ(t.shape(), u->shape()) << name;
    EXPECT_EQ(0, std::memcmp(t.raw(), u->raw(), t.bytes())) << name;
  }
}

Node make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.name = out[0];
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Tensor random_tensor(Shape shape, std::mt19937& rng) {
  Tensor t(DType::F32, std::move(shape));
  std::normal_distribution<float> d(0.f, 1.f);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

TEST(CrossLayerEqualization, NoPairsLeavesGraphUnchanged) {
  // MobileNet before BatchNormalization folding: a BatchNormalization follows every Conv.
  Graph unfolded = load_onnx(kMobileNet);
  Graph copy = unfolded;
  EqualizeReport r = equalize_cross_layer(unfolded);
  EXPECT_EQ(r.pairs, 0);
  EXPECT_EQ(r.iterations, 0);
  expect_same_graph(unfolded, copy);

  // Conv -> Sigmoid -> Conv (not homogeneous), Conv -> Clip(-1, 1) -> Conv (lower bound not 0),
  // Conv whose output is also a graph output -> Conv, and a Conv reading the value as its weight.
  std::mt19937 rng(1);
  Graph g;
  g.inputs = {ValueInfo{"x", DType::F32, {1, 4, 6, 6}, {}, true}};
  g.initializers["w"] = random_tensor({4, 4, 3, 3}, rng);
  g.initializers["w1x1"] = random_tensor({4, 4, 1, 1}, rng);
  g.initializers["lo"] = Tensor::scalar(-1.f);
  g.initializers["hi"] = Tensor::scalar(1.f);
  g.nodes = {make_node("Conv", {"x", "w"}, {"a"}),        make_node("Sigmoid", {"a"}, {"b"}),
             make_node("Conv", {"b", "w1x1"}, {"c"}),     make_node("Clip", {"c", "lo", "hi"}, {"d"}),
             make_node("Conv", {"d", "w1x1"}, {"e"}),     make_node("Conv", {"e", "w1x1"}, {"f"}),
             make_node("Relu", {"f"}, {"f_relu"}),        make_node("Conv", {"w1x1", "f_relu"}, {"y"})};
  for (Node& n : g.nodes)
    if (n.op_type == "Conv" && n.inputs[1] == "w") n.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1, 1, 1}};
  g.outputs = {ValueInfo{"e", DType::F32, {}, {}, false}, ValueInfo{"y", DType::F32, {}, {}, false}};
  Graph before = g;
  EqualizeReport r2 = equalize_cross_layer(g);
  EXPECT_EQ(r2.pairs, 0);
  expect_same_graph(g, before);
}

TEST(CrossLayerEqualization, GemmAndGroupedConvAgainstDenseReference) {
  // Gemm(transB=1) -> Relu -> Gemm(transB=0), the first weight shared with an unrelated reader.
  std::mt19937 rng(7);
  const int64_t m = 5, k = 6, c = 8, n = 3;
  Graph g;
  g.inputs = {ValueInfo{"x", DType::F32, {m, k}, {}, true}};
  Tensor w1 = random_tensor({c, k}, rng), b1 = random_tensor({c}, rng), w2 = random_tensor({c, n}, rng);
  // Very different channel ranges, as CLE is for.
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < k; ++j) w1.data<float>()[i * k + j] *= static_cast<float>(std::pow(4.0, static_cast<double>(i % 4) - 1));
  g.initializers["w1"] = w1;
  g.initializers["b1"] = b1;
  g.initializers["w2"] = w2;
  g.initializers["six"] = Tensor::scalar(6.f);
  g.initializers["zero"] = Tensor::scalar(0.f);
  Node gemm1 = make_node("Gemm", {"x", "w1", "b1"}, {"h"});
  gemm1.attrs["transB"] = Attribute{int64_t{1}};
  g.nodes = {gemm1, make_node("Clip", {"h", "zero", "six"}, {"r"}), make_node("Gemm", {"r", "w2"}, {"y"}),
             make_node("Identity", {"w1"}, {"w1_copy"})};
  g.outputs = {ValueInfo{"y", DType::F32, {}, {}, false}, ValueInfo{"w1_copy", DType::F32, {}, {}, false}};
  Tensor x = random_tensor({m, k}, rng);
  for (float& v : x.span<float>()) v *= 3;

  // y = min(max(x w1^T + b1, 0), 6) w2, in double.
  std::vector<double> ref(static_cast<size_t>(m * n), 0.0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t i = 0; i < c; ++i) {
      double h = b1.data<float>()[i];
      for (int64_t j = 0; j < k; ++j) h += double{x.data<float>()[r * k + j]} * w1.data<float>()[i * k + j];
      h = std::min(std::max(h, 0.0), 6.0);
      for (int64_t o = 0; o < n; ++o) ref[static_cast<size_t>(r * n + o)] += h * w2.data<float>()[i * n + o];
    }

  EqualizeReport rep = equalize_cross_layer(g);
  ASSERT_EQ(rep.pairs, 1);
  EXPECT_EQ(rep.iterations, 2);
  // The shared weight was copied: the unrelated reader still sees the original.
  EXPECT_NE(rep.pair_list[0].first_weight, "w1");
  EXPECT_TRUE(std::equal(w1.span<float>().begin(), w1.span<float>().end(), g.initializer("w1")->span<float>().begin()));
  Session s(g, SessionOptions{1, true});
  std::vector<Tensor> out = s.run({{"x", x}});
  double amax = 0, err = 0;
  for (size_t q = 0; q < ref.size(); ++q) {
    amax = std::max(amax, std::fabs(ref[q]));
    err = std::max(err, std::fabs(ref[q] - out[0].data<float>()[q]));
  }
  EXPECT_LT(err / amax, 1e-5);
  // Balanced: row i of w1 and row i of w2 (w2 is [C, N]) span the same range.
  const Tensor& e1 = *g.initializer(rep.pair_list[0].first_weight);
  const Tensor& e2 = *g.initializer(rep.pair_list[0].second_weight);
  for (int64_t i = 0; i < c; ++i) {
    double r1 = 0, r2 = 0;
    for (int64_t j = 0; j < k; ++j) r1 = std::max(r1, std::fabs(double{e1.data<float>()[i * k + j]}));
    for (int64_t o = 0; o < n; ++o) r2 = std::max(r2, std::fabs(double{e2.data<float>()[i * n + o]}));
    EXPECT_NEAR(r1 / r2, 1.0, 1e-6) << "channel " << i;
  }

  // Conv -> Relu -> grouped Conv (2 groups, 3 outputs per group) against the unequalized graph.
  Graph h;
  h.inputs = {ValueInfo{"x", DType::F32, {2, 3, 5, 5}, {}, true}};
  Tensor cw1 = random_tensor({4, 3, 3, 3}, rng);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 27; ++j) cw1.data<float>()[i * 27 + j] *= static_cast<float>(1 + 10 * i);
  h.initializers["cw1"] = cw1;
  h.initializers["cw2"] = random_tensor({6, 2, 1, 1}, rng);
  Node conv2 = make_node("Conv", {"r", "cw2"}, {"y"});
  conv2.attrs["group"] = Attribute{int64_t{2}};
  h.nodes = {make_node("Conv", {"x", "cw1"}, {"a"}), make_node("Relu", {"a"}, {"r"}), conv2};
  h.outputs = {ValueInfo{"y", DType::F32, {}, {}, false}};
  Graph h0 = h;
  EqualizeReport hr = equalize_cross_layer(h);
  ASSERT_EQ(hr.pairs, 1);
  std::vector<double> r1 = conv_output_ranges(*h.initializer("cw1")), r2 = conv_input_ranges(*h.initializer("cw2"), 2);
  for (size_t i = 0; i < r1.size(); ++i) EXPECT_NEAR(r1[i] / r2[i], 1.0, 1e-6);
  Tensor hx = random_tensor({2, 3, 5, 5}, rng);
  EXPECT_LT(relative_error(run(h0, hx), run(h, hx)), 1e-5);
}

}  // namespace
}  // namespace lowbit
