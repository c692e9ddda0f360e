#pragma once
// The space of a design-space exploration (`lowbit explore --space SPACE.json`): which weight and
// activation formats, weight granularities and post-training techniques to combine.
//
// {
//   "model": "../shared/data/models/resnet20_cifar10.onnx",      (optional; the command line wins)
//   "formats": [ {"weights": ["int4", "int8"], "activations": ["int8"]},       every pair of a block
//                {"weights": ["e2m1", "e4m3"], "activations": ["e4m3"]} ],
//   "granularity": ["channel", "group:32"],                      (default ["channel"]; also "tensor")
//   "techniques": [ {"name": "rtn"},                             (default: rtn alone)
//                   {"name": "gptq", "passes": [{"name": "gptq"}]} ],
//   "recipe": { ... },           keys of a recipe shared by every point: layers, calibration, observers
//   "evaluation": {"images": 2000, "batch": 32},                 (default: every evaluation image)
//   "cost": {"parallelism": "channel", "dsp": true}              (see hw::model_cost)
// }
// Points are every (weights, activations) pair of each formats block x granularity x technique.
// Everything is checked when the space is read: formats parse, passes and parameters exist, every
// point's recipe is valid (which refuses gptq / adaround on block-scaled weights). Errors name the
// key, e.g. "space.formats[1].weights[2]: ...".
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/hw/model_cost.hpp"

namespace lowbit::dse {

struct ExplorePoint {
  std::string weight_format, activation_format;  // as the space names them
  std::string granularity;                       // "tensor", "channel", "group:32"
  std::string technique;
  nlohmann::json recipe;  // a complete recipe (QuantRecipe::from_json accepts it)
};

struct ExploreSpace {
  std::string model;  // empty when the space names none
  std::vector<ExplorePoint> points;
  size_t evaluation_images = 0;  // 0: all
  int batch = 32;
  hw::Parallelism parallelism;
  bool use_dsp = true;
  nlohmann::json source;  // the space file as read

  // Throws std::runtime_error naming the key that is wrong.
  static ExploreSpace from_json(const nlohmann::json& j);
  static ExploreSpace from_file(const std::string& path);  // errors start with the path
};

// The identity of a point's result: model file name, recipe, evaluation and cost settings, as
// canonical JSON (sorted keys, no spaces). Two runs that would compute the same numbers share it.
std::string point_key(const std::string& model_path, const ExplorePoint& p, const ExploreSpace& space, const std::string& data_dir);

}  // namespace lowbit::dse
