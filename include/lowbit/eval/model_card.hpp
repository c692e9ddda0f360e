#pragma once
// A model card: what a model expects (preprocessing, number of classes) and where its evaluation
// and calibration data live, so `lowbit eval MODEL` needs no flags for the models it knows.
//
// Looked up as MODEL.card.json next to the model, then among the cards built into lowbit (cards/ in
// the source tree), by the model's file name. Data paths are relative to the data root, the folder
// above the model's folder (../shared/data for ../shared/data/models/*.onnx).
#include <optional>
#include <string>
#include <vector>

#include "lowbit/io/dataset.hpp"

namespace lowbit {

struct ModelCard {
  std::string model;  // file name
  std::string task = "classification";
  int classes = 0;
  Preprocess preprocess;
  std::vector<std::string> pre_resized;  // data folders whose images are already resized: crop only
  std::string eval_data, calibration_data;  // absolute (resolved) paths; empty if not given
  int calibration_per_class_first = 0;      // > 0: calibrate on the first k images of each class
  std::string source;                       // the card's JSON text

  // The preprocessing for images from `data_dir`.
  Preprocess preprocess_for(const std::string& data_dir) const;
};

// Throws std::runtime_error on a card that exists but is malformed.
std::optional<ModelCard> find_model_card(const std::string& model_path);
ModelCard parse_model_card(const std::string& json_text, const std::string& data_root, const std::string& where);

// The card's JSON for another model file (an export of this model) with every data path absolute,
// to be written as MODEL.card.json beside it.
std::string card_for_copy(const ModelCard& card, const std::string& model_file);

// The calibration set of a card: the whole calibration folder, or the first k images per class.
ImageDataset calibration_set(const ModelCard& card);
// `eval` without the samples that `calib` also holds (same file path).
ImageDataset without(const ImageDataset& eval, const ImageDataset& calib);

}  // namespace lowbit
