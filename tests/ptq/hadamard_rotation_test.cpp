// Hadamard rotation on the real ResNet-20 and MobileNet v1: R is orthonormal, the rotated float
// graphs compute the original logits, the rotated layers' inputs lose their outliers, low-bit
// weights lose less in the rotated basis, the rotation survives quantization and QONNX export, and
// R folds into a producer when nothing stands between two layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/export.hpp"
#include "lowbit/ptq/hadamard_rotation.hpp"
#include "lowbit/ptq/layer_report.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";
const std::string kMobilenet = std::string(LOWBIT_SHARED_DATA) + "/models/mobilenet_v1_0.75_224.onnx";

// Image counts shrink under the sanitizers (LOWBIT_TEST_SCALE < 1), down to 4.
size_t scaled(size_t images) {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  return f >= 1 ? images : std::max<size_t>(4, static_cast<size_t>(static_cast<double>(images) * f));
}

std::vector<Tensor> calibration(const std::string& model, size_t images, int batch) {
  ModelCard card = *find_model_card(model);
  std::vector<Tensor> out;
  calibration_feed(calibration_set(card), card.preprocess_for(card.calibration_data), images, batch, 2)(
      [&](Tensor x) { out.push_back(std::move(x)); });
  return out;
}

const std::vector<Tensor>& resnet_images() {
  static const std::vector<Tensor> data = calibration(kResnet20, scaled(64), 32);
  return data;
}
const std::vector<Tensor>& mobilenet_images() {
  static const std::vector<Tensor> data = calibration(kMobilenet, scaled(16), 8);
  return data;
}

CalibrationFeed feed(const std::vector<Tensor>& data) {
  return [&data](const std::function<void(Tensor)>& f) {
    for (const Tensor& t : data) f(t);
  };
}

Graph folded(const std::string& path) {
  Graph g = load_onnx(path);
  fold_batch_norm(g);
  return g;
}

std::vector<float> run(const Graph& g, const Tensor& x) {
  Session s(g, SessionOptions{2, true});
  Tensor y = s.run(x).at(0);
  return {y.data<float>(), y.data<float>() + y.size()};
}

// max |got - want| / max |want|
double relative_max_difference(const std::vector<float>& want, const std::vector<float>& got) {
  EXPECT_EQ(want.size(), got.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    norm = std::max(norm, std::fabs(static_cast<double>(want[i])));
  }
  return err / norm;
}

// Every value of `values` over the images, concatenated.
std::map<std::string, std::vector<float>> capture(const Graph& g, const std::set<std::string>& values, const std::vector<Tensor>& images) {
  std::map<std::string, std::vector<float>> out;
  Session s(g, SessionOptions{2, false});
  s.set_value_hook(values, [&](const std::string& name, const Tensor& t) {
    std::vector<float>& v = out[name];
    v.insert(v.end(), t.data<float>(), t.data<float>() + t.size());
  });
  for (const Tensor& x : images) s.run(x);
  return out;
}

// max |x| / rms(x): how far the largest entry stands out.
double peak_to_rms(const std::vector<float>& x) {
  double peak = 0, sum_sq = 0;
  for (float v : x) {
    peak = std::max(peak, static_cast<double>(std::fabs(v)));
    sum_sq += static_cast<double>(v) * v;
  }
  return peak / std::sqrt(sum_sq / static_cast<double>(x.size()));
}

// SQNR of x through the W4A4 recipes' activation quantizer: int4 per tensor, asymmetric, percentile.
double int4_activation_sqnr_db(const std::vector<float>& x) {
  QuantizerConfig c(Format::parse("int4"));
  c.symmetric = false;
  c.observer = ObserverKind::Percentile;
  Quantizer q(c);
  const Shape shape{static_cast<int64_t>(x.size())};
  q.observe(x, shape);
  std::vector<float> y(x.size());
  q.fake_quant(x, y, shape);
  return sqnr_db(x, y);
}

const Node& node_named(const Graph& g, const std::string& label) {
  for (const Node& n : g.nodes)
    if (n.label() == label) return n;
  throw std::runtime_error("no node " + label);
}

