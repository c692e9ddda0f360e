#include "lowbit/report/report.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "tests/report/test_points.hpp"

namespace lowbit::report {
namespace {

class ReportFromStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("lowbit_report_test_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ReportFromStore, WritesEveryFileFromTheStoresPoints) {
  const std::string db = (dir_ / "results.db").string();
  {
    dse::ResultStore store = dse::ResultStore::open(db);
    for (dse::PointResult p : testing::sample_points()) ASSERT_TRUE(store.insert(p));
  }
  const ReportData data = load_report_data(db);
  ASSERT_EQ(data.points.size(), 9u);
  EXPECT_EQ(data.model, "resnet20_cifar10");
  const ReportFiles files = write_report(data, dir_ / "out" / "nested");
  for (const std::filesystem::path& p : {files.csv, files.html}) EXPECT_GT(std::filesystem::file_size(p), 1000u) << p;
  ASSERT_EQ(files.svgs.size(), 3u);
  for (const char* axis : {"lut", "bit_ops", "memory"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_ / "out" / "nested" / (std::string("pareto_") + axis + ".svg"))) << axis;
    EXPECT_TRUE(std::filesystem::exists(dir_ / "out" / "nested" / (std::string("pareto_") + axis + ".png"))) << axis;
  }
  const std::string fronts = format_fronts(data);
  EXPECT_NE(fronts.find("Pareto front, top-1 against LUTs (3 of 9 points):"), std::string::npos) << fronts;
  EXPECT_NE(fronts.find("W int8           A int8           rtn          top-1  80.25 %  LUTs 100k"), std::string::npos) << fronts;
  EXPECT_EQ(std::count(fronts.begin(), fronts.end(), '\n'), 3 + 3 + 4 + 3);
}

TEST_F(ReportFromStore, RefusesWhatIsNotAStoreWithPoints) {
  const std::string empty = (dir_ / "empty.db").string();
  { dse::ResultStore store = dse::ResultStore::open(empty); }
  try {
    load_report_data(empty);
    FAIL() << "an empty store was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no points"), std::string::npos) << e.what();
  }
  const std::string missing = (dir_ / "missing.db").string();
  try {
    load_report_data(missing);
    FAIL() << "a missing file was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(missing));
  const std::string text = (dir_ / "notes.txt").string();
  std::ofstream(text) << "not a database\n";
  EXPECT_THROW(load_report_data(text), std::runtime_error);
  const std::filesystem::path blocker = dir_ / "file";
  std::ofstream(blocker) << "x";
  EXPECT_THROW(write_report(make_report_data(testing::sample_points(), "x", "y"), blocker / "out"), std::runtime_error);
}

}  // namespace
}  // namespace lowbit::report
