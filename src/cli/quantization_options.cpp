#include "src/cli/quantization_options.hpp"

#include <stdexcept>

namespace lowbit::cli {

std::optional<QuantRecipe> recipe_from_options(const std::string& file, const std::string& weights, const std::string& activations) {
  const bool formats = weights != "float" || activations != "float";
  if (!file.empty()) {
    if (formats) throw std::runtime_error("give either --recipe or --w / --a, not both");
    return QuantRecipe::from_file(file);
  }
  if (formats) return QuantRecipe::from_formats(weights, activations);
  return std::nullopt;
}

CalibrationSource calibration_source(const ModelCard& card, const std::string& calib_dir) {
  CalibrationSource c;
  c.dir = !calib_dir.empty() ? calib_dir : card.calibration_data;
  c.images = !calib_dir.empty() ? auto_detect(calib_dir) : calibration_set(card);
  c.preprocess = card.preprocess_for(c.dir);
  return c;
}

}  // namespace lowbit::cli