// The input of each rotated layer before (in the original graph) and after the rotation.
std::vector<std::pair<std::string, std::string>> rotated_inputs(const Graph& before, const Graph& after, const HadamardReport& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const HadamardReport::Rotated& l : r.rotated) out.emplace_back(node_named(before, l.layer).inputs[0], node_named(after, l.layer).inputs[0]);
  return out;
}

TEST(HadamardRotation, IsOrthonormalAndBlockDiagonalWhereTheSizeIsNotAPowerOfTwo) {
  for (int64_t size : {2, 8, 64, 256, 10, 24, 96, 768, 1000})
    for (bool random_signs : {false, true}) {
      HadamardRotation r(size, random_signs, 7);
      const int64_t block = size & -size;
      EXPECT_EQ(r.block(), block);
      const std::vector<float> m = r.matrix();
      double worst = 0;
      size_t nonzero_off_block = 0;
      for (int64_t i = 0; i < size; ++i)
        for (int64_t j = 0; j < size; ++j) {
          if (i / block != j / block) {
            nonzero_off_block += m[i * size + j] != 0.f;
            continue;  // rows of different blocks have disjoint supports: their dot product is 0
          }
          double dot = 0;
          for (int64_t k = i / block * block; k < (i / block + 1) * block; ++k) dot += static_cast<double>(m[i * size + k]) * m[j * size + k];
          worst = std::max(worst, std::fabs(dot - (i == j ? 1.0 : 0.0)));
        }
      EXPECT_EQ(nonzero_off_block, 0u) << "size " << size;
      EXPECT_LT(worst, 1e-6) << "size " << size;
      // apply() is v R.
      std::vector<double> v(static_cast<size_t>(size));
      for (int64_t i = 0; i < size; ++i) v[i] = std::sin(0.37 * static_cast<double>(i) + 1.0);
      std::vector<double> want(v.size(), 0.0);
      for (int64_t i = 0; i < size; ++i)
        for (int64_t j = 0; j < size; ++j) want[j] += v[i] * m[i * size + j];
      r.apply(v);
      for (int64_t j = 0; j < size; ++j) EXPECT_NEAR(v[j], want[j], 1e-6);
    }
  // Plain Sylvester: the first row and column of each block are all +1/sqrt(b).
  std::vector<float> plain = HadamardRotation(24, false, 0).matrix();
  for (int64_t j = 0; j < 8; ++j) EXPECT_EQ(plain[j], plain[j * 24]);
  for (int64_t bad : {0, 1, 3, 75}) EXPECT_THROW(HadamardRotation(bad, true, 0), std::invalid_argument);
}

TEST(HadamardRotation, KeepsResNet20LogitsAndSpreadsTheLayerInputs) {
  const Graph g = folded(kResnet20);
  const std::vector<Tensor>& images = resnet_images();
  const std::vector<float> want = run(g, images[0]);
  Graph rotated = g;
  HadamardReport r = rotate_hadamard(rotated, HadamardOptions{});
  // 18 convolutions and the Gemm; the first convolution reads 3 channels.
  ASSERT_EQ(r.rotated.size(), 19u);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].second.find("K = 3 is odd"), std::string::npos) << r.skipped[0].second;
  for (const auto& l : r.rotated) EXPECT_FALSE(l.folded) << l.layer;  // ReLU or pooling before every layer
  EXPECT_EQ(quantizable_layers(rotated).size(), quantizable_layers(g).size());
  EXPECT_LT(relative_max_difference(want, run(rotated, images[0])), 1e-4);

  // The Gemm reads global-average-pooled ReLU outputs.
  const HadamardReport::Rotated& gemm = r.rotated.back();
  ASSERT_EQ(gemm.layer.substr(0, 4), "Gemm");
  EXPECT_EQ(gemm.channels, 64);
  EXPECT_EQ(gemm.block, 64);

  // Every rotated input's peak / rms goes down (64 images: 8.9 -> 5.5 at layer1.0.conv1, 20.7 ->
  // 8.7 at layer3.2.conv2, 4.9 -> 4.2 at the Gemm). Yet int4 quantizes the rotated inputs worse,
  // by 3 to 7.5 dB: the originals are ReLU outputs, >= 0 with many exact zeros, and the asymmetric grid
  // spends its 16 codes on [0, max]; the rotated ones are signed and dense and span about 2 x 5.5
  // rms against 8.9 rms.
  const auto pairs = rotated_inputs(g, rotated, r);
  std::set<std::string> before_names, after_names;
  for (const auto& [b, a] : pairs) {
    before_names.insert(b);
    after_names.insert(a);
  }
  auto before = capture(g, before_names, images), after = capture(rotated, after_names, images);
  for (const auto& [b, a] : pairs) {
    const double peak_before = peak_to_rms(before.at(b)), peak_after = peak_to_rms(after.at(a));
    EXPECT_LT(peak_after, peak_before) << b;
    EXPECT_LT(int4_activation_sqnr_db(after.at(a)), int4_activation_sqnr_db(before.at(b))) << b;
  }
  // Without random signs the first column of each block sums its channels, which on non-negative
  // inputs is a new outlier: the Gemm's input gets a larger peak / rms than it had (64 images: 4.9 -> 8.6).
  Graph plain = g;
  rotate_hadamard(plain, HadamardOptions{.convolutions = false, .random_signs = false, .seed = 0});
  const std::string x_plain = node_named(plain, gemm.layer).inputs[0];
  EXPECT_GT(peak_to_rms(capture(plain, {x_plain}, images).at(x_plain)), 1.25 * peak_to_rms(before.at(pairs.back().first)));
}

