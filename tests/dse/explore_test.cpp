#include "lowbit/dse/explore.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "lowbit/dse/pareto.hpp"

namespace lowbit::dse {
namespace {

const std::string kResnet20 = std::string(LOWBIT_SHARED_DATA) + "/models/resnet20_cifar10.onnx";

nlohmann::json small_space() {
  return nlohmann::json::parse(R"({
    "formats": [ {"weights": ["int8", "int4"], "activations": ["int8"]},
                 {"weights": ["e2m1"], "activations": ["float8_e4m3fn"]} ],
    "recipe": {"calibration": {"images": 32}, "activations": {"observer": "percentile"}},
    "evaluation": {"images": 300}
  })");
}

std::string fresh_store(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("lowbit_explore_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
  return p.string();
}

class SingleProcess final : public Ranks {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<int> broadcast(std::vector<int> v) override { return v; }
  void send_result(const PointResult&) override {}
  std::optional<PointResult> receive_result(bool) override { return std::nullopt; }
  void abort(int) override { FAIL() << "abort"; }
};

TEST(Explore, EvaluatesCostsStoresAndResumes) {
  ExploreSpace space = ExploreSpace::from_json(small_space());
  ASSERT_EQ(space.points.size(), 3u);
  ExploreOptions o;
  o.model = kResnet20;
  o.progress = false;
  std::string path = fresh_store("small.db");
  SingleProcess ranks;
  std::vector<std::string> lines;
  ExploreSummary first = explore(space, o, path, ranks, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(first.evaluated, 3u);
  EXPECT_EQ(lines.size(), 3u);

  std::vector<PointResult> points = ResultStore::open_read_only(path).points();
  ASSERT_EQ(points.size(), 3u);
  const PointResult &int8 = points[0], &int4 = points[1], &e2m1 = points[2];
  EXPECT_EQ(int8.weight_format, "int8");
  EXPECT_EQ(int8.images, 300);
  // This ResNet-20 is 81 % accurate in float on CIFAR-10 (docs/ptq-results.md): W8A8 keeps that, W4 loses some.
  EXPECT_GT(int8.top1, 75.0);
  EXPECT_GT(int4.top1, 50.0);
  EXPECT_LE(int4.top1, int8.top1 + 2.0);
  // int8 x int8 MACs cost more LUTs and bit-operations than int4 x int8, the same MACs, twice the weight bits.
  EXPECT_GT(int8.lut, int4.lut);
  EXPECT_DOUBLE_EQ(int8.bit_ops, 2 * int4.bit_ops);
  EXPECT_DOUBLE_EQ(int8.weight_bits, 2 * int4.weight_bits);
  EXPECT_EQ(int8.macs, int4.macs);
  EXPECT_GT(int8.macs, 4e7);  // ResNet-20: about 41 M MACs per image
  EXPECT_FALSE(std::isnan(e2m1.lut));
  EXPECT_EQ(e2m1.recipe["weights"]["format"], "e2m1");

  // Running again evaluates nothing and changes nothing.
  ExploreSummary second = explore(space, o, path, ranks, nullptr);
  EXPECT_EQ(second.evaluated, 0u);
  EXPECT_EQ(second.stored_before, 3u);
  EXPECT_EQ(ResultStore::open_read_only(path).size(), 3u);

  // A wider space adds only its new points.
  nlohmann::json wider = small_space();
  wider["formats"][0]["weights"].push_back("int6");
  ExploreSummary third = explore(ExploreSpace::from_json(wider), o, path, ranks, nullptr);
  EXPECT_EQ(third.evaluated, 1u);
  EXPECT_EQ(ResultStore::open_read_only(path).size(), 4u);
}

void expect_refused(const nlohmann::json& j, const std::string& words) {
  try {
    ExploreSpace::from_json(j);
    FAIL() << "accepted: " << j.dump();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(ExploreSpace, BadSpacesAreRefusedWithTheirKey) {
  nlohmann::json j = small_space();
  j["formats"][1]["weights"][0] = "e0m3";
  expect_refused(j, "space.formats[1].weights[0]");
  j = small_space();
  j["techniques"] = nlohmann::json::parse(R"([{"name": "rtn"}, {"name": "magic", "passes": [{"name": "sparkle"}]}])");
  expect_refused(j, "unknown pass 'sparkle'");
  j["techniques"] = nlohmann::json::parse(R"([{"name": "gptq", "passes": [{"name": "gptq", "dampp": 0.1}]}])");
  expect_refused(j, "no parameter 'dampp'");
  j = small_space();
  j["formats"][0]["weights"].push_back("mxfp4");
  j["techniques"] = nlohmann::json::parse(R"([{"name": "gptq", "passes": [{"name": "gptq"}]}])");
  expect_refused(j, "space.formats[0] (weights mxfp4, activations int8, channel, gptq): recipe.weights: gptq learns the rounding of scalar formats");
  j = small_space();
  j["granularity"] = {"group:0"};
  expect_refused(j, "space.granularity[0]");
  j = small_space();
  j["colour"] = "blue";
  expect_refused(j, "unknown key 'colour'");
  j = small_space();
  j["recipe"]["weights"] = {{"observer", "guess"}};
  expect_refused(j, "observer 'guess'");
}

TEST(ExploreSpace, ModelThatDoesNotLoadIsRefusedBeforeWork) {
  ExploreSpace space = ExploreSpace::from_json(small_space());
  ExploreOptions o;
  o.model = std::string(LOWBIT_SHARED_DATA) + "/README.md";
  EXPECT_THROW(PointEvaluator(space, o), std::exception);
  o.model = "/nonexistent/model.onnx";
  EXPECT_THROW(PointEvaluator(space, o), std::exception);
}

TEST(ExploreSpace, PointsAreTheProductOfEachBlock) {
  nlohmann::json j = small_space();
  j["granularity"] = {"channel", "group:16"};
  j["techniques"] = nlohmann::json::parse(R"([{"name": "rtn"}, {"name": "gptq", "passes": [{"name": "gptq"}]}])");
  ExploreSpace s = ExploreSpace::from_json(j);
  EXPECT_EQ(s.points.size(), (2 * 1 + 1 * 1) * 2 * 2u);
  EXPECT_EQ(s.points[1].technique, "gptq");
  EXPECT_EQ(s.points[1].recipe["passes"][0]["name"], "gptq");
  EXPECT_EQ(s.points[2].recipe["weights"]["group_size"], 16);
  EXPECT_EQ(s.points[2].recipe["calibration"]["images"], 32);
}

}  // namespace
}  // namespace lowbit::dse
