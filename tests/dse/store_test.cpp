#include "lowbit/dse/store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

namespace lowbit::dse {
namespace {

std::filesystem::path fresh_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("lowbit_store_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
  return p;
}

PointResult sample_point(int i) {
  PointResult p;
  p.key = R"({"point":)" + std::to_string(i) + "}";
  p.model = "resnet20_cifar10.onnx";
  p.weight_format = i % 2 ? "int4" : "e2m1";
  p.activation_format = "int8";
  p.granularity = "channel";
  p.technique = i % 3 ? "rtn" : "gptq";
  p.recipe = {{"weights", {{"format", p.weight_format}}}, {"activations", {{"format", "int8"}}}};
  p.top1 = 80.0 + i * 0.25;
  p.top5 = 99.0;
  p.images = 9500;
  p.macs = 4.1e7;
  p.bit_ops = 4.1e7 * 32;
  p.weight_bits = 270000.0 * 4;
  p.activation_bits = 1.0e6;
  p.lut = 1000.0 * (i + 1);
  p.ff = 500;
  p.carry = 100;
  p.dsp = i % 2 ? NAN : 12.0;  // NaN must survive the round trip
  p.quantize_seconds = 0.5;
  p.eval_seconds = 2.5;
  p.lowbit_version = "0.1.0";
  p.host = "test";
  p.finished_at = "2026-11-23T00:00:00Z";
  p.rank = i % 3;
  return p;
}

void expect_same(const PointResult& a, const PointResult& b) {
  // to_json writes NaN as null, so equal JSON means equal fields with NaN == NaN.
  nlohmann::json ja = a.to_json(), jb = b.to_json();
  ja.erase("id");
  jb.erase("id");
  EXPECT_EQ(ja, jb);
}

TEST(ResultStore, PointsRoundTripAndKeysAreUnique) {
  auto path = fresh_path("roundtrip.db");
  {
    ResultStore s = ResultStore::open(path.string());
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.insert(sample_point(i)));
    PointResult again = sample_point(2);
    again.top1 = 1.0;  // a second result for a stored key is ignored, not merged
    EXPECT_FALSE(s.insert(again));
    EXPECT_EQ(s.size(), 5u);
    EXPECT_TRUE(s.contains(sample_point(4).key));
    EXPECT_FALSE(s.contains(sample_point(5).key));
    s.set_meta("space", "{}");
    s.set_meta("space", R"({"a": 1})");
  }
  ResultStore r = ResultStore::open_read_only(path.string());
  std::vector<PointResult> points = r.points();
  ASSERT_EQ(points.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    expect_same(points[static_cast<size_t>(i)], sample_point(i));
    if (i) {
      EXPECT_GT(points[static_cast<size_t>(i)].id, points[static_cast<size_t>(i) - 1].id);
    }
  }
  EXPECT_TRUE(std::isnan(points[1].dsp));
  EXPECT_EQ(r.meta("space").value(), R"({"a": 1})");
  EXPECT_FALSE(r.meta("missing").has_value());
  EXPECT_EQ(PointResult::from_json(points[3].to_json()).to_json(), points[3].to_json());
}

TEST(ResultStore, LanguageModelPointsHaveTheirOwnTable) {
  auto path = fresh_path("llm.db");
  ResultStore s = ResultStore::open(path.string());
  LlmPointResult p;
  p.key = R"({"config":"w=int4;group=128"})";
  p.model = "stories260K.bin";
  p.name = "W4 g128 RTN";
  p.config = "w=int4;group=128";
  p.weight_bits = 4.25;
  p.perplexity = 5.9684;
  p.tokens = 393018;
  p.seconds = 17.3;
  EXPECT_TRUE(s.insert_llm(p));
  EXPECT_FALSE(s.insert_llm(p));
  EXPECT_TRUE(s.contains_llm(p.key));
  EXPECT_EQ(s.size(), 0u);  // classification points are a separate table
  std::vector<LlmPointResult> back = s.llm_points();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].name, p.name);
  EXPECT_EQ(back[0].perplexity, p.perplexity);
  EXPECT_TRUE(std::isnan(back[0].held_out_perplexity));
  EXPECT_EQ(back[0].tokens, p.tokens);
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

TEST(ResultStore, NewerSchemaIsRefusedAndLeftAlone) {
  auto path = fresh_path("newer.db");
  {
    ResultStore s = ResultStore::open(path.string());
    s.insert(sample_point(0));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, ("PRAGMA user_version = " + std::to_string(kStoreSchemaVersion + 1)).c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  std::string before = file_bytes(path);
  for (bool read_only : {false, true}) {
    try {
      if (read_only) {
        ResultStore::open_read_only(path.string());
      } else {
        ResultStore::open(path.string());
      }
      FAIL() << "a newer store was opened";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(file_bytes(path), before);
  EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
}

TEST(ResultStore, OtherFilesAreRefused) {
  auto text = fresh_path("text.db");
  std::ofstream(text) << "this is not a database, it is a text file of more than a hundred bytes so that SQLite reads a header "
                         "and finds no magic string in it at all\n";
  EXPECT_THROW(ResultStore::open(text.string()), std::runtime_error);

  auto other = fresh_path("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE people(name TEXT)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    ResultStore::open(other.string());
    FAIL() << "an unrelated database was opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a lowbit results store"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ResultStore::open_read_only(fresh_path("missing.db").string()), std::runtime_error);
}

}  // namespace
}  // namespace lowbit::dse
