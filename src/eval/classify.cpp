#include "lowbit/eval/classify.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/util/progress.hpp"

namespace lowbit {

namespace {

struct Batch {
  std::vector<float> pixels;
  std::vector<int> labels;
};

Batch load(const ImageDataset& data, size_t begin, size_t count, const Preprocess& p, int threads) {
  Batch b;
  load_batch(data, begin, count, p, b.pixels, b.labels, threads);
  return b;
}

Tensor to_tensor(Batch& b) {
  size_t n = b.labels.size();
  size_t per = n ? b.pixels.size() / n : 0;
  // Square RGB images: [N, 3, H, W].
  int64_t hw = static_cast<int64_t>(per / 3);
  int64_t side = 1;
  while (side * side < hw) ++side;
  if (side * side != hw) throw std::runtime_error("preprocessed images are not square");
  return Tensor::from<float>({static_cast<int64_t>(n), 3, side, side}, b.pixels);
}

// Scores one batch of logits against its labels; `where(i)` names the i-th image in errors.
void score_batch(const Tensor& logits, const std::vector<int>& labels, const std::function<std::string(size_t)>& where,
                 ClassifyResult& r) {
  size_t n = labels.size();
  if (logits.dtype() != DType::F32 || logits.rank() != 2 || static_cast<size_t>(logits.dim(0)) != n)
    throw std::runtime_error(fmt::format("the model's output has shape {}, expected [{}, classes]", shape_string(logits.shape()), n));
  int64_t classes = logits.dim(1);
  const float* l = logits.data<float>();
  for (size_t i = 0; i < n; ++i) {
    int label = labels[i];
    if (label < 0 || label >= classes)
      throw std::runtime_error(fmt::format("label {} of {} is beyond the model's {} classes", label, where(i), classes));
    const float* row = l + static_cast<int64_t>(i) * classes;
    // Rank of the true class: classes scoring higher, ties broken by index as a stable sort would.
    int64_t rank = 0;
    for (int64_t c = 0; c < classes; ++c)
      if (row[c] > row[label] || (row[c] == row[label] && c < label)) ++rank;
    r.top1_hits += rank < 1;
    r.top5_hits += rank < 5;
  }
  r.images += n;
}

}  // namespace

ClassifyResult evaluate_classifier(Session& s, const ImageDataset& data, const Preprocess& p, const ClassifyOptions& o) {
  ClassifyResult r;
  if (data.size() == 0) throw std::runtime_error("the evaluation set is empty");
  size_t batch = static_cast<size_t>(std::max(1, o.batch));
  auto start = std::chrono::steady_clock::now();
  Progress bar(o.label, o.progress ? data.size() : 0);
  std::future<Batch> next = std::async(std::launch::async, load, std::cref(data), 0, std::min(batch, data.size()), std::cref(p), o.threads);
  for (size_t begin = 0; begin < data.size(); begin += batch) {
    Batch b = next.get();
    size_t after = begin + batch;
    if (after < data.size())
      next = std::async(std::launch::async, load, std::cref(data), after, std::min(batch, data.size() - after), std::cref(p), o.threads);
    Tensor input = to_tensor(b);
    if (o.on_batch) o.on_batch(input, b.labels);
    std::vector<Tensor> out = s.run(input);
    score_batch(out.at(0), b.labels, [&](size_t i) { return data[begin + i].path; }, r);
    bar.advance(b.labels.size());
  }
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::vector<PreparedBatch> prepare_batches(const ImageDataset& data, const Preprocess& p, int batch, int threads) {
  std::vector<PreparedBatch> out;
  size_t b = static_cast<size_t>(std::max(1, batch));
  for (size_t begin = 0; begin < data.size(); begin += b) {
    Batch x = load(data, begin, std::min(b, data.size() - begin), p, threads);
    out.push_back({to_tensor(x), std::move(x.labels)});
  }
  return out;
}

ClassifyResult evaluate_classifier(Session& s, const std::vector<PreparedBatch>& batches, const ClassifyOptions& o) {
  ClassifyResult r;
  if (batches.empty()) throw std::runtime_error("the evaluation set is empty");
  auto start = std::chrono::steady_clock::now();
  size_t total = 0;
  for (const PreparedBatch& b : batches) total += b.labels.size();
  Progress bar(o.label, o.progress ? total : 0);
  for (size_t k = 0; k < batches.size(); ++k) {
    const PreparedBatch& b = batches[k];
    if (o.on_batch) o.on_batch(b.input, b.labels);
    std::vector<Tensor> out = s.run(b.input);
    score_batch(out.at(0), b.labels, [&](size_t i) { return fmt::format("image {} of batch {}", i, k); }, r);
    bar.advance(b.labels.size());
  }
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

CalibrationFeed prepared_feed(std::vector<Tensor> batches) {
  return [batches = std::move(batches)](const std::function<void(Tensor)>& consume) {
    for (const Tensor& b : batches) consume(b);
  };
}

ImageDataset spread_subset(const ImageDataset& data, size_t count) {
  if (count >= data.size()) return data;
  std::vector<Sample> picked;
  for (size_t k = 0; k < count; ++k) picked.push_back(data[k * data.size() / count]);
  return ImageDataset(std::move(picked), data.class_names());
}

CalibrationFeed calibration_feed(const ImageDataset& data, const Preprocess& p, size_t images, int batch, int threads) {
  ImageDataset subset = spread_subset(data, images);
  return [subset, p, batch, threads](const std::function<void(Tensor)>& consume) {
    size_t b = static_cast<size_t>(std::max(1, batch));
    Progress bar("calibrate", subset.size());
    for (size_t begin = 0; begin < subset.size(); begin += b) {
      Batch x = load(subset, begin, std::min(b, subset.size() - begin), p, threads);
      consume(to_tensor(x));
      bar.advance(x.labels.size());
    }
  };
}

}  // namespace lowbit