TEST(HadamardRotation, KeepsMobileNetLogitsWhoseBoundedInputsHaveNoOutliersToSpread) {
  const Graph g = folded(kMobilenet);
  const std::vector<Tensor>& images = mobilenet_images();
  const std::vector<float> want = run(g, images[0]);
  Graph rotated = g;
  HadamardReport r = rotate_hadamard(rotated, HadamardOptions{});
  EXPECT_EQ(r.rotated.size(), 14u);  // 13 pointwise convolutions and the 1x1 classifier
  EXPECT_EQ(r.skipped.size(), 14u);  // 13 depthwise convolutions and the first (3 channels)
  for (const auto& l : r.rotated) EXPECT_EQ(l.block, l.channels & -l.channels) << l.layer;
  EXPECT_EQ(r.rotated.back().channels, 768);
  EXPECT_EQ(r.rotated.back().block, 256);  // 768 = 3 x 256: three blocks
  EXPECT_LT(relative_max_difference(want, run(rotated, images[0])), 1e-4);

  // ReLU6 bounds the pointwise layers' inputs: they have no outliers to spread, and the rotation
  // makes them Gaussian-like, with a larger peak / rms (16 images: mean 3.8 -> 4.9).
  const auto pairs = rotated_inputs(g, rotated, r);
  std::set<std::string> before_names, after_names;
  for (const auto& [b, a] : pairs) {
    before_names.insert(b);
    after_names.insert(a);
  }
  auto before = capture(g, before_names, images), after = capture(rotated, after_names, images);
  double mean_before = 0, mean_after = 0;
  for (const auto& [b, a] : pairs) {
    mean_before += peak_to_rms(before.at(b)) / static_cast<double>(pairs.size());
    mean_after += peak_to_rms(after.at(a)) / static_cast<double>(pairs.size());
  }
  EXPECT_GT(mean_after, mean_before);
}

// Relative output error sum (q - f)^2 / sum f^2 of the last layer when only its weights are
// quantized (activations and every other layer float), with and without the rotation.
std::pair<double, double> last_layer_weight_error(const std::string& model, const std::vector<Tensor>& images, const std::string& format) {
  std::string recipe = R"({"weights": {"format": "float"}, "activations": {"format": "float"},
                           "layers": [{"position": "last", "weights": {"format": ")" + format + R"(", "granularity": "tensor"}}]})";
  std::pair<double, double> out;
  for (bool rotate : {false, true}) {
    nlohmann::json j = nlohmann::json::parse(recipe);
    if (rotate) j["passes"] = nlohmann::json::parse(R"([{"name": "hadamard", "convolutions": true}])");
    QuantizeGraphResult q = quantize_graph(load_onnx(model), QuantRecipe::from_json(j), feed(images), 2);
    const std::string output = q.layers.back().output;
    (rotate ? out.second : out.first) = relative_output_errors(q.reference, q.graph, {output}, images, 2).at(output);
  }
  return out;
}

