#include "lowbit/report/csv.hpp"

#include <sstream>

#include <gtest/gtest.h>

#include "tests/report/test_points.hpp"

namespace lowbit::report {
namespace {

// RFC 4180 reader, written from the RFC for the test: quoted fields, doubled quotes, CRLF records.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(field), field.clear(), field_started = false;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field), field.clear(), field_started = false;
      rows.push_back(row), row.clear();
      ++i;
    } else {
      if (c == '"') throw std::runtime_error("quote inside an unquoted field");
      field += c, field_started = true;
    }
  }
  if (quoted) throw std::runtime_error("unterminated quoted field");
  if (field_started || !row.empty()) throw std::runtime_error("last record lacks CRLF");
  return rows;
}

TEST(ReportCsv, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(csv_field("int4"), "int4");
  EXPECT_EQ(csv_field("group:32"), "group:32");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_number(NAN), "");
  EXPECT_EQ(csv_number(0.1), "0.1");
  EXPECT_EQ(std::stod(csv_number(1.0 / 3)), 1.0 / 3);  // round-trips
}

TEST(ReportCsv, EveryPointEveryFieldAndItsFronts) {
  std::vector<dse::PointResult> points = testing::sample_points();
  points[2].recipe["note"] = "commas, \"quotes\" and\na line break";
  points[3].host = "node,1";
  const ReportData data = make_report_data(points, "test.db", "2025-01-01T00:00:00Z");
  std::ostringstream out;
  write_points_csv(out, data);
  const auto rows = parse_csv(out.str());
  ASSERT_EQ(rows.size(), points.size() + 1);
  const std::vector<std::string>& header = rows[0];
  const auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) throw std::runtime_error("no column " + name);
    return static_cast<size_t>(it - header.begin());
  };
  for (const char* name : {"id", "key", "model", "weight_format", "activation_format", "granularity", "technique", "recipe", "top1", "top5",
                           "images", "macs", "bit_ops", "weight_bits", "activation_bits", "lut", "ff", "carry", "dsp", "quantize_seconds",
                           "eval_seconds", "lowbit_version", "host", "finished_at", "rank", "on_front_lut", "on_front_bit_ops",
                           "on_front_memory"})
    EXPECT_NO_THROW(column(name)) << name;
  for (size_t i = 0; i < points.size(); ++i) {
    const std::vector<std::string>& r = rows[i + 1];
    ASSERT_EQ(r.size(), header.size()) << "row " << i;
    EXPECT_EQ(r[column("id")], std::to_string(points[i].id));
    EXPECT_EQ(r[column("key")], points[i].key);
    EXPECT_EQ(nlohmann::json::parse(r[column("recipe")]), points[i].recipe);
    EXPECT_EQ(r[column("host")], points[i].host);
    EXPECT_EQ(r[column("weight_format")], points[i].weight_format);
    if (std::isnan(points[i].top1)) EXPECT_EQ(r[column("top1")], "");
    else EXPECT_EQ(std::stod(r[column("top1")]), points[i].top1);
  }
  // Fronts worked out by hand from sample_points().
  const auto front_ids = [&](const std::string& axis) {
    std::vector<std::string> ids;
    for (size_t i = 1; i < rows.size(); ++i)
      if (rows[i][column("on_front_" + axis)] == "1") ids.push_back(rows[i][column("id")]);
      else EXPECT_EQ(rows[i][column("on_front_" + axis)], "0");
    return ids;
  };
  EXPECT_EQ(front_ids("lut"), (std::vector<std::string>{"1", "3", "5"}));
  EXPECT_EQ(front_ids("bit_ops"), (std::vector<std::string>{"1", "2", "3", "5"}));
  EXPECT_EQ(front_ids("memory"), (std::vector<std::string>{"1", "3", "5"}));
  EXPECT_EQ(rows[8][column("family")], "block");
  EXPECT_EQ(rows[8][column("lut")], "");
}

}  // namespace
}  // namespace lowbit::report
