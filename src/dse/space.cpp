#include "lowbit/dse/space.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/format.hpp"
#include "lowbit/ptq/recipe.hpp"

namespace lowbit::dse {

namespace {

void only_keys(const nlohmann::json& j, const std::string& where, const std::set<std::string>& allowed) {
  if (!j.is_object()) throw std::runtime_error(fmt::format("{} must be a JSON object", where));
  for (const auto& [k, v] : j.items())
    if (!allowed.count(k))
      throw std::runtime_error(fmt::format("{}: unknown key '{}' (known: {})", where, k, fmt::join(allowed, ", ")));
}

std::vector<std::string> string_list(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array() || j.empty()) throw std::runtime_error(fmt::format("{} must be a non-empty list of strings", where));
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) throw std::runtime_error(fmt::format("{}[{}] must be a string", where, i));
    out.push_back(j[i].get<std::string>());
  }
  return out;
}

// "float" or a format lowbit parses.
void check_format(const std::string& text, const std::string& where) {
  if (text == "float") return;
  try {
    Format::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
}

nlohmann::json granularity_spec(const std::string& text, const std::string& where) {
  if (text == "tensor" || text == "channel") return {{"granularity", text}};
  if (text.rfind("group:", 0) == 0) {
    int size = 0;
    const char* begin = text.data() + 6;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, size);
    if (ec == std::errc() && ptr == end && size > 0) return {{"granularity", "group"}, {"group_size", size}};
  }
  throw std::runtime_error(fmt::format("{}: '{}' is not tensor, channel or group:N", where, text));
}

struct Technique {
  std::string name;
  nlohmann::json passes = nlohmann::json::array();
};