TEST(HadamardRotation, LowBitClassifierWeightsLoseLessInTheRotatedBasis) {
  // Per-tensor scales (64 / 16 images): ResNet-20's Gemm int4 0.0072 -> 0.0042, e2m1 0.0214 ->
  // 0.0104; MobileNet's classifier int4 0.236 -> 0.034.
  for (const char* format : {"int4", "e2m1"}) {
    auto [plain, rotated] = last_layer_weight_error(kResnet20, resnet_images(), format);
    EXPECT_LT(rotated, 0.75 * plain) << "ResNet-20 " << format << ": " << plain << " -> " << rotated;
  }
  auto [plain, rotated] = last_layer_weight_error(kMobilenet, mobilenet_images(), "int4");
  EXPECT_LT(rotated, 0.75 * plain) << "MobileNet int4: " << plain << " -> " << rotated;
}

Graph through_file(const Graph& g, const std::string& name) {
  std::string path = (std::filesystem::temp_directory_path() / ("lowbit_hadamard_test_" + name + ".onnx")).string();
  save_onnx(g, path);
  Graph back = load_onnx(path);
  std::filesystem::remove(path);
  return back;
}

TEST(HadamardRotation, RunsFromARecipeBeforeTheActivationQuantizersAndExportsToQonnx) {
  // Symmetric activations: with a zero point, QONNX Quant rounds x / s + zp where lowbit rounds
  // x / s (export.hpp); on these images one int4 value in the rotated graph falls on such a tie.
  auto recipe = QuantRecipe::from_json(nlohmann::json::parse(
      R"({"weights": {"format": "int4"}, "activations": {"format": "int4", "symmetric": true}, "passes": [{"name": "hadamard"}]})"));
  const Graph g = load_onnx(kResnet20);
  QuantizeGraphResult q = quantize_graph(g, recipe, feed(resnet_images()), 2);
  ASSERT_TRUE(q.hadamard.has_value());
  EXPECT_EQ(q.hadamard->rotated.size(), 19u);
  EXPECT_EQ(q.layers.size(), quantizable_layers(g).size());  // the rotations are not layers
  // Every rotated layer reads a FakeQuant of the rotation's output: the rotated activations are quantized.
  for (const HadamardReport::Rotated& l : q.hadamard->rotated) {
    const Node& layer = node_named(q.graph, l.layer);
    const Node* fq = q.graph.producer_of(layer.inputs[0]);
    ASSERT_TRUE(fq && fq->op_type == "FakeQuant") << l.layer;
    const Node* rotation = q.graph.producer_of(fq->inputs[0]);
    ASSERT_TRUE(rotation && is_hadamard_rotation(q.graph, *rotation)) << l.layer;
    EXPECT_EQ(rotation->label(), l.rotation_by);
  }
  const std::vector<float> want = run(q.graph, resnet_images()[0]);
  QonnxExport qonnx = to_qonnx(with_weight_quantizers(q));
  EXPECT_TRUE(qonnx.kept_as_lowbit.empty());
  const std::vector<float> got = run(through_file(qonnx.graph, "qonnx_w4a4"), resnet_images()[0]);
  ASSERT_EQ(want.size(), got.size());
  size_t differing = 0;
  std::string rows;
  for (size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0) {
      ++differing;
      rows += " " + std::to_string(i / 10) + ":" + std::to_string(want[i]) + "/" + std::to_string(got[i]);
    }
  EXPECT_EQ(differing, 0u) << "of " << want.size() << " logits:" << rows;

  EXPECT_THROW(QuantRecipe::from_json(nlohmann::json::parse(R"({"passes": [{"name": "hadamard", "block": 64}]})")), std::runtime_error);
  auto bad_seed = QuantRecipe::from_json(nlohmann::json::parse(R"({"passes": [{"name": "hadamard", "seed": -1}]})"));
  EXPECT_THROW(quantize_graph(g, bad_seed, feed(resnet_images()), 2), std::runtime_error);
}

