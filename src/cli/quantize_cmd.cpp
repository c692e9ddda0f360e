// `lowbit quantize MODEL --recipe R.json -o OUT`: applies a recipe (calibrating on the model card's
// calibration data) and writes OUT.qonnx.onnx and, where every quantizer is an 8-bit integer,
// OUT.qdq.onnx; prints a per-layer summary.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/ptq/export.hpp"
#include "lowbit/ptq/layer_report.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/quantization_options.hpp"

namespace lowbit::cli {
namespace {

struct QuantizeOptions {
  std::string model, calib, recipe, weights = "float", activations = "float", out;
  int batch = 32, threads = 1;
  size_t error_images = 64;
};

// The recipe without its passes: the round-to-nearest baseline the summary compares with.
QuantRecipe without_passes(const QuantRecipe& r) {
  nlohmann::json j = r.to_json();
  j.erase("passes");
  return QuantRecipe::from_json(j);
}

void run(const QuantizeOptions& o) {
  std::optional<QuantRecipe> recipe = recipe_from_options(o.recipe, o.weights, o.activations);
  if (!recipe) throw std::runtime_error("give a recipe (--recipe R.json) or formats (--w / --a)");
  Graph g = load_onnx(o.model);
  std::optional<ModelCard> card = find_model_card(o.model);
  if (!card) throw std::runtime_error(fmt::format("{}: no model card (write {}.card.json) to say how to preprocess", o.model, o.model));
  const CalibrationSource source = calibration_source(*card, o.calib);
  const ImageDataset& calib = source.images;
  const Preprocess& pre = source.preprocess;
  size_t images = std::min(recipe->calibration_images().value_or(calib.size()), calib.size());
  CalibrationFeed feed = calibration_feed(calib, pre, images, o.batch, o.threads);

  auto t0 = std::chrono::steady_clock::now();
  QuantizeGraphResult q = quantize_graph(g, *recipe, feed, o.threads);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("quantized {} layers of {}, calibrated on {} images from {} in {:.1f} s\n", q.layers.size(), o.model, images, source.dir,
             seconds);

  // Output errors on a few calibration images: after the recipe, and with round-to-nearest alone.
  std::vector<Tensor> error_batches;
  size_t taken = 0;
  calibration_feed(calib, pre, std::min(o.error_images, calib.size()), o.batch, o.threads)([&](Tensor x) {
    taken += static_cast<size_t>(x.dim(0));
    error_batches.push_back(std::move(x));
  });
  std::vector<std::string> outputs = quantized_layer_outputs(q);
  std::map<std::string, double> before, after = relative_output_errors(q.reference, q.graph, outputs, error_batches, o.threads);
  if (!recipe->passes().empty()) {
    QuantizeGraphResult rtn = quantize_graph(g, without_passes(*recipe), feed, o.threads);
    before = relative_output_errors(rtn.reference, rtn.graph, outputs, error_batches, o.threads);
  }
  fmt::print("\n{}", layer_table(q, before, after));
  fmt::print("out err: sum (quantized - float)^2 / sum float^2 of the layer's output on {} calibration images{}\n\n", taken,
             before.empty() ? "" : "; RTN = the same recipe without its passes");

  // Each export gets a copy of the model card, so that `lowbit eval EXPORT` finds its data.
  if (auto dir = std::filesystem::path(o.out).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
  auto save_with_card = [&](const Graph& graph, const std::string& path) {
    save_onnx(graph, path);
    std::ofstream(path + ".card.json") << card_for_copy(*card, path);
  };
  Graph explicit_graph = with_weight_quantizers(q);
  QonnxExport qonnx = to_qonnx(explicit_graph);
  std::string qonnx_path = o.out + ".qonnx.onnx";
  save_with_card(qonnx.graph, qonnx_path);
  fmt::print("wrote {} (QONNX)\n", qonnx_path);
  for (const std::string& why : qonnx.kept_as_lowbit) fmt::print("  kept as lowbit.FakeQuant: {}\n", why);
  try {
    Graph qdq = to_qdq(explicit_graph);
    std::string qdq_path = o.out + ".qdq.onnx";
    save_with_card(qdq, qdq_path);
    fmt::print("wrote {} (ONNX QDQ)\n", qdq_path);
  } catch (const std::runtime_error& e) {
    fmt::print("no ONNX QDQ form: {}\n", e.what());
  }
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* c = app.add_subcommand("quantize", "apply a quantization recipe and write the model as QONNX and ONNX QDQ");
  c->add_option("model", o->model, "ONNX model")->required();
  c->add_option("--recipe", o->recipe, "quantization recipe (JSON)");
  c->add_option("--w", o->weights, "weight format, e.g. int8 (per channel)");
  c->add_option("--a", o->activations, "activation format, e.g. int8 (per tensor)");
  c->add_option("-o,--output", o->out, "output path stem: writes STEM.qonnx.onnx and STEM.qdq.onnx")->required();
  c->add_option("--calib", o->calib, "calibration images (default: the model card's)");
  c->add_option("--batch", o->batch, "batch size")->check(CLI::Range(1, 4096));
  c->add_option("--threads", o->threads, "threads")->check(CLI::Range(1, 256));
  c->add_option("--error-images", o->error_images, "calibration images for the per-layer output errors");
  c->callback([o] { run(*o); });
}

}  // namespace lowbit::cli
