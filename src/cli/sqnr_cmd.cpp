// `lowbit sqnr MODEL.onnx`: how much signal each format keeps of a real model's weights.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

const std::vector<std::string> kDefaultFormats = {
    "int8", "float8_e4m3fn", "float8_e5m2", "mxfp8", "mxint8", "int6", "float6_e2m3fn", "float6_e3m2fn",
    "mxfp6_e2m3", "int4", "float4_e2m1fn", "mxfp4", "nvfp4", "bitmod_fp4", "int3", "bitmod_fp3", "ternary"};

struct SqnrOptions {
  std::string model;
  std::vector<std::string> formats;
  std::string observer = "minmax";
  int threads = 2;
};

void run(const SqnrOptions& o) {
  const auto formats = o.formats.empty() ? kDefaultFormats : o.formats;
  const auto observer = parse_observer(o.observer);
  if (!observer) throw std::invalid_argument(fmt::format("unknown observer '{}' (minmax, percentile, mse, running)", o.observer));
  std::vector<Format> parsed;
  for (const auto& s : formats) parsed.push_back(Format::parse(s));  // refuse bad specs before any work
  struct Weight {
    std::vector<int64_t> shape;
    std::span<const float> values;
  };
  const Graph g = load_onnx(o.model);
  std::vector<Weight> weights;
  for (const auto& [name, t] : g.initializers)
    if (t.dtype() == DType::F32 && t.rank() >= 2) weights.push_back({t.shape(), t.span<float>()});  // Conv / Gemm / MatMul weights
  if (weights.empty()) throw std::runtime_error(fmt::format("{}: no float weight tensors of rank 2 or more", o.model));
  size_t params = 0;
  for (auto& w : weights) params += w.values.size();
  fmt::print("{}: {} weight tensors, {} parameters\n", o.model, weights.size(), params);
  fmt::print("scalar formats: one scale per output channel (axis 0), {} observer; block formats: their own scales\n\n",
             o.observer);
  fmt::print("{:<18} {:>9} {:>10} {:>12}\n", "format", "bits/elem", "SQNR dB", "worst layer");
  for (const Format& f : parsed) {
    double signal = 0, noise = 0, worst = INFINITY;
    for (const auto& w : weights) {
      QuantizerConfig c(f);
      if (f.scalar()) c.granularity = Granularity::Channel;
      c.observer = *observer;
      c.threads = o.threads;
      Quantizer q(c);
      q.observe(w.values, w.shape);
      std::vector<float> y(w.values.size());
      q.fake_quant(w.values, y, w.shape);
      double s = 0, n = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        s += static_cast<double>(w.values[i]) * w.values[i];
        n += (static_cast<double>(w.values[i]) - y[i]) * (static_cast<double>(w.values[i]) - y[i]);
      }
      signal += s;
      noise += n;
      worst = std::min(worst, 10 * std::log10(s / n));
    }
    fmt::print("{:<18} {:>9.3f} {:>10.2f} {:>12.2f}\n", formats[&f - parsed.data()], f.bits_per_element(),
               10 * std::log10(signal / noise), worst);
  }
}

}  // namespace

void add_sqnr_command(CLI::App& app) {
  auto opts = std::make_shared<SqnrOptions>();
  CLI::App* cmd = app.add_subcommand("sqnr", "SQNR of a model's weights in each format");
  cmd->add_option("model", opts->model, "ONNX model")->required();
  cmd->add_option("--format,-f", opts->formats, "Formats to compare (default: a ladder from 8 to 2 bits)");
  cmd->add_option("--observer", opts->observer, "Scale observer: minmax, percentile, mse")->capture_default_str();
  cmd->add_option("--threads", opts->threads, "Threads")->capture_default_str();
  cmd->callback([opts] { run(*opts); });
}

}  // namespace lowbit::cli
