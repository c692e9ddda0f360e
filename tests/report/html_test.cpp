#include "lowbit/report/html.hpp"


#include <gtest/gtest.h>

#include "tests/report/test_points.hpp"

namespace lowbit::report {
namespace {

std::string embedded_json(const std::string& html) {
  const std::string open = R"(<script id="report-data" type="application/json">)";
  const size_t a = html.find(open);
  if (a == std::string::npos) throw std::runtime_error("no data script");
  const size_t b = html.find("</script>", a);
  return html.substr(a + open.size(), b - a - open.size());
}

// True when `name` is followed by optional spaces and '=' somewhere (an attribute being set).
bool assigns(const std::string& html, const std::string& name) {
  for (size_t at = html.find(name); at != std::string::npos; at = html.find(name, at + 1)) {
    size_t k = at + name.size();
    while (k < html.size() && html[k] == ' ') ++k;
    if (k < html.size() && html[k] == '=') return true;
  }
  return false;
}

TEST(ReportHtml, OneSelfContainedFileWithTheDataEmbedded) {
  std::vector<dse::PointResult> points = testing::sample_points();
  points[0].recipe["note"] = "</script><script>alert(1)</script> & <b>";
  points[1].model = "models/<odd>&name.onnx";
  const ReportData data = make_report_data(points, "test.db", "2025-01-01T00:00:00Z");
  const std::string html = report_html(data);
  // Nothing is fetched: no external scripts, styles, fonts, images or links.
  EXPECT_FALSE(assigns(html, "src"));
  EXPECT_FALSE(assigns(html, "href"));
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("__LOWBIT_"), std::string::npos);  // every placeholder filled
  // A recipe holding "</script>" cannot end the data early.
  const std::string json_text = embedded_json(html);
  const nlohmann::json page = nlohmann::json::parse(json_text);
  EXPECT_EQ(page, report_page_data(data));
  EXPECT_EQ(page["points"][0]["recipe"].get<std::string>(), points[0].recipe.dump());
  EXPECT_NE(html.find("<title>lowbit report: resnet20_cifar10, &lt;odd&gt;&amp;name</title>"), std::string::npos);
}

TEST(ReportHtml, PageDataHoldsPointsFrontsAndScales) {
  const ReportData data = make_report_data(testing::sample_points(), "test.db", "2025-01-01T00:00:00Z");
  const nlohmann::json page = report_page_data(data);
  ASSERT_EQ(page["points"].size(), 9u);
  ASSERT_EQ(page["axes"].size(), 3u);
  EXPECT_EQ(page["axes"][0]["name"], "lut");
  EXPECT_EQ(page["axes"][0]["front"], nlohmann::json::array({1, 3, 5}));  // by increasing cost
  EXPECT_EQ(page["axes"][1]["front"], nlohmann::json::array({2, 1, 3, 5}));
  EXPECT_TRUE(page["axes"][0]["x"]["log"].get<bool>());
  EXPECT_GE(page["axes"][0]["x"]["ticks"].size(), 3u);
  EXPECT_TRUE(page["points"][7]["cost"]["lut"].is_null());  // NaN is null in JSON
  EXPECT_TRUE(page["points"][8]["top1"].is_null());
  EXPECT_EQ(page["points"][5]["family"], "fixed");
  EXPECT_EQ(page["points"][2]["front"]["lut"], true);
  EXPECT_EQ(page["points"][3]["front"]["lut"], false);
  EXPECT_EQ(page["lowbit_version"], LOWBIT_VERSION);
  EXPECT_EQ(json_for_script({{"a", "</script>&"}}), R"({"a":"\u003c/script\u003e\u0026"})");
}

}  // namespace
}  // namespace lowbit::report
