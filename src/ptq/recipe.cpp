#include "lowbit/ptq/recipe.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit {

namespace {

using json = nlohmann::json;

void check_keys(const json& j, std::initializer_list<const char*> allowed, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(fmt::format("{} must be a JSON object", where));
  for (const auto& [k, v] : j.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) throw std::runtime_error(fmt::format("{}: unknown key '{}'", where, k));
  }
}

// "float" as a whole spec means the same as {"format": "float"}.
json normalize_spec(const json& j, const std::string& where) {
  if (j.is_string()) return json{{"format", j}};
  if (j.is_null()) return json{{"format", "float"}};
  check_keys(j, {"format", "granularity", "group_size", "symmetric", "unsigned_if_nonnegative", "observer", "percentile", "scale", "rounding"},
             where);
  return j;
}

std::string get_string(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return "";
  if (!j[key].is_string()) throw std::runtime_error(fmt::format("{}: '{}' must be a string", where, key));
  return j[key].get<std::string>();
}

// A spec merged over defaults into a QuantizerConfig; nullopt for "float".
std::optional<QuantizerConfig> build_config(const json& spec, TensorRole role, int axis, const std::string& where) {
  std::string fmt_text = get_string(spec, "format", where);
  if (fmt_text.empty() || fmt_text == "float") return std::nullopt;
  Format f = [&] {
    try {
      return Format::parse(fmt_text);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
    }
  }();
  QuantizerConfig c(f);
  const ScalarFormat* s = f.scalar();
  bool integer = s && s->kind() == ScalarKind::Integer;
  c.granularity = role == TensorRole::Weight && s ? Granularity::Channel : Granularity::Tensor;
  c.symmetric = role == TensorRole::Weight || !integer;
  if (std::string g = get_string(spec, "granularity", where); !g.empty()) {
    auto parsed = parse_granularity(g);
    if (!parsed || *parsed == Granularity::Token)
      throw std::runtime_error(fmt::format("{}: granularity '{}' is not one of tensor, channel, group", where, g));
    c.granularity = *parsed;
  }
  if (!s) c.granularity = Granularity::Tensor;  // block and BitMoD formats scale themselves
  c.axis = axis;
  if (c.granularity == Granularity::Group) c.axis = role == TensorRole::Weight ? 1 : -1;
  if (spec.contains("group_size")) {
    if (!spec["group_size"].is_number_integer() || spec["group_size"].get<int>() < 1)
      throw std::runtime_error(fmt::format("{}: group_size must be a positive integer", where));
    c.group_size = spec["group_size"].get<int>();
  }
  if (spec.contains("symmetric")) {
    if (!spec["symmetric"].is_boolean()) throw std::runtime_error(fmt::format("{}: 'symmetric' must be true or false", where));
    c.symmetric = spec["symmetric"].get<bool>();
  }
  if (spec.contains("unsigned_if_nonnegative")) {
    if (!spec["unsigned_if_nonnegative"].is_boolean())
      throw std::runtime_error(fmt::format("{}: 'unsigned_if_nonnegative' must be true or false", where));
    if (role == TensorRole::Weight)
      throw std::runtime_error(fmt::format("{}: 'unsigned_if_nonnegative' is for activations", where));
    c.unsigned_if_nonnegative = spec["unsigned_if_nonnegative"].get<bool>();
  }
  if (std::string o = get_string(spec, "observer", where); !o.empty()) {
    auto parsed = parse_observer(o);
    if (!parsed) throw std::runtime_error(fmt::format("{}: observer '{}' is not one of minmax, percentile, mse, running, entropy", where, o));
    c.observer = *parsed;
  }
  if (spec.contains("percentile")) {
    if (!spec["percentile"].is_number()) throw std::runtime_error(fmt::format("{}: 'percentile' must be a number", where));
    c.percentile = spec["percentile"].get<double>();
  }
  if (std::string sc = get_string(spec, "scale", where); !sc.empty()) {
    auto parsed = parse_scale_storage(sc);
    if (!parsed) throw std::runtime_error(fmt::format("{}: scale '{}' is not one of fp32, pow2, e8m0, e4m3", where, sc));
    c.scale_storage = *parsed;
  }
  if (std::string r = get_string(spec, "rounding", where); !r.empty()) {
    auto parsed = parse_rounding(r);
    if (!parsed) throw std::runtime_error(fmt::format("{}: unknown rounding '{}'", where, r));
    c.rounding = *parsed;
  }
  try {
    Quantizer check(c);  // validates the combination (e.g. a zero point with a minifloat)
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
  return c;
}

}  // namespace

