// AdaRound: the gradient against finite differences of the loss, the output error on real layers
// with real inputs against round-to-nearest, the grid, determinism, conv_im2col and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/graph/passes.hpp"
#include "lowbit/ptq/adaround.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {
namespace {

const std::string kData = LOWBIT_SHARED_DATA;

std::vector<float> random_vector(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

QuantizerConfig per_channel(const std::string& format) {
  QuantizerConfig c(Format::parse(format));
  c.granularity = Granularity::Channel;
  c.axis = 0;
  return c;
}

QuantizerConfig per_group(const std::string& format, int group) {
  QuantizerConfig c(Format::parse(format));
  c.granularity = Granularity::Group;
  c.axis = 1;
  c.group_size = group;
  return c;
}

// Mean over the rows of x of the squared output error, summed over output channels; plain double loops.
double reference_mse(const std::vector<float>& w, const std::vector<float>& wq, int64_t rows, int64_t cols,
                     const std::vector<float>& x, int64_t n) {
  double sum = 0;
  std::vector<double> d(w.size());
  for (size_t i = 0; i < w.size(); ++i) d[i] = static_cast<double>(wq[i]) - w[i];
  for (int64_t b = 0; b < n; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double e = 0;
      for (int64_t c = 0; c < cols; ++c) e += x[static_cast<size_t>(b * cols + c)] * d[static_cast<size_t>(r * cols + c)];
      sum += e * e;
    }
  return sum / static_cast<double>(n);
}

// --- 1. The analytic gradient against central finite differences of the loss in double. ---

// The AdaRound loss on fixed rows, written from its definition.
double reference_loss(const std::vector<float>& w, const RoundingGrid& g, const std::vector<double>& v, int64_t rows,
                      int64_t cols, const std::vector<float>& x, int64_t b, double beta, double reg_weight) {
  std::vector<double> soft(w.size());
  double reg = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double s = 1 / (1 + std::exp(-v[i]));
    const double h = std::clamp(s * 1.2 - 0.1, 0.0, 1.0);
    soft[i] = g.lo[i] + h * (static_cast<double>(g.hi[i]) - g.lo[i]);
    if (g.hi[i] != g.lo[i]) reg += 1 - std::pow(std::fabs(2 * h - 1), beta);
  }
  double rec = 0;
  for (int64_t k = 0; k < b; ++k)
    for (int64_t r = 0; r < rows; ++r) {
      double e = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        e += x[static_cast<size_t>(k * cols + c)] * (soft[i] - w[i]);
      }
      rec += e * e;
    }
  return rec / static_cast<double>(b) + reg_weight * reg;
}

void check_gradient(const std::string& format, double beta, double reg_weight, bool gram, int threads) {
  const int64_t rows = 37, cols = 11, b = 13;  // 37 rows: two row chunks, the second partial
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 1);
  const std::vector<float> x = random_vector(static_cast<size_t>(b * cols), 2);
  const RoundingGrid g = rounding_grid(w, Shape{rows, cols}, per_channel(format));
  std::vector<float> v = random_vector(w.size(), 3, 1.2f);
  v[0] = 9.0f;  // h clamped at 1: no gradient
  const std::vector<float> grad = adaround_detail::gradient(w, g.lo, g.hi, v, rows, cols, x, b, static_cast<float>(beta),
                                                            static_cast<float>(reg_weight), gram, threads);
  ASSERT_EQ(grad.size(), w.size());
  std::vector<double> vd(v.begin(), v.end());
  double scale = 0;
  size_t free = 0;
  for (size_t i = 0; i < w.size(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(grad[i])));
  ASSERT_GT(scale, 0);
  for (size_t i = 0; i < w.size(); ++i) {
    if (g.lo[i] == g.hi[i] || i == 0) {
      EXPECT_EQ(grad[i], 0.0f) << i;
      continue;
    }
    ++free;
    const double eps = 1e-4, keep = vd[i];
    vd[i] = keep + eps;
    const double up = reference_loss(w, g, vd, rows, cols, x, b, beta, reg_weight);
    vd[i] = keep - eps;
    const double down = reference_loss(w, g, vd, rows, cols, x, b, beta, reg_weight);
    vd[i] = keep;
    const double fd = (up - down) / (2 * eps);
    EXPECT_NEAR(grad[i], fd, 2e-3 * std::max(std::fabs(fd), 0.05 * scale)) << format << (gram ? " gram" : "") << " element " << i;
  }
  EXPECT_GT(free, w.size() / 2);
}