std::vector<Technique> techniques(const nlohmann::json& j) {
  if (j.is_null()) return {Technique{"rtn"}};
  if (!j.is_array() || j.empty()) throw std::runtime_error("space.techniques must be a non-empty list");
  std::vector<Technique> out;
  std::set<std::string> names;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string where = fmt::format("space.techniques[{}]", i);
    only_keys(j[i], where, {"name", "passes"});
    if (!j[i].contains("name") || !j[i]["name"].is_string()) throw std::runtime_error(fmt::format("{} needs a \"name\"", where));
    Technique t{j[i]["name"].get<std::string>()};
    if (!names.insert(t.name).second) throw std::runtime_error(fmt::format("{}: technique '{}' is named twice", where, t.name));
    if (j[i].contains("passes")) t.passes = j[i]["passes"];
    try {
      QuantRecipe::from_json({{"weights", {{"format", "int8"}}}, {"passes", t.passes}});
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{} ('{}'): {}", where, t.name, e.what()));
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

ExploreSpace ExploreSpace::from_json(const nlohmann::json& j) {
  only_keys(j, "space", {"model", "formats", "granularity", "techniques", "recipe", "evaluation", "cost", "description"});
  ExploreSpace s;
  s.source = j;
  if (j.contains("model")) {
    if (!j["model"].is_string()) throw std::runtime_error("space.model must be a string");
    s.model = j["model"].get<std::string>();
  }
  nlohmann::json base = j.value("recipe", nlohmann::json::object());
  if (!base.is_object()) throw std::runtime_error("space.recipe must be a JSON object");
  if (base.contains("passes")) throw std::runtime_error("space.recipe: passes belong in space.techniques");

  std::vector<std::string> granularities = j.contains("granularity") ? string_list(j["granularity"], "space.granularity")
                                                                     : std::vector<std::string>{"channel"};
  std::vector<nlohmann::json> granularity_specs;
  for (size_t i = 0; i < granularities.size(); ++i)
    granularity_specs.push_back(granularity_spec(granularities[i], fmt::format("space.granularity[{}]", i)));
  std::vector<Technique> techs = techniques(j.contains("techniques") ? j["techniques"] : nlohmann::json());

  if (!j.contains("formats") || !j["formats"].is_array() || j["formats"].empty())
    throw std::runtime_error("space.formats must be a non-empty list of {\"weights\": [...], \"activations\": [...]}");
  std::set<std::string> seen;
  for (size_t b = 0; b < j["formats"].size(); ++b) {
    const nlohmann::json& block = j["formats"][b];
    std::string where = fmt::format("space.formats[{}]", b);
    only_keys(block, where, {"weights", "activations"});
    if (!block.contains("weights") || !block.contains("activations"))
      throw std::runtime_error(fmt::format("{} needs \"weights\" and \"activations\"", where));
    std::vector<std::string> ws = string_list(block["weights"], where + ".weights");
    std::vector<std::string> as = string_list(block["activations"], where + ".activations");
    for (size_t i = 0; i < ws.size(); ++i) check_format(ws[i], fmt::format("{}.weights[{}]", where, i));
    for (size_t i = 0; i < as.size(); ++i) check_format(as[i], fmt::format("{}.activations[{}]", where, i));
    for (const std::string& w : ws)
      for (const std::string& a : as)
        for (size_t g = 0; g < granularities.size(); ++g)
          for (const Technique& t : techs) {
            ExplorePoint p{w, a, granularities[g], t.name, base};
            nlohmann::json weights = base.value("weights", nlohmann::json::object());
            weights.update(granularity_specs[g]);
            weights["format"] = w;
            nlohmann::json activations = base.value("activations", nlohmann::json::object());
            activations["format"] = a;
            p.recipe["weights"] = weights;
            p.recipe["activations"] = activations;
            if (!t.passes.empty()) p.recipe["passes"] = t.passes;
            try {
              QuantRecipe::from_json(p.recipe);
            } catch (const std::exception& e) {
              throw std::runtime_error(fmt::format("{} (weights {}, activations {}, {}, {}): {}", where, w, a, granularities[g], t.name, e.what()));
            }
            if (seen.insert(p.recipe.dump()).second) s.points.push_back(std::move(p));
          }
  }

  if (j.contains("evaluation")) {
    const nlohmann::json& e = j["evaluation"];
    only_keys(e, "space.evaluation", {"images", "batch"});
    if (e.contains("images")) {
      if (!e["images"].is_number_integer() || e["images"].get<int64_t>() < 0)
        throw std::runtime_error("space.evaluation.images must be a non-negative integer (0: all)");
      s.evaluation_images = e["images"].get<size_t>();
    }
    if (e.contains("batch")) {
      if (!e["batch"].is_number_integer() || e["batch"].get<int64_t>() < 1 || e["batch"].get<int64_t>() > 4096)
        throw std::runtime_error("space.evaluation.batch must be an integer from 1 to 4096");
      s.batch = e["batch"].get<int>();
    }
  }
  if (j.contains("cost")) {
    const nlohmann::json& c = j["cost"];
    only_keys(c, "space.cost", {"parallelism", "dsp"});
    if (c.contains("parallelism")) {
      const nlohmann::json& p = c["parallelism"];
      std::string text = p.is_string() ? p.get<std::string>() : p.is_number_integer() ? std::to_string(p.get<int64_t>()) : "";
      try {
        s.parallelism = hw::parse_parallelism(text);
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("space.cost.parallelism: {}", e.what()));
      }
    }
    if (c.contains("dsp")) {
      if (!c["dsp"].is_boolean()) throw std::runtime_error("space.cost.dsp must be true or false");
      s.use_dsp = c["dsp"].get<bool>();
    }
  }
  return s;
}

ExploreSpace ExploreSpace::from_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open the space file", path));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  try {
    return from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

std::string point_key(const std::string& model_path, const ExplorePoint& p, const ExploreSpace& space, const std::string& data_dir) {
  nlohmann::json key = {
      {"model", std::filesystem::path(model_path).filename().string()},
      {"recipe", p.recipe},
      {"technique", p.technique},
      {"evaluation", {{"data", std::filesystem::path(data_dir).lexically_normal().filename().string()}, {"images", space.evaluation_images}}},
      {"cost",
       {{"parallelism", space.parallelism.per_channel ? std::string("channel") : std::to_string(space.parallelism.units)},
        {"dsp", space.use_dsp}}},
  };
  return key.dump();
}

}  // namespace lowbit::dse
