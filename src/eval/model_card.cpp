#include "lowbit/eval/model_card.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit {

// Generated at configure time from cards/*.json.
extern const std::vector<const char*> kBuiltinModelCards;

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Preprocess parse_preprocess(const json& j, const std::string& where) {
  Preprocess p;
  for (const auto& [k, v] : j.items())
    if (k != "resize_short" && k != "crop" && k != "crop_offset" && k != "normalize") throw std::runtime_error(fmt::format("{}: unknown preprocess key '{}'", where, k));
  p.resize_short = j.value("resize_short", 0);
  p.crop = j.value("crop", 0);
  std::string offset = j.value("crop_offset", "round");
  if (offset != "round" && offset != "floor")
    throw std::runtime_error(fmt::format("{}: crop_offset '{}' is not round (torchvision) or floor (Keras)", where, offset));
  p.crop_offset = offset == "floor" ? CropOffset::Floor : CropOffset::RoundHalfEven;
  const json& n = j.value("normalize", json("x/255"));
  if (n.is_string()) {
    std::string s = n.get<std::string>();
    if (s == "x/127.5-1")
      p.norm = Preprocess::Norm::Scale127_5;
    else if (s == "x/255")
      p.norm = Preprocess::Norm::Unit;
    else
      throw std::runtime_error(fmt::format("{}: normalize '{}' is not x/127.5-1, x/255 or {{mean, std}}", where, s));
  } else {
    if (!n.contains("mean") || !n.contains("std") || n["mean"].size() != 3 || n["std"].size() != 3)
      throw std::runtime_error(fmt::format("{}: normalize needs mean and std of 3 values", where));
    p.norm = Preprocess::Norm::MeanStd;
    for (size_t c = 0; c < 3; ++c) {
      p.mean[c] = n["mean"][c].get<float>();
      p.std[c] = n["std"][c].get<float>();
    }
  }
  return p;
}

std::string canonical_or_same(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return ec ? p : c.string();
}

}  // namespace

Preprocess ModelCard::preprocess_for(const std::string& data_dir) const {
  Preprocess p = preprocess;
  std::string d = canonical_or_same(data_dir);
  for (const std::string& r : pre_resized)
    if (canonical_or_same(r) == d) p.resize_short = 0;
  return p;
}

ModelCard parse_model_card(const std::string& json_text, const std::string& data_root, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", where, e.what()));
  }
  try {
    ModelCard c;
    c.source = json_text;
    for (const auto& [k, v] : j.items())
      if (k != "model" && k != "task" && k != "classes" && k != "preprocess" && k != "pre_resized" && k != "eval" && k != "calibration")
        throw std::runtime_error(fmt::format("unknown key '{}'", k));
    c.model = j.at("model").get<std::string>();
    c.task = j.value("task", "classification");
    c.classes = j.at("classes").get<int>();
    c.preprocess = parse_preprocess(j.value("preprocess", json::object()), where);
    auto resolve = [&](const std::string& rel) { return (fs::path(data_root) / rel).lexically_normal().string(); };
    for (const auto& r : j.value("pre_resized", json::array())) c.pre_resized.push_back(resolve(r.get<std::string>()));
    if (j.contains("eval")) c.eval_data = resolve(j["eval"].get<std::string>());
    if (j.contains("calibration")) {
      const json& cal = j["calibration"];
      c.calibration_data = resolve(cal.at("path").get<std::string>());
      c.calibration_per_class_first = cal.value("per_class_first", 0);
    }
    return c;
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
}

std::optional<ModelCard> find_model_card(const std::string& model_path) {
  fs::path model(model_path);
  std::string root = (model.parent_path() / "..").lexically_normal().string();
  if (root.empty()) root = "..";
  fs::path beside = model.string() + ".card.json";
  if (fs::exists(beside)) {
    std::ifstream f(beside);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_model_card(ss.str(), root, beside.string());
  }
  for (const char* text : kBuiltinModelCards) {
    ModelCard c = parse_model_card(text, root, "built-in model card");
    if (c.model == model.filename().string()) return c;
  }
  return std::nullopt;
}

std::string card_for_copy(const ModelCard& card, const std::string& model_file) {
  json j = json::parse(card.source);
  j["model"] = fs::path(model_file).filename().string();
  auto absolute = [](const std::string& p) { return fs::absolute(p).lexically_normal().string(); };
  if (!card.eval_data.empty()) j["eval"] = absolute(card.eval_data);
  if (!card.calibration_data.empty()) j["calibration"]["path"] = absolute(card.calibration_data);
  if (!card.pre_resized.empty()) {
    j["pre_resized"] = json::array();
    for (const std::string& r : card.pre_resized) j["pre_resized"].push_back(absolute(r));
  }
  return j.dump(2) + "\n";
}

ImageDataset calibration_set(const ModelCard& card) {
  if (card.calibration_data.empty()) throw std::runtime_error(fmt::format("the model card of {} names no calibration data", card.model));
  ImageDataset all = auto_detect(card.calibration_data);
  if (card.calibration_per_class_first <= 0) return all;
  std::map<int, int> taken;
  std::vector<Sample> picked;
  for (const Sample& s : all.samples())
    if (taken[s.label]++ < card.calibration_per_class_first) picked.push_back(s);
  return ImageDataset(std::move(picked), all.class_names());
}

ImageDataset without(const ImageDataset& eval, const ImageDataset& calib) {
  std::set<std::string> used;
  for (const Sample& s : calib.samples()) used.insert(canonical_or_same(s.path));
  std::vector<Sample> kept;
  for (const Sample& s : eval.samples())
    if (!used.count(canonical_or_same(s.path))) kept.push_back(s);
  return ImageDataset(std::move(kept), eval.class_names());
}

}  // namespace lowbit