TEST(AdaRound, GradientMatchesFiniteDifferences) {
  // The products through the rows, and through their Gram matrix.
  for (bool gram : {false, true}) {
    check_gradient("int3", 4.0, 0.0, gram, 1);  // reconstruction only
    check_gradient("int3", 4.0, 0.3, gram, 1);  // with the regularizer
    check_gradient("float4_e2m1fn", 2.0, 0.3, gram, 2);
    check_gradient("fixed<5,2,AP_RND_CONV,AP_SAT>", 7.5, 0.3, gram, 2);
  }
}

TEST(AdaRound, InitialVGivesTheFraction) {
  for (float f : {0.01f, 0.25f, 0.5f, 0.9f}) {
    const double s = 1 / (1 + std::exp(-static_cast<double>(adaround_detail::initial_v(f))));
    EXPECT_NEAR(s * 1.2 - 0.1, f, 1e-6);
  }
}

TEST(AdaRound, OutputMseMatchesDenseReference) {
  const int64_t rows = 23, cols = 300, n = 517;
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 4);
  const std::vector<float> x = random_vector(static_cast<size_t>(n * cols), 5);
  const RoundingGrid g = rounding_grid(w, Shape{rows, cols}, per_channel("int4"));
  const double ref = reference_mse(w, g.nearest, rows, cols, x, n);
  EXPECT_NEAR(output_mse(w, g.nearest, rows, cols, x, n), ref, 1e-5 * ref);
}

// --- conv_im2col against a direct convolution. ---

TEST(AdaRound, Im2colRowsReproduceTheConvolution) {
  Node conv;
  conv.name = "c";
  conv.op_type = "Conv";
  conv.attrs["strides"] = Attribute{std::vector<int64_t>{2, 1}};
  conv.attrs["dilations"] = Attribute{std::vector<int64_t>{1, 2}};
  conv.attrs["pads"] = Attribute{std::vector<int64_t>{1, 2, 0, 1}};
  const Shape xs{2, 3, 9, 8}, ws{4, 3, 3, 2};
  const std::vector<float> xv = random_vector(2 * 3 * 9 * 8, 6), w = random_vector(4 * 3 * 3 * 2, 7);
  const Tensor x = Tensor::from<float>(xs, xv);
  const int64_t oh = (9 + 1 + 0 - 3) / 2 + 1, ow = (8 + 2 + 1 - 3) / 1 + 1, cols = 3 * 3 * 2;
  const std::vector<float> all = conv_im2col(conv, x, ws, 1 << 20, 0);
  ASSERT_EQ(all.size(), static_cast<size_t>(2 * oh * ow * cols));
  for (int64_t img = 0; img < 2; ++img)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t z = 0; z < ow; ++z)
        for (int64_t m = 0; m < 4; ++m) {
          double direct = 0;
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 2; ++kx) {
                const int64_t iy = y * 2 - 1 + ky, ix = z - 2 + kx * 2;
                if (iy < 0 || iy >= 9 || ix < 0 || ix >= 8) continue;
                direct += static_cast<double>(xv[static_cast<size_t>(((img * 3 + c) * 9 + iy) * 8 + ix)]) *
                          w[static_cast<size_t>(((m * 3 + c) * 3 + ky) * 2 + kx)];
              }
          const size_t row = static_cast<size_t>((img * oh + y) * ow + z);
          double viaim2col = 0;
          for (int64_t k = 0; k < cols; ++k)
            viaim2col += static_cast<double>(all[row * static_cast<size_t>(cols) + static_cast<size_t>(k)]) *
                         w[static_cast<size_t>(m * cols + k)];
          EXPECT_NEAR(viaim2col, direct, 1e-9) << img << " " << y << " " << z << " " << m;
        }
  // A sample: distinct rows of the full matrix, in order.
  const std::vector<float> some = conv_im2col(conv, x, ws, 17, 3);
  ASSERT_EQ(some.size(), static_cast<size_t>(17 * cols));
  int64_t next = 0;
  for (int64_t r = 0; r < 17; ++r) {
    while (next < 2 * oh * ow && !std::equal(some.begin() + r * cols, some.begin() + (r + 1) * cols, all.begin() + next * cols))
      ++next;
    ASSERT_LT(next, 2 * oh * ow) << "sampled row " << r << " is not a later row of the full matrix";
    ++next;
  }
  EXPECT_EQ(conv_im2col(conv, x, ws, 17, 3), some);
  EXPECT_NE(conv_im2col(conv, x, ws, 17, 4), some);
}

