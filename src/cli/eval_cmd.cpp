// `lowbit eval MODEL`: top-1 / top-5 accuracy of a classifier, in float32 or under a quantization
// recipe, on the data its model card names (or --data).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/onnx_io.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/quantization_options.hpp"

namespace lowbit::cli {
namespace {

struct EvalOptions {
  std::string model, data, calib, recipe, weights = "float", activations = "float";
  int batch = 32, threads = 1;
  size_t limit = 0;
  bool exclude_calibration = false;
  std::string save, dump_inputs;
};

// Writes DIR/inputs.f32 (the preprocessed batches, float32, one after another), DIR/labels.i32 and
// DIR/inputs.json (the shape), for another engine to evaluate the same inputs.
class InputDump {
 public:
  explicit InputDump(const std::string& dir) : dir_(dir) {
    std::filesystem::create_directories(dir);
    inputs_.open(dir + "/inputs.f32", std::ios::binary);
    labels_.open(dir + "/labels.i32", std::ios::binary);
    if (!inputs_ || !labels_) throw std::runtime_error(fmt::format("{}: cannot write", dir));
  }
  void add(const Tensor& x, const std::vector<int>& labels) {
    inputs_.write(reinterpret_cast<const char*>(x.data<float>()), static_cast<std::streamsize>(x.size() * sizeof(float)));
    for (int l : labels) {
      int32_t v = l;
      labels_.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
    count_ += labels.size();
    image_shape_.assign(x.shape().begin() + 1, x.shape().end());
  }
  ~InputDump() {
    std::ofstream(dir_ + "/inputs.json") << fmt::format("{{\"images\": {}, \"image_shape\": [{}]}}\n", count_, fmt::join(image_shape_, ", "));
  }

 private:
  std::string dir_;
  std::ofstream inputs_, labels_;
  size_t count_ = 0;
  std::vector<int64_t> image_shape_;
};

void run(const EvalOptions& o) {
  // Everything that can be refused is checked before the long work starts.
  std::optional<QuantRecipe> recipe = recipe_from_options(o.recipe, o.weights, o.activations);
  Graph g = load_onnx(o.model);
  std::optional<ModelCard> card = find_model_card(o.model);
  std::string data_dir = !o.data.empty() ? o.data : card ? card->eval_data : "";
  if (data_dir.empty()) throw std::runtime_error(fmt::format("{}: no model card names its data; give --data DIR", o.model));
  if (!card) throw std::runtime_error(fmt::format("{}: no model card (write {}.card.json) to say how to preprocess", o.model, o.model));
  ImageDataset data = auto_detect(data_dir);
  Preprocess pre = card->preprocess_for(data_dir);

  std::string mode = "fp32";
  std::optional<CalibrationSource> calib;
  if (recipe || o.exclude_calibration) {
    calib = calibration_source(*card, o.calib);
    size_t before = data.size();
    data = without(data, calib->images);
    if (data.size() != before)
      fmt::print("{} of the evaluation images are calibration images: evaluating on the other {}\n", before - data.size(), data.size());
  }
  if (o.limit && o.limit < data.size()) data = spread_subset(data, o.limit);
  if (recipe) {
    size_t calib_images = std::min(recipe->calibration_images().value_or(calib->images.size()), calib->images.size());
    CalibrationFeed feed = calibration_feed(calib->images, calib->preprocess, calib_images, o.batch, o.threads);
    auto t0 = std::chrono::steady_clock::now();
    QuantizeGraphResult q = quantize_graph(std::move(g), *recipe, feed, o.threads);
    fmt::print("quantized {} layers, calibrated on {} images in {:.1f} s\n", q.layers.size(), calib_images,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    g = std::move(q.graph);
    mode = recipe->to_json().dump();
    if (!o.save.empty()) save_onnx(g, o.save);
  }
  Session s(std::move(g), SessionOptions{o.threads, true});
  fmt::print("{}: {} images from {}, {}\n", o.model, data.size(), data_dir, mode);
  ClassifyOptions co{o.batch, o.threads, true, "eval", {}};
  std::optional<InputDump> dump;
  if (!o.dump_inputs.empty()) {
    dump.emplace(o.dump_inputs);
    co.on_batch = [&](const Tensor& x, const std::vector<int>& labels) { dump->add(x, labels); };
  }
  ClassifyResult r = evaluate_classifier(s, data, pre, co);
  fmt::print("top-1 {:.2f} %\ntop-5 {:.2f} %\nimages/s {:.1f} (batch {}, {} thread{})\n", r.top1(), r.top5(), r.images_per_second(),
             o.batch, o.threads, o.threads == 1 ? "" : "s");
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* c = app.add_subcommand("eval", "top-1 / top-5 accuracy of a classifier in float32 or quantized");
  c->add_option("model", o->model, "ONNX model")->required();
  c->add_option("--data", o->data, "evaluation images (default: the model card's)");
  c->add_option("--calib", o->calib, "calibration images (default: the model card's)");
  c->add_option("--recipe", o->recipe, "quantization recipe (JSON)");
  c->add_option("--w", o->weights, "weight format, e.g. int8 (per channel)");
  c->add_option("--a", o->activations, "activation format, e.g. int8 (per tensor, percentile calibration)");
  c->add_option("--batch", o->batch, "batch size")->check(CLI::Range(1, 4096));
  c->add_option("--threads", o->threads, "threads")->check(CLI::Range(1, 256));
  c->add_option("--limit", o->limit, "evaluate on this many images, spread over the set");
  c->add_flag("--exclude-calibration", o->exclude_calibration, "leave out the calibration images also in float32");
  c->add_option("--dump-inputs", o->dump_inputs, "write the preprocessed inputs and labels to this folder (inputs.f32, labels.i32)");
  c->add_option("--save", o->save, "write the quantized graph (lowbit.FakeQuant nodes) to this ONNX file");
  c->callback([o] { run(*o); });
}

}  // namespace lowbit::cli
