// The executor on the shipped models: graph rewrites keep the function, ONNX export round-trips,
// recipes are validated, and bad input gets a clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/runtime/session.hpp"
#include "lowbit/runtime/shape_inference.hpp"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const std::string kData = LOWBIT_SHARED_DATA;
const std::string kResnet20 = kData + "/models/resnet20_cifar10.onnx";
const std::string kMobilenet = kData + "/models/mobilenet_v1_0.75_224.onnx";

// A batch of real images preprocessed as the model's card says.
Tensor real_batch(const std::string& model, size_t n) {
  ModelCard card = *find_model_card(model);
  ImageDataset data = spread_subset(auto_detect(card.eval_data), n);
  std::vector<float> pixels;
  std::vector<int> labels;
  load_batch(data, 0, data.size(), card.preprocess_for(card.eval_data), pixels, labels, 2);
  int64_t side = static_cast<int64_t>(std::sqrt(pixels.size() / n / 3));
  return Tensor::from<float>({static_cast<int64_t>(n), 3, side, side}, pixels);
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
  return m;
}

float max_abs(const Tensor& a) {
  float m = 0;
  for (float v : a.span<float>()) m = std::max(m, std::fabs(v));
  return m;
}

TEST(Engine, FoldingAndFusionKeepTheFunction) {
  for (const std::string& model : {kResnet20, kMobilenet}) {
    SCOPED_TRACE(model);
    Graph g = load_onnx(model);
    Graph folded = g;
    int bn = 0;
    for (const Node& n : g.nodes) bn += n.op_type == "BatchNormalization";
    EXPECT_EQ(fold_batch_norm(folded), bn);
    EXPECT_GT(fuse_activations(folded), 0);
    for (const Node& n : folded.nodes) EXPECT_NE(n.op_type, "BatchNormalization");
    Tensor x = real_batch(model, 8);
    Session plain(g, SessionOptions{2, false}), optimized(g, SessionOptions{2, true});
    Tensor a = plain.run(x)[0], b = optimized.run(x)[0];
    EXPECT_LT(max_abs_diff(a, b), 1e-4f * max_abs(a));
  }
}

TEST(Engine, ThreadCountDoesNotChangeResults) {
  Graph g = load_onnx(kResnet20);
  Tensor x = real_batch(kResnet20, 16);
  Session one(g, SessionOptions{1, true}), two(g, SessionOptions{2, true});
  Tensor a = one.run(x)[0], b = two.run(x)[0];
  EXPECT_LT(max_abs_diff(a, b), 1e-5f * max_abs(a));
}

TEST(Engine, BatchSizeDoesNotChangeResults) {
  Graph g = load_onnx(kResnet20);
  Tensor x = real_batch(kResnet20, 4);
  Session s(g);
  Tensor all = s.run(x)[0];
  for (int64_t i = 0; i < 4; ++i) {
    Tensor one = Tensor::from<float>({1, 3, 32, 32}, std::span<const float>(x.data<float>() + i * 3 * 32 * 32, 3 * 32 * 32));
    Tensor y = s.run(one)[0];
    for (int64_t c = 0; c < 10; ++c) EXPECT_NEAR(y.data<float>()[c], all.data<float>()[i * 10 + c], 1e-4f);
  }
}

TEST(Engine, ShapeInferenceWithDynamicBatch) {
  Graph g = load_onnx(kMobilenet);
  infer_shapes(g);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].dims, (std::vector<int64_t>{-1, 1000}));
  EXPECT_EQ(g.outputs[0].dim_params[0], "N");
  std::map<std::string, const ValueInfo*> by_name;
  for (const ValueInfo& v : g.value_info) by_name[v.name] = &v;
  size_t values = 0;
  for (const Node& n : g.nodes) values += n.outputs.size();
  EXPECT_EQ(g.value_info.size() + g.outputs.size(), values);
  // The first convolution: 24 channels (0.75 x 32), stride 2 on 224 -> 112.
  const Node& conv = g.nodes[0].op_type == "Conv" ? g.nodes[0] : *g.consumers_of(g.inputs[0].name)[0];
  ASSERT_EQ(conv.op_type, "Conv");
  ASSERT_TRUE(by_name.count(conv.outputs[0]));
  EXPECT_EQ(by_name[conv.outputs[0]]->dims, (std::vector<int64_t>{-1, 24, 112, 112}));
  // Written into the exported model and read back.
  fs::path out = fs::temp_directory_path() / "lowbit_shapes.onnx";
  save_onnx(g, out.string());
  Graph back = load_onnx(out.string());
  EXPECT_EQ(back.value_info.size(), g.value_info.size());
  fs::remove(out);
}

