#pragma once
// A quantization recipe: which format each weight and each activation gets, by operator type, node
// name or position (first / last quantized layer), with granularity and observer.
//
// JSON form (unknown keys are refused):
// {
//   "weights":     {"format": "int8", "granularity": "channel", "observer": "minmax"},
//   "activations": {"format": "int8", "observer": "percentile", "percentile": 99.99},
//   "layers": [ {"op": "Gemm", "weights": {"format": "int4"}},
//               {"name": "conv1", "activations": "float"},
//               {"position": "first", "weights": {"format": "int8"}},
//               {"depthwise": true, "weights": {"format": "int8"}} ],
//   "calibration": {"images": 256}    (default: every image of the calibration set)
//   "passes": [ {"name": "cross_layer_equalization"}, {"name": "bias_correction"} ]
// }
// Passes run in this order whatever order the list gives: graph rewrites (cross_layer_equalization,
// then smoothquant {alpha}, then hadamard {convolutions, random_signs, seed}),
// then the weight rounding (round-to-nearest, or gptq / adaround: at most one), then
// bias_correction.
// A quantizer spec lists any of: format ("float" = leave in float32), granularity (tensor, channel,
// group), group_size, symmetric, unsigned_if_nonnegative (activations: a tensor whose calibration
// values are all >= 0 gets the unsigned format of the same width, e4m3 -> ue4m4), observer (minmax,
// percentile, mse, running, entropy), percentile, scale (fp32, pow2, e8m0, e4m3), rounding. A layer rule's spec overrides only the keys it names; later
// rules win. Defaults: weights per channel, symmetric, min-max; activations per tensor, min-max,
// asymmetric for integer formats and symmetric otherwise.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/graph/graph.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit {

enum class TensorRole { Weight, Activation };

// A post-training technique named in the recipe's "passes" list, with its parameters (only the
// keys its kind accepts; see QuantRecipe::pass_parameters).
struct PassSpec {
  std::string name;
  nlohmann::json params;  // an object
  double number(const char* key, double def) const { return params.contains(key) ? params[key].get<double>() : def; }
  bool flag(const char* key, bool def) const { return params.contains(key) ? params[key].get<bool>() : def; }
};

struct LayerRule {
  std::string op, name, position;  // empty = any
  std::optional<bool> depthwise;    // true: grouped convolutions only; false: all other layers
  std::optional<nlohmann::json> weights, activations;
};

class QuantRecipe {
 public:
  // Throws std::runtime_error naming the key or value that is wrong.
  static QuantRecipe from_json(const nlohmann::json& j);
  static QuantRecipe from_file(const std::string& path);
  // The recipe of `lowbit eval --w W --a A` (either may be "float").
  static QuantRecipe from_formats(const std::string& weights, const std::string& activations);

  // The quantizer for a role of a layer (Conv / Gemm / MatMul node), or nullopt to keep it float.
  // `axis` is the channel axis for per-channel weights.
  std::optional<QuantizerConfig> config_for(const Node& n, TensorRole role, bool first, bool last, int axis) const;

  // How many calibration images to use; nullopt: the whole calibration set.
  std::optional<size_t> calibration_images() const { return calibration_images_; }
  const nlohmann::json& to_json() const { return json_; }

  const std::vector<PassSpec>& passes() const { return passes_; }
  const PassSpec* pass(const std::string& name) const;
  // The passes lowbit knows and the parameters each accepts.
  static const std::map<std::string, std::vector<std::string>>& pass_parameters();

 private:
  nlohmann::json weights_, activations_;
  std::vector<LayerRule> layers_;
  std::optional<size_t> calibration_images_;
  std::vector<PassSpec> passes_;
  nlohmann::json json_;
};

}  // namespace lowbit
