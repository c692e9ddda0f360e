// ONNX's QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear conformance cases (Debian's
// libonnx-testdata) reproduced with lowbit's quantizer, element for element.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "lowbit/quant/quantizer.hpp"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
const fs::path kNodeDir = "/usr/share/libonnx-testdata/data/node";

template <class Msg>
Msg read_proto(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  Msg m;
  if (!f || !m.ParseFromIstream(&f)) throw std::runtime_error("cannot read " + p.string());
  return m;
}

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> values;
  int type = 0;
};

Tensor load(const fs::path& p) {
  const auto t = read_proto<onnx::TensorProto>(p);
  Tensor out;
  out.type = t.data_type();
  out.shape.assign(t.dims().begin(), t.dims().end());
  const std::string& raw = t.raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (!raw.empty()) {
        std::vector<float> v(raw.size() / 4);
        std::memcpy(v.data(), raw.data(), raw.size());
        out.values.assign(v.begin(), v.end());
      } else {
        out.values.assign(t.float_data().begin(), t.float_data().end());
      }
      break;
    case onnx::TensorProto::UINT8:
      if (!raw.empty()) for (unsigned char c : raw) out.values.push_back(c);
      else out.values.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case onnx::TensorProto::INT8:
      if (!raw.empty()) for (char c : raw) out.values.push_back(static_cast<signed char>(c));
      else out.values.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    default: throw std::runtime_error("unexpected tensor type in " + p.string());
  }
  return out;
}

std::vector<float> as_float(const Tensor& t) { return {t.values.begin(), t.values.end()}; }

int64_t axis_attribute(const fs::path& dir) {
  const auto model = read_proto<onnx::ModelProto>(dir / "model.onnx");
  for (const auto& a : model.graph().node(0).attribute())
    if (a.name() == "axis") return a.i();
  return 1;
}

Quantizer linear_quantizer(const Tensor& x, const Tensor& scale, const Tensor* zero, int64_t axis) {
  const bool is_unsigned = !zero || zero->type == onnx::TensorProto::UINT8;
  QuantizerConfig c(Format::parse(is_unsigned ? "uint8" : "int8"));
  c.symmetric = false;
  if (scale.values.size() > 1) {
    c.granularity = Granularity::Channel;
    c.axis = static_cast<int>(axis < 0 ? axis + static_cast<int64_t>(x.shape.size()) : axis);
  }
  Quantizer q(c);
  QuantParams p;
  p.scale = as_float(scale);
  p.zero_point = zero ? as_float(*zero) : std::vector<float>(p.scale.size(), 0.0f);
  q.set_params(p);
  return q;
}

std::vector<fs::path> cases(const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kNodeDir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.find("_expanded") == std::string::npos) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(OnnxConformance, QuantizeLinear) {
  const auto dirs = cases("test_quantizelinear");
  ASSERT_GE(dirs.size(), 2u) << "libonnx-testdata missing";
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const fs::path d = dir / "test_data_set_0";
    const Tensor x = load(d / "input_0.pb"), s = load(d / "input_1.pb"), want = load(d / "output_0.pb");
    const bool has_zero = fs::exists(d / "input_2.pb");
    const Tensor z = has_zero ? load(d / "input_2.pb") : Tensor{};
    const Quantizer q = linear_quantizer(x, s, has_zero ? &z : nullptr, axis_attribute(dir));
    const std::vector<float> in = as_float(x);
    std::vector<int32_t> got(in.size());
    q.quantize_to_integers(in, got, x.shape);
    ASSERT_EQ(got.size(), want.values.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want.values[i]) << "element " << i << " x=" << in[i];
  }
}

TEST(OnnxConformance, DequantizeLinear) {
  const auto dirs = cases("test_dequantizelinear");
  ASSERT_GE(dirs.size(), 2u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const fs::path d = dir / "test_data_set_0";
    const Tensor x = load(d / "input_0.pb"), s = load(d / "input_1.pb"), want = load(d / "output_0.pb");
    const bool has_zero = fs::exists(d / "input_2.pb");
    Tensor z = has_zero ? load(d / "input_2.pb") : Tensor{};
    if (has_zero) z.type = x.type;
    const Quantizer q = linear_quantizer(x, s, has_zero ? &z : nullptr, axis_attribute(dir));
    std::vector<int32_t> codes(x.values.begin(), x.values.end());
    std::vector<float> got(codes.size());
    q.dequantize_integers(codes, got, x.shape);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want.values[i])) << "element " << i;
  }
}

TEST(OnnxConformance, DynamicQuantizeLinear) {
  const auto dirs = cases("test_dynamicquantizelinear");
  ASSERT_EQ(dirs.size(), 3u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const fs::path d = dir / "test_data_set_0";
    const Tensor x = load(d / "input_0.pb"), y = load(d / "output_0.pb"), s = load(d / "output_1.pb"),
                 z = load(d / "output_2.pb");
    QuantizerConfig c(Format::parse("uint8"));
    c.symmetric = false;
    Quantizer q(c);
    const std::vector<float> in = as_float(x);
    q.observe(in, x.shape);
    const QuantParams p = q.compute_params();
    ASSERT_EQ(p.scale.size(), 1u);
    EXPECT_EQ(p.scale[0], static_cast<float>(s.values[0]));
    EXPECT_EQ(p.zero_point[0], static_cast<float>(z.values[0]));
    std::vector<int32_t> got(in.size());
    q.quantize_to_integers(in, got, x.shape);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], y.values[i]) << "element " << i;
  }
}

}  // namespace
}  // namespace lowbit