TEST(Engine, OnnxExportRoundTripsExactly) {
  Graph g = load_onnx(kMobilenet);
  fs::path out = fs::temp_directory_path() / "lowbit_roundtrip.onnx";
  save_onnx(g, out.string());
  Graph back = load_onnx(out.string());
  EXPECT_EQ(back.nodes.size(), g.nodes.size());
  EXPECT_EQ(back.initializers.size(), g.initializers.size());
  Tensor x = real_batch(kMobilenet, 2);
  Session a(g), b(back);
  Tensor ya = a.run(x)[0], yb = b.run(x)[0];
  EXPECT_EQ(max_abs_diff(ya, yb), 0.0f);
  fs::remove(out);
}

TEST(Engine, QuantizedGraphHasFakeQuantNodesAndRoundTrips) {
  Graph g = load_onnx(kResnet20);
  QuantRecipe r = QuantRecipe::from_formats("int8", "int8");
  ModelCard card = *find_model_card(kResnet20);
  ImageDataset calib = calibration_set(card);
  EXPECT_EQ(calib.size(), 500u);  // 50 per class
  QuantizeGraphResult q = quantize_graph(g, r, calibration_feed(calib, card.preprocess, 64, 32, 2), 2);
  int fq = 0;
  for (const Node& n : q.graph.nodes) fq += n.domain == "lowbit" && n.op_type == "FakeQuant";
  EXPECT_EQ(q.layers.size(), 20u);
  EXPECT_GE(fq, 19);  // one per distinct layer input (shared inputs share one)
  for (const LayerQuantReport& l : q.layers) {
    EXPECT_EQ(l.weight_format, "int8");
    EXPECT_GT(l.weight_sqnr_db, 35.0);
  }
  // Quantized weights lie on their per-channel grids: at most 255 distinct values per channel.
  const Node* conv = nullptr;
  for (const Node& n : q.graph.nodes)
    if (n.op_type == "Conv") conv = &n;
  ASSERT_NE(conv, nullptr);
  const Tensor& w = *q.graph.initializer(conv->inputs[1]);
  int64_t per = w.size() / w.dim(0);
  for (int64_t c = 0; c < w.dim(0); ++c) {
    std::set<float> levels;
    for (int64_t k = 0; k < per; ++k) levels.insert(w.data<float>()[c * per + k]);
    EXPECT_LE(levels.size(), 255u);
  }
  fs::path out = fs::temp_directory_path() / "lowbit_quantized.onnx";
  save_onnx(q.graph, out.string());
  Tensor x = real_batch(kResnet20, 4);
  Session a(q.graph), b(load_onnx(out.string()));
  EXPECT_EQ(max_abs_diff(a.run(x)[0], b.run(x)[0]), 0.0f);
  fs::remove(out);
}