// Two layers cut from MobileNet with nothing between them (pw13 and the classifier, BatchNorm
// folded, ReLU6 and pooling left out), fed real pooled features: R folds into the first layer's
// weight and bias, and only the first layer's input needs a rotation node.
TEST(HadamardRotation, FoldsIntoAProducerWithNothingBetween) {
  const Graph mobilenet = folded(kMobilenet);
  const Node* classifier = nullptr;
  const Node* pointwise = nullptr;
  for (const Node& n : mobilenet.nodes) {
    if (n.op_type != "Conv") continue;
    if (n.i("group", 1) == 1 && mobilenet.initializer(n.inputs[1])->dim(0) == 768) pointwise = &n;
    classifier = &n;
  }
  ASSERT_TRUE(pointwise && classifier);
  Tensor features;
  {
    Session s(mobilenet, SessionOptions{2, false});
    s.set_value_hook({classifier->inputs[0]}, [&](const std::string&, const Tensor& t) { features = t; });
    s.run(mobilenet_images()[0]);
  }
  ASSERT_EQ(features.shape(), (Shape{mobilenet_images()[0].dim(0), 768, 1, 1}));
  const int64_t batch = features.dim(0);

  auto chain = [&](bool conv) {
    Graph g;
    g.opset = mobilenet.opset;
    ValueInfo in{.name = "x", .dtype = DType::F32, .dims = conv ? std::vector<int64_t>{batch, 768, 1, 1} : std::vector<int64_t>{batch, 768},
                 .dim_params = {}, .has_shape = true};
    g.inputs = {in};
    g.outputs = {ValueInfo{.name = "y", .dtype = DType::F32, .dims = {}, .dim_params = {}, .has_shape = false}};
    Tensor w1 = *mobilenet.initializer(pointwise->inputs[1]), b1 = *mobilenet.initializer(pointwise->inputs[2]);
    Tensor w2 = *mobilenet.initializer(classifier->inputs[1]);
    if (!conv) {
      w1.reshape({768, 768});  // Gemm transB = 1: [N, K]
      Tensor w2t(DType::F32, {768, w2.dim(0)});  // MatMul: [K, N]
      for (int64_t o = 0; o < w2.dim(0); ++o)
        for (int64_t k = 0; k < 768; ++k) w2t.data<float>()[k * w2.dim(0) + o] = w2.data<float>()[o * 768 + k];
      w2 = std::move(w2t);
    }
    g.initializers = {{"w1", w1}, {"b1", b1}, {"w2", w2}};
    Node first{.name = "first", .op_type = conv ? "Conv" : "Gemm", .domain = "", .inputs = {"x", "w1", "b1"}, .outputs = {"h"}, .attrs = {}};
    if (!conv) first.attrs["transB"] = Attribute{int64_t{1}};
    Node second{.name = "second", .op_type = conv ? "Conv" : "MatMul", .domain = "", .inputs = {"h", "w2"}, .outputs = {"y"}, .attrs = {}};
    g.nodes = {first, second};
    return g;
  };
  for (bool conv : {true, false}) {
    Tensor x = features;
    if (!conv) x.reshape({batch, 768});
    const Graph g = chain(conv);
    const std::vector<float> want = run(g, x);
    Graph rotated = g;
    HadamardReport r = rotate_hadamard(rotated, HadamardOptions{});
    ASSERT_EQ(r.rotated.size(), 2u);
    EXPECT_FALSE(r.rotated[0].folded);
    EXPECT_TRUE(r.rotated[1].folded);
    EXPECT_EQ(r.rotated[1].rotation_by, node_named(g, r.rotated[0].layer).label());
    EXPECT_EQ(rotated.nodes.size(), 3u);  // one rotation node, before the first layer
    EXPECT_EQ(rotated.initializers.size(), 4u);  // the replaced weights are gone
    EXPECT_LT(relative_max_difference(want, run(rotated, x)), 1e-4) << (conv ? "Conv" : "Gemm / MatMul");
  }
}

}  // namespace
}  // namespace lowbit