// --- Real layers with their real inputs. ---

struct Layer {
  std::string name;
  Shape shape;  // the weight's own, [OC, IC, kh, kw]
  int64_t rows = 0, cols = 0;
  std::vector<float> w;
  std::vector<float> calib, held_out;  // im2col rows from the calibration images and from other images
  int64_t n_calib() const { return static_cast<int64_t>(calib.size()) / cols; }
  int64_t n_held() const { return static_cast<int64_t>(held_out.size()) / cols; }
};

// The folded weights of the named Conv layers and im2col rows of their inputs, captured with a
// value hook on `images` images of the model card's calibration set (two thirds for calibration,
// the rest held out), `rows_per_batch` rows sampled per batch of 16 images.
std::vector<Layer> capture_layers(const std::string& model, const std::vector<std::string>& names, size_t images,
                                  int64_t rows_per_batch) {
  const std::string path = kData + "/models/" + model;
  const ModelCard card = *find_model_card(path);
  Graph g = load_onnx(path);
  fold_batch_norm(g);
  std::vector<Layer> layers;
  std::map<std::string, size_t> by_input;
  std::map<size_t, const Node*> node_of;
  for (const std::string& name : names) {
    const Node* n = nullptr;
    for (const Node& k : g.nodes)
      if (k.name == name) n = &k;
    if (!n) throw std::runtime_error("no layer " + name + " in " + model);
    const Tensor& w = *g.initializer(n->inputs[1]);
    Layer l;
    l.name = name;
    l.shape = w.shape();
    l.rows = w.dim(0);
    l.cols = w.size() / w.dim(0);
    l.w.assign(w.span<float>().begin(), w.span<float>().end());
    by_input[n->inputs[0]] = layers.size();
    layers.push_back(std::move(l));
  }
  std::vector<Node> nodes;  // copies: the session owns its graph
  std::vector<Shape> shapes;
  for (const Layer& l : layers)
    for (const Node& k : g.nodes)
      if (k.name == l.name) {
        nodes.push_back(k);
        shapes.push_back(g.initializer(k.inputs[1])->shape());
      }
  const ImageDataset subset = spread_subset(calibration_set(card), images);
  if (subset.size() != images) throw std::runtime_error("the calibration set is too small");
  const size_t split = images * 2 / 3;
  const ImageDataset calib(std::vector<Sample>(subset.samples().begin(), subset.samples().begin() + static_cast<long>(split)));
  const ImageDataset held(std::vector<Sample>(subset.samples().begin() + static_cast<long>(split), subset.samples().end()));
  std::set<std::string> hooked;
  for (auto& [v, k] : by_input) hooked.insert(v);
  Session s(std::move(g), SessionOptions{2, true});
  bool to_calib = true;
  uint32_t batch_seed = 0;
  s.set_value_hook(hooked, [&](const std::string& value, const Tensor& t) {
    const size_t k = by_input.at(value);
    const std::vector<float> rows = conv_im2col(nodes[k], t, shapes[k], rows_per_batch, batch_seed);
    auto& dst = to_calib ? layers[k].calib : layers[k].held_out;
    dst.insert(dst.end(), rows.begin(), rows.end());
  });
  const Preprocess p = card.preprocess_for(card.calibration_data);
  for (const ImageDataset* part : {&calib, &held}) {
    to_calib = part == &calib;
    calibration_feed(*part, p, part->size(), 16, 2)([&](Tensor x) {
      s.run(std::move(x));
      ++batch_seed;
    });
  }
  return layers;
}