TEST(Engine, RecipesAreRefusedBeforeWork) {
  auto refused = [](const char* text, const char* needle) {
    try {
      QuantRecipe::from_json(nlohmann::json::parse(text));
      ADD_FAILURE() << "accepted: " << text;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(R"({"weights": {"format": "int8"}, "activation": {"format": "int8"}})", "unknown key 'activation'");
  refused(R"({"weights": {"format": "e0m3"}})", "invalid format 'e0m3'");
  refused(R"({"weights": {"format": "int8", "granularity": "diagonal"}})", "granularity 'diagonal'");
  refused(R"({"activations": {"format": "float8_e4m3fn", "symmetric": false}})", "zero point");
  refused(R"({"layers": [{"position": "middle"}]})", "position must be");
  refused(R"({"layers": [{"op": "Conv", "weights": {"format": "int4", "observer": "guess"}}]})", "observer 'guess'");
  refused(R"({"calibration": {"images": 0}})", "positive integer");
  EXPECT_NO_THROW(QuantRecipe::from_json(nlohmann::json::parse(
      R"({"weights": {"format": "int4", "granularity": "group", "group_size": 32}, "activations": "float8_e4m3fn",
          "layers": [{"position": "first", "weights": "int8"}, {"op": "Gemm", "activations": "float"}]})")));
}

// Gemm's alpha scales A B only: y = alpha A B + beta C, also when C is a bias row that the oneDNN
// primitive could take (its output scale would scale the bias too).
TEST(Engine, GemmAlphaDoesNotScaleTheBias) {
  const int64_t M = 3, K = 4, N = 5;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> av(M * K), bv(K * N), cv(N);
  for (auto* v : {&av, &bv, &cv})
    for (float& x : *v) x = d(rng);
  for (float beta : {1.0f, 0.5f}) {
    Graph g;
    g.inputs.push_back(ValueInfo{"a", DType::F32, {M, K}, {"", ""}, true});
    g.outputs.push_back(ValueInfo{"y", DType::F32, {}, {}, false});
    g.initializers["b"] = Tensor::from<float>({K, N}, bv);
    g.initializers["c"] = Tensor::from<float>({N}, cv);
    Node n;
    n.name = "fc";
    n.op_type = "Gemm";
    n.inputs = {"a", "b", "c"};
    n.outputs = {"y"};
    n.attrs["alpha"] = Attribute{1.5f};
    n.attrs["beta"] = Attribute{beta};
    g.nodes.push_back(n);
    Session s(g);
    Tensor y = s.run(Tensor::from<float>({M, K}, av))[0];
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double want = beta * cv[static_cast<size_t>(j)];
        for (int64_t k = 0; k < K; ++k) want += 1.5 * av[static_cast<size_t>(i * K + k)] * bv[static_cast<size_t>(k * N + j)];
        EXPECT_NEAR(y.data<float>()[i * N + j], want, 1e-5) << beta << " " << i << " " << j;
      }
  }
}

TEST(Engine, LayerRulesPickFormats) {
  QuantRecipe r = QuantRecipe::from_json(nlohmann::json::parse(
      R"({"weights": {"format": "int4"}, "activations": {"format": "int8"},
          "layers": [{"position": "first", "weights": {"format": "int8"}}, {"op": "Gemm", "activations": "float"}]})"));
  Node conv, gemm;
  conv.op_type = "Conv";
  gemm.op_type = "Gemm";
  EXPECT_EQ(r.config_for(conv, TensorRole::Weight, true, false, 0)->format.to_string(), "int8");
  EXPECT_EQ(r.config_for(conv, TensorRole::Weight, false, false, 0)->format.to_string(), "int4");
  EXPECT_EQ(r.config_for(conv, TensorRole::Weight, false, false, 0)->granularity, Granularity::Channel);
  EXPECT_FALSE(r.config_for(gemm, TensorRole::Activation, false, true, 1).has_value());
  EXPECT_FALSE(r.config_for(conv, TensorRole::Activation, false, false, 1)->symmetric);  // integers: zero point
}

// QLinearConv with several output channels, per-channel weight scales and zero points, against the
// ONNX formula evaluated directly: y = sat(round((sum (x - xz)(w - wz) + b) * xs * ws[m] / ys) + yz).
TEST(Engine, QLinearConvPerChannelMatchesTheFormula) {
  const int64_t C = 3, M = 4, H = 6, W = 5, K = 3;
  Graph g;
  g.opset = 13;
  g.inputs.push_back(ValueInfo{"x", DType::U8, {1, C, H, W}, {"", "", "", ""}, true});
  g.outputs.push_back(ValueInfo{"y", DType::U8, {}, {}, false});
  std::mt19937 rng(7);
  std::vector<int8_t> wv(static_cast<size_t>(M * C * K * K));
  for (auto& v : wv) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  std::vector<int32_t> bias{100, -2000, 0, 555};
  std::vector<float> w_scale{0.01f, 0.02f, 0.005f, 0.03f};
  g.initializers["w"] = Tensor::from<int8_t>({M, C, K, K}, wv);
  g.initializers["x_scale"] = Tensor::scalar(0.05f);
  g.initializers["x_zp"] = Tensor::scalar(uint8_t{128});
  g.initializers["w_scale"] = Tensor::from<float>({M}, w_scale);
  g.initializers["w_zp"] = Tensor::from<int8_t>({M}, std::vector<int8_t>(M, 0));
  g.initializers["y_scale"] = Tensor::scalar(0.7f);
  g.initializers["y_zp"] = Tensor::scalar(uint8_t{20});
  g.initializers["b"] = Tensor::from<int32_t>({M}, bias);
  Node n;
  n.name = "qconv";
  n.op_type = "QLinearConv";
  n.inputs = {"x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"};
  n.outputs = {"y"};
  n.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1, 1, 1}};
  g.nodes.push_back(n);
  std::vector<uint8_t> xv(static_cast<size_t>(C * H * W));
  for (auto& v : xv) v = static_cast<uint8_t>(rng() % 256);
  Session s(g);
  Tensor y = s.run(Tensor::from<uint8_t>({1, C, H, W}, xv))[0];
  ASSERT_EQ(y.shape(), (Shape{1, M, H, W}));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        int64_t acc = bias[static_cast<size_t>(m)];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t a = 0; a < K; ++a)
            for (int64_t b = 0; b < K; ++b) {
              int64_t yy = i + a - 1, xx = j + b - 1;
              if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
              acc += (xv[static_cast<size_t>((c * H + yy) * W + xx)] - 128) * wv[static_cast<size_t>(((m * C + c) * K + a) * K + b)];
            }
        float multiplier = 0.05f * w_scale[static_cast<size_t>(m)] / 0.7f;
        float want = std::clamp(std::nearbyint(static_cast<float>(acc) * multiplier) + 20.0f, 0.0f, 255.0f);
        EXPECT_EQ(y.data<uint8_t>()[(m * H + i) * W + j], static_cast<uint8_t>(want)) << m << " " << i << " " << j;
      }
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EngineBadInput, TruncatedAndCorruptModels) {
  fs::path dir = fs::temp_directory_path() / "lowbit_bad_models";
  fs::create_directories(dir);
  std::ifstream in(kResnet20, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t{10}, size_t{1000}, bytes.size() / 2, bytes.size() - 1}) {
    fs::path p = dir / ("cut" + std::to_string(cut) + ".onnx");
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    std::string e = error_of([&] { Session s(load_onnx(p.string())); });
    EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  }
  fs::path missing = dir / "nope.onnx";
  EXPECT_NE(error_of([&] { load_onnx(missing.string()); }).find("cannot open"), std::string::npos);
  fs::remove_all(dir);
}