QuantRecipe QuantRecipe::from_json(const nlohmann::json& j) {
  check_keys(j, {"weights", "activations", "layers", "calibration", "passes", "description"}, "recipe");
  QuantRecipe r;
  r.json_ = j;
  r.weights_ = normalize_spec(j.value("weights", json("float")), "recipe.weights");
  r.activations_ = normalize_spec(j.value("activations", json("float")), "recipe.activations");
  if (j.contains("layers")) {
    if (!j["layers"].is_array()) throw std::runtime_error("recipe.layers must be a list");
    for (size_t k = 0; k < j["layers"].size(); ++k) {
      const json& l = j["layers"][k];
      std::string where = fmt::format("recipe.layers[{}]", k);
      check_keys(l, {"op", "name", "position", "depthwise", "weights", "activations"}, where);
      LayerRule rule;
      rule.op = get_string(l, "op", where);
      rule.name = get_string(l, "name", where);
      rule.position = get_string(l, "position", where);
      if (!rule.position.empty() && rule.position != "first" && rule.position != "last")
        throw std::runtime_error(fmt::format("{}: position must be 'first' or 'last'", where));
      if (l.contains("depthwise")) {
        if (!l["depthwise"].is_boolean()) throw std::runtime_error(fmt::format("{}: depthwise must be true or false", where));
        rule.depthwise = l["depthwise"].get<bool>();
      }
      if (l.contains("weights")) rule.weights = normalize_spec(l["weights"], where + ".weights");
      if (l.contains("activations")) rule.activations = normalize_spec(l["activations"], where + ".activations");
      r.layers_.push_back(std::move(rule));
    }
  }
  if (j.contains("calibration")) {
    check_keys(j["calibration"], {"images"}, "recipe.calibration");
    if (j["calibration"].contains("images")) {
      const json& n = j["calibration"]["images"];
      if (!n.is_number_integer() || n.get<int64_t>() < 1) throw std::runtime_error("recipe.calibration.images must be a positive integer");
      r.calibration_images_ = n.get<size_t>();
    }
  }
  if (j.contains("passes")) {
    if (!j["passes"].is_array()) throw std::runtime_error("recipe.passes must be a list");
    int rounding_passes = 0;
    for (size_t k = 0; k < j["passes"].size(); ++k) {
      const json& p = j["passes"][k];
      std::string where = fmt::format("recipe.passes[{}]", k);
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string())
        throw std::runtime_error(fmt::format("{} must be an object with a \"name\"", where));
      PassSpec spec;
      spec.name = p["name"].get<std::string>();
      auto known = pass_parameters().find(spec.name);
      if (known == pass_parameters().end()) {
        std::vector<std::string> names;
        for (const auto& [n, params] : pass_parameters()) names.push_back(n);
        throw std::runtime_error(fmt::format("{}: unknown pass '{}' (known: {})", where, spec.name, fmt::join(names, ", ")));
      }
      spec.params = json::object();
      for (const auto& [key, value] : p.items()) {
        if (key == "name") continue;
        if (std::find(known->second.begin(), known->second.end(), key) == known->second.end())
          throw std::runtime_error(fmt::format("{}: pass '{}' has no parameter '{}' (it takes: {})", where, spec.name, key,
                                               known->second.empty() ? "none" : fmt::format("{}", fmt::join(known->second, ", "))));
        if (!value.is_number() && !value.is_boolean())
          throw std::runtime_error(fmt::format("{}: parameter '{}' must be a number or true / false", where, key));
        spec.params[key] = value;
      }
      if (spec.name == "gptq" || spec.name == "adaround") ++rounding_passes;
      for (const PassSpec& earlier : r.passes_)
        if (earlier.name == spec.name) throw std::runtime_error(fmt::format("{}: pass '{}' is named twice", where, spec.name));
      r.passes_.push_back(std::move(spec));
    }
    if (rounding_passes > 1) throw std::runtime_error("recipe.passes: gptq and adaround both round the weights; name one");
  }
  // Validate every spec now, so a bad recipe is refused before any work starts.
  Node probe;
  probe.op_type = "Conv";
  for (bool first : {false, true})
    for (bool last : {false, true}) {
      r.config_for(probe, TensorRole::Weight, first, last, 0);
      r.config_for(probe, TensorRole::Activation, first, last, 1);
    }
  for (const LayerRule& rule : r.layers_) {
    nlohmann::json w = r.weights_, a = r.activations_;
    if (rule.weights) w.update(*rule.weights);
    if (rule.activations) a.update(*rule.activations);
    build_config(w, TensorRole::Weight, 0, "recipe.layers (weights)");
    build_config(a, TensorRole::Activation, 1, "recipe.layers (activations)");
  }
  // GPTQ and AdaRound choose each weight's rounding on a scalar grid; block-scaled and BitMoD
  // formats choose their own scales per block, so the passes cannot serve them.
  if (const PassSpec* learned = r.pass("gptq") ? r.pass("gptq") : r.pass("adaround")) {
    auto check = [&](const nlohmann::json& spec, const std::string& where) {
      std::optional<QuantizerConfig> c = build_config(spec, TensorRole::Weight, 0, where);
      if (c && !c->format.scalar())
        throw std::runtime_error(fmt::format("{}: {} learns the rounding of scalar formats; {} is not one (block-scaled or BitMoD)",
                                             where, learned->name, c->format.to_string()));
    };
    check(r.weights_, "recipe.weights");
    for (const LayerRule& rule : r.layers_) {
      nlohmann::json w = r.weights_;
      if (rule.weights) w.update(*rule.weights);
      check(w, "recipe.layers (weights)");
    }
  }
  return r;
}