struct Comparison {
  double rtn = 0, ada = 0;
  double ratio() const { return ada / rtn; }
};

Comparison compare(const Layer& l, const QuantizerConfig& cfg, const AdaRoundOptions& opt) {
  const RoundingGrid g = rounding_grid(l.w, Shape{l.rows, l.cols}, cfg);
  const std::vector<float> wq = adaround_quantize(l.w, l.rows, l.cols, l.calib, l.n_calib(), cfg, opt);
  return {reference_mse(l.w, g.nearest, l.rows, l.cols, l.held_out, l.n_held()),
          reference_mse(l.w, wq, l.rows, l.cols, l.held_out, l.n_held())};
}

void expect_gains(const std::vector<Layer>& layers, const AdaRoundOptions& opt) {
  for (const Layer& l : layers) {
    ASSERT_GE(l.n_calib(), 2048) << l.name;
    ASSERT_GE(l.n_held(), 1024) << l.name;
    const Comparison i4 = compare(l, per_channel("int4"), opt);
    const Comparison f4 = compare(l, per_channel("float4_e2m1fn"), opt);
    const Comparison i8 = compare(l, per_channel("int8"), opt);
    std::printf("%-15s [%3lld x %3lld] held-out output MSE, AdaRound / nearest: int4 %.3f  float4_e2m1fn %.3f  int8 %.3f\n",
                l.name.c_str(), static_cast<long long>(l.rows), static_cast<long long>(l.cols), i4.ratio(), f4.ratio(),
                i8.ratio());
    EXPECT_LE(i4.ratio(), 0.8) << l.name << " int4";
    EXPECT_LE(f4.ratio(), 0.8) << l.name << " float4_e2m1fn";
    EXPECT_LE(i8.ratio(), 1.0) << l.name << " int8";
  }
}

TEST(AdaRound, ResNet20ConvsBeatRoundToNearest) {
  const std::vector<Layer> layers = capture_layers(
      "resnet20_cifar10.onnx", {"conv1", "layer1.0.conv1", "layer2.0.conv2", "layer3.2.conv2"}, 96, 1024);
  expect_gains(layers, AdaRoundOptions{});
  // Mini-batches of 1024 rows instead of the exact gradient.
  AdaRoundOptions mini;
  mini.batch_rows = 1024;
  const Comparison c = compare(layers[2], per_channel("int4"), mini);
  std::printf("%-15s int4 with 1024-row mini-batches: %.3f\n", layers[2].name.c_str(), c.ratio());
  EXPECT_LE(c.ratio(), 0.8);
}

TEST(AdaRound, MobileNetPointwiseConvsBeatRoundToNearest) {
  const std::vector<Layer> layers =
      capture_layers("mobilenet_v1_0.75_224.onnx", {"conv_pw_2", "conv_pw_4", "conv_pw_6"}, 96, 1024);
  expect_gains(layers, AdaRoundOptions{});
}

// --- 3. On the grid, every format. ---