TEST(EngineBadInput, UnknownOperatorMissingValueAndShapeMismatch) {
  Graph g = load_onnx(kResnet20);
  Graph unknown = g;
  unknown.nodes[3].op_type = "FrobnicateV2";
  unknown.nodes[3].name = "mystery";
  EXPECT_EQ(error_of([&] { Session s(unknown); }), "unsupported operator 'FrobnicateV2' at node 'mystery'");

  Graph missing = g;
  missing.initializers.erase(missing.nodes[0].inputs[1]);
  EXPECT_NE(error_of([&] { Session s(missing); }).find("is neither a graph input, an initializer nor a node output"), std::string::npos);

  Session s(g);
  std::string e = error_of([&] { s.run(Tensor(DType::F32, {1, 3, 31, 32})); });
  EXPECT_NE(e.find("has shape [1,3,31,32], the model expects ["), std::string::npos) << e;
  e = error_of([&] { s.run(Tensor(DType::I64, {1, 3, 32, 32})); });
  EXPECT_NE(e.find("is int64, the model expects float32"), std::string::npos) << e;

  // A weight of the wrong shape is caught at run time with the node's name.
  Graph bad_weight = g;
  for (Node& n : bad_weight.nodes)
    if (n.op_type == "Conv") {
      Tensor& w = bad_weight.initializers[n.inputs[1]];
      w = Tensor(DType::F32, {w.dim(0), w.dim(1) + 1, w.dim(2), w.dim(3)});
      break;
    }
  Session bw(bad_weight);
  e = error_of([&] { bw.run(Tensor(DType::F32, {1, 3, 32, 32})); });
  EXPECT_NE(e.find("Conv '"), std::string::npos) << e;
  EXPECT_NE(e.find("do not match"), std::string::npos) << e;
}

}  // namespace
}  // namespace lowbit
