#pragma once
// Image classification: top-1 / top-5 accuracy of a graph on a labelled image set, and the batches
// that feed calibration.
#include <functional>
#include <string>
#include <vector>

#include "lowbit/io/dataset.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {

struct ClassifyOptions {
  int batch = 32;
  int threads = 1;
  bool progress = true;  // on a terminal
  std::string label = "eval";
  // Called with each preprocessed input batch and its labels (e.g. to hand the same inputs to another engine).
  std::function<void(const Tensor& input, const std::vector<int>& labels)> on_batch;
};

struct ClassifyResult {
  size_t images = 0;
  size_t top1_hits = 0, top5_hits = 0;
  double seconds = 0;  // decoding overlaps inference; this is the wall time of the whole pass
  double top1() const { return images ? 100.0 * static_cast<double>(top1_hits) / static_cast<double>(images) : 0; }
  double top5() const { return images ? 100.0 * static_cast<double>(top5_hits) / static_cast<double>(images) : 0; }
  double images_per_second() const { return seconds > 0 ? static_cast<double>(images) / seconds : 0; }
};

// Runs every sample through `s` (one input, output [N, classes]); the next batch is decoded while
// the current one runs. Throws when the output does not have one row per image, or fewer than
// max(label)+1 classes.
ClassifyResult evaluate_classifier(Session& s, const ImageDataset& data, const Preprocess& p, const ClassifyOptions& o);

// A preprocessed batch kept in memory, for evaluating many graphs on the same images.
struct PreparedBatch {
  Tensor input;
  std::vector<int> labels;
};
// Decodes and preprocesses the whole set once.
std::vector<PreparedBatch> prepare_batches(const ImageDataset& data, const Preprocess& p, int batch, int threads);
ClassifyResult evaluate_classifier(Session& s, const std::vector<PreparedBatch>& batches, const ClassifyOptions& o);
// A calibration feed that hands out batches decoded once (see calibration_feed).
CalibrationFeed prepared_feed(std::vector<Tensor> batches);

// Batches of up to `images` samples of `data` (evenly spread over the set when it holds more).
CalibrationFeed calibration_feed(const ImageDataset& data, const Preprocess& p, size_t images, int batch, int threads);

// Picks `count` samples spread evenly over the set (all when count >= size).
ImageDataset spread_subset(const ImageDataset& data, size_t count);

}  // namespace lowbit
