#pragma once
// What `lowbit eval` and `lowbit quantize` share: the recipe from --recipe or --w / --a, and the
// calibration images from --calib or the model card.
#include <optional>
#include <string>

#include "lowbit/eval/model_card.hpp"
#include "lowbit/ptq/recipe.hpp"

namespace lowbit::cli {

// The recipe file, or "weights W per channel, activations A per tensor"; nullopt when both
// formats are "float" and no file is given. Throws when both a file and formats are given.
std::optional<QuantRecipe> recipe_from_options(const std::string& file, const std::string& weights, const std::string& activations);

struct CalibrationSource {
  ImageDataset images;
  std::string dir;        // the folder they come from
  Preprocess preprocess;  // for that folder
};

// `calib_dir` when given, else the model card's calibration set.
CalibrationSource calibration_source(const ModelCard& card, const std::string& calib_dir);

}  // namespace lowbit::cli