TEST(AdaRound, ResultsLieOnTheGridForEveryFormat) {
  const std::vector<Layer> layers = capture_layers("resnet20_cifar10.onnx", {"layer2.0.conv2"}, 48, 512);
  const Layer& l = layers[0];
  std::vector<QuantizerConfig> configs = {per_channel("int4"), per_channel("float4_e2m1fn"), per_group("float6_e3m2fn", 32),
                                          per_group("int3", 16), per_channel("fixed<6,2,AP_RND_CONV,AP_SAT>"), per_channel("fixed<6,2>"),
                                          per_channel("e3m4:subnormals=off"), QuantizerConfig(Format::parse("int5"))};
  QuantizerConfig asym = per_channel("uint4");
  asym.symmetric = false;
  configs.push_back(asym);
  QuantizerConfig mse = per_channel("int4");
  mse.observer = ObserverKind::Mse;
  mse.scale_storage = ScaleStorage::Pow2;
  configs.push_back(mse);
  AdaRoundOptions opt;
  opt.iterations = 500;
  for (const QuantizerConfig& cfg : configs) {
    const std::string name = cfg.format.to_string() + " " + std::string(to_string(cfg.granularity)) +
                             (cfg.symmetric ? "" : " asymmetric") + " " + std::string(to_string(cfg.observer)) + " " +
                             std::string(to_string(cfg.scale_storage));
    const RoundingGrid g = rounding_grid(l.w, Shape{l.rows, l.cols}, cfg);
    const std::vector<float> wq = adaround_quantize(l.w, l.rows, l.cols, l.calib, l.n_calib(), cfg, opt);
    ASSERT_EQ(wq.size(), l.w.size());
    size_t changed = 0, two_sided = 0;
    for (size_t i = 0; i < wq.size(); ++i) {
      // lo <= w <= hi up to the float32 roundings of w / scale and q * scale; equal neighbours
      // where w is on the grid or clipped.
      const float tol = 1e-6f * std::fabs(l.w[i]);
      ASSERT_LE(g.lo[i], g.hi[i]) << name << " " << i;
      if (g.lo[i] != g.hi[i]) {
        ASSERT_LE(g.lo[i], l.w[i] + tol) << name << " " << i;
        ASSERT_GE(g.hi[i], l.w[i] - tol) << name << " " << i;
      }
      ASSERT_TRUE(g.nearest[i] == g.lo[i] || g.nearest[i] == g.hi[i]) << name << " " << i;
      ASSERT_TRUE(wq[i] == g.lo[i] || wq[i] == g.hi[i]) << name << " " << i;
      two_sided += g.lo[i] != g.hi[i];
      changed += wq[i] != g.nearest[i];
    }
    // The results are grid points: quantizing them again to nearest with the same scales keeps them.
    QuantizerConfig nearest = cfg;
    nearest.rounding = Rounding::NearestEven;
    Quantizer q(nearest);
    q.observe(l.w, std::vector<int64_t>{l.rows, l.cols});
    q.set_params(q.compute_params());
    std::vector<float> again(wq.size());
    q.fake_quant(wq, again, std::vector<int64_t>{l.rows, l.cols});
    EXPECT_EQ(again, wq) << name;
    EXPECT_GT(two_sided, wq.size() * 9 / 10) << name;
    EXPECT_GT(changed, wq.size() / 50) << name << ": AdaRound should move some weights away from the nearest value";
    const double rtn = reference_mse(l.w, g.nearest, l.rows, l.cols, l.held_out, l.n_held());
    const double ada = reference_mse(l.w, wq, l.rows, l.cols, l.held_out, l.n_held());
    std::printf("%-52s changed %5.1f%%  held-out output MSE ratio %.3f\n", name.c_str(), 100.0 * changed / wq.size(), ada / rtn);
    EXPECT_LT(ada, rtn) << name;
  }
}