const std::map<std::string, std::vector<std::string>>& QuantRecipe::pass_parameters() {
  static const std::map<std::string, std::vector<std::string>> known = {
      {"cross_layer_equalization", {"max_iterations", "tolerance", "relu6_to_relu"}},
      {"bias_correction", {"images"}},
      {"gptq", {"damp", "block_size", "act_order"}},
      {"adaround", {"iterations", "batch_rows", "learning_rate", "reg_weight"}},
      {"smoothquant", {"alpha"}},
      {"hadamard", {"convolutions", "random_signs", "seed"}},
  };
  return known;
}

const PassSpec* QuantRecipe::pass(const std::string& name) const {
  for (const PassSpec& p : passes_)
    if (p.name == name) return &p;
  return nullptr;
}

QuantRecipe QuantRecipe::from_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  nlohmann::json j;
  try {
    j = json::parse(f);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  try {
    return from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

QuantRecipe QuantRecipe::from_formats(const std::string& weights, const std::string& activations) {
  nlohmann::json j;
  j["weights"] = {{"format", weights}};
  j["activations"] = {{"format", activations}};
  if (activations != "float") j["activations"]["observer"] = "percentile";
  return from_json(j);
}

std::optional<QuantizerConfig> QuantRecipe::config_for(const Node& n, TensorRole role, bool first, bool last, int axis) const {
  nlohmann::json spec = role == TensorRole::Weight ? weights_ : activations_;
  for (const LayerRule& rule : layers_) {
    if (!rule.op.empty() && rule.op != n.op_type) continue;
    if (!rule.name.empty() && rule.name != n.name) continue;
    if (rule.position == "first" && !first) continue;
    if (rule.position == "last" && !last) continue;
    if (rule.depthwise && *rule.depthwise != (n.op_type == "Conv" && n.i("group", 1) > 1)) continue;
    const auto& o = role == TensorRole::Weight ? rule.weights : rule.activations;
    if (o) spec.update(*o);
  }
  return build_config(spec, role, axis, fmt::format("recipe ({} of {})", role == TensorRole::Weight ? "weights" : "activations", n.label()));
}

}  // namespace lowbit
