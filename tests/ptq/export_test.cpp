// QONNX and ONNX QDQ exports of quantized ResNet-20: saved, loaded back and run, they compute the
// very logits of the fake-quantized graph. QONNX's Quant / FloatQuant are run by kernels written from
// the QONNX specification, so these tests also check lowbit's quantizers against that specification.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/format/fake_quant.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/ptq/export.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

struct Fixture {
  Graph model = load_onnx(kResnet20);
  CalibrationFeed feed;
  Tensor batch;
  Fixture() {
    ModelCard card = *find_model_card(kResnet20);
    feed = calibration_feed(calibration_set(card), card.preprocess, 64, 32, 2);
    feed([&](Tensor x) {
      if (batch.size() == 0) batch = std::move(x);
    });
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::vector<float> logits(const Graph& g, const Tensor& x) {
  Session s(g, SessionOptions{2, true});
  Tensor y = s.run(x).at(0);
  return {y.data<float>(), y.data<float>() + y.size()};
}

// Saves and loads the graph, so the test covers the ONNX files as written.
Graph through_file(const Graph& g, const std::string& name) {
  std::string path = (std::filesystem::temp_directory_path() / ("lowbit_export_test_" + name + ".onnx")).string();
  save_onnx(g, path);
  Graph back = load_onnx(path);
  std::filesystem::remove(path);
  return back;
}

size_t count_ops(const Graph& g, const std::string& domain, const std::string& op) {
  size_t n = 0;
  for (const Node& node : g.nodes) n += node.domain == domain && node.op_type == op;
  return n;
}

QuantizeGraphResult quantize(const char* recipe) {
  return quantize_graph(fixture().model, QuantRecipe::from_json(nlohmann::json::parse(recipe)), fixture().feed, 2);
}

void expect_same_logits(const std::vector<float>& want, const std::vector<float>& got) {
  ASSERT_EQ(want.size(), got.size());
  size_t differing = 0;
  for (size_t i = 0; i < want.size(); ++i) differing += std::memcmp(&want[i], &got[i], sizeof(float)) != 0;
  EXPECT_EQ(differing, 0u) << "of " << want.size() << " logits";
}

TEST(Export, Int8QonnxAndQdqComputeTheFakeQuantizedLogits) {
  QuantizeGraphResult q = quantize(R"({"weights": {"format": "int8"}, "activations": {"format": "int8"}})");
  const std::vector<float> want = logits(q.graph, fixture().batch);
  Graph explicit_graph = with_weight_quantizers(q);
  EXPECT_EQ(count_ops(explicit_graph, "lowbit", "FakeQuant"), 2 * q.layers.size());
  expect_same_logits(want, logits(explicit_graph, fixture().batch));

  QonnxExport qonnx = to_qonnx(explicit_graph);
  EXPECT_TRUE(qonnx.kept_as_lowbit.empty());
  Graph qonnx_back = through_file(qonnx.graph, "qonnx_int8");
  EXPECT_EQ(count_ops(qonnx_back, "qonnx.custom_op.general", "Quant"), 2 * q.layers.size());
  EXPECT_EQ(count_ops(qonnx_back, "lowbit", "FakeQuant"), 0u);
  expect_same_logits(want, logits(qonnx_back, fixture().batch));

  Graph qdq_back = through_file(to_qdq(explicit_graph), "qdq_int8");
  EXPECT_EQ(count_ops(qdq_back, "", "DequantizeLinear"), 2 * q.layers.size());
  EXPECT_EQ(count_ops(qdq_back, "", "QuantizeLinear"), q.layers.size());
  for (const auto& [name, t] : qdq_back.initializers)  // the weights are stored as int8 codes only
    EXPECT_FALSE(t.dtype() == DType::F32 && t.size() > 1000) << name;
  expect_same_logits(want, logits(qdq_back, fixture().batch));
}

TEST(Export, MinifloatsAndGroupScalesGoToFloatQuantAndQuant) {
  QuantizeGraphResult q = quantize(R"({"weights": {"format": "int4", "granularity": "group", "group_size": 16},
                                       "activations": {"format": "float8_e4m3fn"},
                                       "layers": [{"op": "Gemm", "weights": {"format": "e3m2", "granularity": "channel"}}]})");
  const std::vector<float> want = logits(q.graph, fixture().batch);
  QonnxExport qonnx = to_qonnx(with_weight_quantizers(q));
  EXPECT_TRUE(qonnx.kept_as_lowbit.empty());
  Graph back = through_file(qonnx.graph, "qonnx_float");
  EXPECT_EQ(count_ops(back, "qonnx.custom_op.general", "FloatQuant"), q.layers.size() + 1);
  EXPECT_EQ(count_ops(back, "qonnx.custom_op.general", "Quant"), q.layers.size() - 1);
  expect_same_logits(want, logits(back, fixture().batch));
  try {
    to_qdq(with_weight_quantizers(q));
    ADD_FAILURE() << "QDQ export of int4 / e4m3 quantizers was not refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("8-bit integer"), std::string::npos) << e.what();
  }
}

TEST(Export, BlockFormatsStayLowbitNodesAndStillCompute) {
  QuantizeGraphResult q = quantize(R"({"weights": {"format": "mxfp4"}, "activations": {"format": "mxfp8_e4m3"}})");
  const std::vector<float> want = logits(q.graph, fixture().batch);
  QonnxExport qonnx = to_qonnx(with_weight_quantizers(q));
  EXPECT_EQ(qonnx.kept_as_lowbit.size(), q.layers.size());  // the activations' MXFP8; MXFP4 weights are values
  expect_same_logits(want, logits(through_file(qonnx.graph, "qonnx_mx"), fixture().batch));
}

// A one-node graph y = OP(x, constants...).
Graph single_node(const std::string& op, std::vector<std::pair<std::string, Tensor>> constants, std::map<std::string, Attribute> attrs,
                  int64_t size) {
  Graph g;
  for (const char* name : {"x", "y"}) {
    ValueInfo v;
    v.name = name;
    v.dims = {size};
    v.has_shape = true;
    (name[0] == 'x' ? g.inputs : g.outputs).push_back(v);
  }
  Node n;
  n.op_type = op;
  n.domain = "qonnx.custom_op.general";
  n.name = "q";
  n.inputs = {"x"};
  for (auto& [name, t] : constants) {
    n.inputs.push_back(name);
    g.initializers.emplace(name, std::move(t));
  }
  n.outputs = {"y"};
  n.attrs = std::move(attrs);
  g.nodes.push_back(n);
  return g;
}

// Every code, every midpoint between neighbours and one float32 ulp either side, beyond the range.
std::vector<float> probe_values(const ScalarFormat& f, float scale) {
  std::vector<double> values;
  for (uint32_t c = 0; c < f.code_count(); ++c)
    if (double v = f.decode(c); std::isfinite(v)) values.push_back(v);
  std::sort(values.begin(), values.end());
  std::vector<float> out;
  for (size_t i = 0; i < values.size(); ++i) {
    float v = static_cast<float>(values[i] * scale);
    out.insert(out.end(), {v, std::nextafter(v, INFINITY), std::nextafter(v, -INFINITY)});
    if (i + 1 < values.size()) {
      float mid = static_cast<float>((values[i] + values[i + 1]) / 2 * scale);
      out.insert(out.end(), {mid, std::nextafter(mid, INFINITY), std::nextafter(mid, -INFINITY)});
    }
  }
  out.insert(out.end(), {static_cast<float>(f.max() * scale * 1.5), static_cast<float>(-f.max() * scale * 3), 0.0f});
  return out;
}

TEST(Export, QonnxFloatQuantOfTheSpecificationMatchesEveryMinifloat) {
  const float scale = 0.375f;
  size_t formats = 0;
  for (int bits = 3; bits <= 8; ++bits)
    for (int e = 1; e < bits - 1; ++e)
      for (const char* specials : {"fn", "none", "ieee"}) {
        int m = bits - 1 - e;
        std::string spec = fmt::format("e{}m{}:specials={}", e, m, specials);
        Format f = Format::parse(spec);
        const ScalarFormat& sf = *f.scalar();
        if (!std::isfinite(sf.max()) || sf.max() <= 0) continue;
        std::vector<float> x = probe_values(sf, scale);
        QuantizerConfig c(f);
        Quantizer quantizer(c);
        quantizer.set_params(QuantParams{{scale}, {}});
        std::vector<float> want(x.size());
        quantizer.fake_quant(x, want, std::vector<int64_t>{static_cast<int64_t>(x.size())});
        const MinifloatParams& p = sf.minifloat_params();
        Graph g = single_node("FloatQuant",
                              {{"scale", Tensor::scalar(scale)},
                               {"e", Tensor::scalar(static_cast<float>(p.exponent_bits))},
                               {"m", Tensor::scalar(static_cast<float>(p.mantissa_bits))},
                               {"bias", Tensor::scalar(static_cast<float>(p.bias))},
                               {"max", Tensor::scalar(static_cast<float>(sf.max()))}},
                              {{"rounding_mode", Attribute{std::string("ROUND")}}}, static_cast<int64_t>(x.size()));
        Tensor in(DType::F32, {static_cast<int64_t>(x.size())});
        std::copy(x.begin(), x.end(), in.data<float>());
        Session s(g, SessionOptions{1, false});
        Tensor y = s.run(in).at(0);
        size_t wrong = 0;
        for (size_t i = 0; i < x.size(); ++i) wrong += std::memcmp(&want[i], y.data<float>() + i, sizeof(float)) != 0;
        EXPECT_EQ(wrong, 0u) << spec << " over " << x.size() << " inputs";
        ++formats;
      }
  EXPECT_GE(formats, 40u);
}

// QONNX rounds x / scale + zeropt, ONNX QuantizeLinear (and lowbit) round x / scale, then add the
// zero point: the two differ exactly at ties when the zero point is odd, and nowhere else.
TEST(Export, QonnxQuantOfTheSpecificationMatchesEveryInteger) {
  const float scale = 0.0625f * 3;
  for (int bits = 2; bits <= 8; ++bits)
    for (const char* kind : {"int", "uint"})
      for (bool narrow : {false, true})
        for (float zero : {0.0f, 2.0f, 3.0f}) {
          if (narrow && kind[0] == 'u') continue;  // lowbit's narrow range is for signed integers
          std::string spec = fmt::format("{}{}{}", kind, bits, narrow ? "n" : "");
          Format f = Format::parse(spec);
          const IntegerParams& p = f.scalar()->integer_params();
          if (p.is_signed && zero != 0) continue;
          std::vector<float> x = probe_values(*f.scalar(), scale);
          for (float& v : x) v -= 2 * scale;  // reach below zero for the unsigned grids too
          QuantizerConfig c(f);
          c.symmetric = zero == 0;
          Quantizer quantizer(c);
          quantizer.set_params(QuantParams{{scale}, c.symmetric ? std::vector<float>{} : std::vector<float>{zero}});
          std::vector<float> want(x.size());
          quantizer.fake_quant(x, want, std::vector<int64_t>{static_cast<int64_t>(x.size())});
          Graph g = single_node("Quant",
                                {{"scale", Tensor::scalar(scale)}, {"zeropt", Tensor::scalar(zero)}, {"bits", Tensor::scalar(float(bits))}},
                                {{"signed", Attribute{int64_t{p.is_signed}}}, {"narrow", Attribute{int64_t{p.narrow}}}},
                                static_cast<int64_t>(x.size()));
          Tensor in(DType::F32, {static_cast<int64_t>(x.size())});
          std::copy(x.begin(), x.end(), in.data<float>());
          Session s(g, SessionOptions{1, false});
          Tensor y = s.run(in).at(0);
          size_t wrong = 0, ties = 0;
          for (size_t i = 0; i < x.size(); ++i) {
            // By value: an integer grid has no signed zero (QONNX's numpy arithmetic keeps -0 for -0.5).
            if (want[i] == y.data<float>()[i]) continue;
            float v = x[i] / scale;
            bool tie = v - std::floor(v) == 0.5f;
            ties += tie;
            wrong += !tie || static_cast<int>(zero) % 2 == 0;
          }
          EXPECT_EQ(wrong, 0u) << spec << " zero point " << zero << " over " << x.size() << " inputs";
          if (static_cast<int>(zero) % 2 == 1 && bits >= 3) {
            EXPECT_GT(ties, 0u) << spec;
          }
        }
}

// The export of an activation quantizer with an odd zero point still computes lowbit's values at
// every tie: MobileNet's input, (pixel - 127.5) / 127.5 under scale 2 / 255 and zero point 127, is
// ties only.
TEST(Export, QonnxOfAnOddZeroPointMatchesTheQuantizerAtEveryTie) {
  const float scale = 2.0f / 255;
  for (const char* spec : {"uint8", "uint4", "int8", "int8n", "int3"})
    for (float zero : {0.0f, 2.0f, 3.0f, 127.0f, -3.0f}) {
      Format f = Format::parse(spec);
      const ScalarFormat& sf = *f.scalar();
      if (zero < sf.lowest() || zero > sf.max()) continue;
      std::vector<float> x;
      for (double k = sf.lowest() - zero - 3; k <= sf.max() - zero + 3; k += 0.5) {
        float v = static_cast<float>(k * scale);
        x.insert(x.end(), {v, std::nextafter(v, INFINITY), std::nextafter(v, -INFINITY)});
      }
      Graph g = single_node("FakeQuant", {}, {{"format", Attribute{std::string(spec)}}, {"scale", Attribute{std::vector<float>{scale}}},
                                              {"zero_point", Attribute{std::vector<float>{zero}}}},
                            static_cast<int64_t>(x.size()));
      g.nodes[0].domain = "lowbit";
      Tensor in(DType::F32, {static_cast<int64_t>(x.size())});
      std::copy(x.begin(), x.end(), in.data<float>());
      Tensor want = Session(g, SessionOptions{1, false}).run(in).at(0);
      QonnxExport qonnx = to_qonnx(g);
      ASSERT_TRUE(qonnx.kept_as_lowbit.empty());
      bool odd = static_cast<int>(zero) % 2 != 0;
      EXPECT_EQ(count_ops(qonnx.graph, "qonnx.custom_op.general", "Quant"), odd ? 2u : 1u) << spec << " zero point " << zero;
      Tensor got = Session(through_file(qonnx.graph, "odd_zero_point"), SessionOptions{1, false}).run(in).at(0);
      size_t wrong = 0;
      for (size_t i = 0; i < x.size(); ++i) wrong += want.data<float>()[i] != got.data<float>()[i];  // by value, as above
      EXPECT_EQ(wrong, 0u) << spec << " zero point " << zero << " over " << x.size() << " inputs";
    }
}

}  // namespace
}  // namespace lowbit