TEST(AdaRound, GroupsFollowTheWeightsOwnShape) {
  // A 3x3 Conv weight [32, 32, 3, 3] with groups of 8 input channels (axis 1 of the 4-d shape), as
  // the round-to-nearest pipeline quantizes it; groups of 8 consecutive values of the flattened
  // rows would be another grid.
  const std::vector<Layer> layers = capture_layers("resnet20_cifar10.onnx", {"layer2.0.conv2"}, 48, 512);
  const Layer& l = layers[0];
  ASSERT_EQ(l.shape.size(), 4u);
  const QuantizerConfig cfg = per_group("int4", 8);
  Quantizer q(cfg);
  q.observe(l.w, l.shape);
  std::vector<float> rtn(l.w.size());
  q.fake_quant(l.w, rtn, l.shape);
  const RoundingGrid g4 = rounding_grid(l.w, l.shape, cfg), g2 = rounding_grid(l.w, Shape{l.rows, l.cols}, cfg);
  EXPECT_EQ(g4.nearest, rtn);
  EXPECT_NE(g2.nearest, rtn);
  AdaRoundOptions opt;
  opt.iterations = 500;
  const std::vector<float> wq = adaround_quantize(l.w, l.shape, l.calib, l.n_calib(), cfg, opt);
  for (size_t i = 0; i < wq.size(); ++i) ASSERT_TRUE(wq[i] == g4.lo[i] || wq[i] == g4.hi[i]) << i;
  EXPECT_LT(reference_mse(l.w, wq, l.rows, l.cols, l.held_out, l.n_held()),
            0.8 * reference_mse(l.w, rtn, l.rows, l.cols, l.held_out, l.n_held()));
}

TEST(AdaRound, GridOfInt4PerChannelIsFloorAndCeiling) {
  const int64_t rows = 9, cols = 40;
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 8);
  const RoundingGrid g = rounding_grid(w, Shape{rows, cols}, per_channel("int4"));
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[static_cast<size_t>(r * cols + c)]));
    const float s = amax / 7.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      const float v = w[i] / s;
      EXPECT_EQ(g.lo[i], std::clamp(std::floor(v), -8.0f, 7.0f) * s) << i;
      EXPECT_EQ(g.hi[i], std::clamp(std::ceil(v), -8.0f, 7.0f) * s) << i;
      EXPECT_EQ(g.nearest[i], std::clamp(std::nearbyint(v), -8.0f, 7.0f) * s) << i;
    }
  }
}

TEST(AdaRound, WrappingFixedPointKeepsTheNearestValueWhereUpOverflows) {
  // Per-channel scales put a row's largest weight at (about) the format's max; where fl32(w / scale)
  // lands just above it, rounding up wraps around in AP_WRAP.
  const int64_t rows = 64, cols = 100;
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 15);
  const QuantizerConfig cfg = per_channel("fixed<6,2>");
  Quantizer q(cfg);
  const std::vector<int64_t> shape{rows, cols};
  q.observe(w, shape);
  QuantizerConfig up_cfg = cfg;
  up_cfg.rounding = Rounding::Up;
  Quantizer up(up_cfg);
  up.set_params(q.compute_params());
  std::vector<float> raw(w.size());
  up.fake_quant(w, raw, shape);
  const RoundingGrid g = rounding_grid(w, Shape{rows, cols}, cfg);
  size_t wrapped = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    ASSERT_LE(g.lo[i], g.hi[i]) << i;
    if (raw[i] < w[i] - 1e-6f * std::fabs(w[i])) {
      ++wrapped;
      EXPECT_EQ(g.lo[i], g.nearest[i]) << i;
      EXPECT_EQ(g.hi[i], g.nearest[i]) << i;
    }
  }
  EXPECT_GT(wrapped, 0u) << "the case this test is about did not arise";
}

TEST(AdaRound, NoIterationsGiveRoundToNearest) {
  const int64_t rows = 20, cols = 30, n = 100;
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 9);
  const std::vector<float> x = random_vector(static_cast<size_t>(n * cols), 10);
  AdaRoundOptions opt;
  opt.iterations = 0;
  for (const char* f : {"int4", "float4_e2m1fn", "fixed<8,3,AP_RND_CONV,AP_SAT>"}) {
    const QuantizerConfig cfg = per_channel(f);
    EXPECT_EQ(adaround_quantize(w, rows, cols, x, n, cfg, opt), rounding_grid(w, Shape{rows, cols}, cfg).nearest) << f;
  }
}

