#pragma once
// `lowbit explore`: evaluates every point of a space that the results store does not hold yet
// (top-1 on the evaluation images, calibrated on the calibration images, which are left out of the
// evaluation) and costs it in hardware, one store row per point as soon as it is done.
//
// Under `mpirun -n N` the points still to do are dealt round-robin to the N ranks; rank 0 also
// evaluates its share and is the only one that writes the store.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/dse/space.hpp"
#include "lowbit/dse/store.hpp"
#include "lowbit/eval/classify.hpp"
#include "lowbit/eval/model_card.hpp"
#include "lowbit/graph/graph.hpp"

namespace lowbit::dse {

struct ExploreOptions {
  std::string model;        // overrides the space's model
  std::string data, calib;  // override the model card's folders
  int threads = 1;          // per rank
  bool progress = true;     // bars on a terminal
};

// Loads the model and its data once and evaluates points of one space.
class PointEvaluator {
 public:
  // Checks everything that can be refused (model loads, has a model card, data folders exist).
  PointEvaluator(const ExploreSpace& space, const ExploreOptions& o);
  const std::string& model_path() const { return model_path_; }
  const std::string& data_dir() const { return data_dir_; }
  size_t evaluation_images() const { return eval_.size(); }
  std::string key(const ExplorePoint& p) const { return point_key(model_path_, p, space_, data_dir_); }
  // Quantizes, evaluates and costs one point (decoding the images on first use).
  PointResult evaluate(const ExplorePoint& p);

 private:
  const std::vector<Tensor>& calibration_batches(size_t images);
  ExploreSpace space_;
  ExploreOptions options_;
  std::string model_path_, data_dir_;
  Graph graph_, shaped_graph_;
  ModelCard card_;
  ImageDataset eval_, calib_;
  Preprocess eval_pre_, calib_pre_;
  std::vector<PreparedBatch> eval_batches_;
  std::map<size_t, std::vector<Tensor>> calib_batches_;
};

// The ranks of an MPI run (or the single process). Implemented over MPI when lowbit is built with
// it and launched by mpirun.
class Ranks {
 public:
  virtual ~Ranks() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank 0 -> all: the indices of the points to evaluate.
  virtual std::vector<int> broadcast(std::vector<int> values) = 0;
  // Rank > 0: hands a finished point to rank 0.
  virtual void send_result(const PointResult& p) = 0;
  // Rank 0: the next result another rank sent; waits when `wait`, else may return nothing.
  virtual std::optional<PointResult> receive_result(bool wait) = 0;
  // Every rank: stops together (after an error on one rank, the others are aborted).
  virtual void abort(int code) = 0;
};
// MPI ranks when launched by mpirun (and built with MPI), the single process otherwise.
std::unique_ptr<Ranks> make_ranks(int* argc, char*** argv);

struct ExploreSummary {
  size_t points = 0, stored_before = 0, evaluated = 0;
  double seconds = 0;  // wall time of the evaluations
  double points_per_minute() const { return seconds > 0 ? 60.0 * static_cast<double>(evaluated) / seconds : 0; }
};

// Runs the exploration; `log` receives one line per finished point (rank 0 only).
ExploreSummary explore(const ExploreSpace& space, const ExploreOptions& o, const std::string& store_path, Ranks& ranks,
                       const std::function<void(const std::string&)>& log);

}  // namespace lowbit::dse