// --- 4. Determinism. ---

TEST(AdaRound, DeterministicForASeedAndAnyThreadCount) {
  // rows: four chunks, the last partial; every step has enough work to run on two threads.
  const int64_t rows = 100, cols = 300;
  const std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 11);
  const QuantizerConfig cfg = per_channel("int4");
  // Mini-batches; every row through x^T x; every row directly (n < cols / 2).
  for (auto [n, batch] : {std::pair<int64_t, int>{3000, 512}, {3000, 0}, {100, 0}}) {
    const std::vector<float> x = random_vector(static_cast<size_t>(n * cols), 12);
    AdaRoundOptions opt;
    opt.iterations = 150;
    opt.batch_rows = batch;
    opt.seed = 5;
    const std::vector<float> one = adaround_quantize(w, rows, cols, x, n, cfg, opt);
    EXPECT_EQ(adaround_quantize(w, rows, cols, x, n, cfg, opt), one) << n << " " << batch;
    opt.threads = 2;
    EXPECT_EQ(adaround_quantize(w, rows, cols, x, n, cfg, opt), one) << n << " " << batch;
    if (batch > 0) {
      opt.seed = 6;
      EXPECT_NE(adaround_quantize(w, rows, cols, x, n, cfg, opt), one) << "the seed should pick the mini-batches";
    }
  }
}

// --- 5. Bad input. ---

template <class F>
void expect_invalid(F&& f, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << words << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(AdaRound, BadInputIsRefused) {
  const int64_t rows = 4, cols = 6, n = 10;
  std::vector<float> w = random_vector(static_cast<size_t>(rows * cols), 13);
  std::vector<float> x = random_vector(static_cast<size_t>(n * cols), 14);
  const QuantizerConfig cfg = per_channel("int4");
  expect_invalid([&] { adaround_quantize(std::span(w).first(23), rows, cols, x, n, cfg); }, "the weight has 23 values");
  expect_invalid([&] { adaround_quantize(w, rows, cols, std::span(x).first(59), n, cfg); }, "the inputs have 59 values");
  expect_invalid([&] { adaround_quantize(w, rows, cols, {}, 0, cfg); }, "no calibration rows");
  expect_invalid([&] { adaround_quantize(w, 0, cols, x, n, cfg); }, "empty");
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, QuantizerConfig(Format::parse("mxfp4"))); },
                 "needs a scalar format");
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, QuantizerConfig(Format::parse("bitmod_fp4"))); },
                 "needs a scalar format");
  AdaRoundOptions bad;
  bad.iterations = -1;
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, cfg, bad); }, "iterations");
  bad = {};
  bad.warmup = 1.5f;
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, cfg, bad); }, "warmup");
  bad = {};
  bad.beta_end = 0.5f;
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, cfg, bad); }, "beta");
  bad = {};
  bad.learning_rate = 0;
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, cfg, bad); }, "learning_rate");
  x[7] = std::nanf("");
  expect_invalid([&] { adaround_quantize(w, rows, cols, x, n, cfg); }, "calibration input value 7");
  w[3] = INFINITY;
  expect_invalid([&] { rounding_grid(w, Shape{rows, cols}, cfg); }, "weight value 3");
  expect_invalid([&] { output_mse(w, std::span(w).first(5), rows, cols, x, n); }, "5 quantized weights");

  Node dw;
  dw.name = "dw";
  dw.op_type = "Conv";
  dw.attrs["group"] = Attribute{int64_t{3}};
  const Tensor t(DType::F32, {1, 3, 5, 5});
  expect_invalid([&] { conv_im2col(dw, t, {3, 1, 3, 3}, 10, 0); }, "depthwise");
  Node conv;
  conv.name = "c";
  conv.op_type = "Conv";
  expect_invalid([&] { conv_im2col(conv, t, {3, 4, 3, 3}, 10, 0); }, "conv_im2col");
}

}  // namespace
}  // namespace lowbit
