// The fitted cost model against the checked-in Yosys sweep, and a fresh synthesis of a few
// configurations against the sweep's rows.
#include "lowbit/hw/cost_model.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lowbit/hw/fit.hpp"
#include "lowbit/hw/sweep.hpp"
#include "lowbit/hw/yosys.hpp"

namespace lowbit::hw {
namespace {

const std::string kCsv = std::string(LOWBIT_HW_DATA) + "/yosys_xcup.csv";
const std::string kJson = std::string(LOWBIT_HW_DATA) + "/cost_model_xcup.json";

TEST(CostModel, SweepCsvCoversTheSweepConfigurations) {
  const auto rows = read_synth_csv(kCsv);
  for (const MacConfig& c : sweep_configs())
    for (bool dsp : {true, false}) {
      bool found = false;
      for (const SynthRow& r : rows)
        found |= r.weight == c.weight.to_string() && r.activation == c.activation.to_string() && r.n == c.n &&
                 r.acc_request == c.acc_bits.value_or(0) && r.use_dsp == dsp;
      EXPECT_TRUE(found) << c.to_string() << (dsp ? "" : " nodsp") << " missing from " << kCsv << "; run scripts/synth_sweep";
    }
  for (const SynthRow& r : rows) {
    EXPECT_EQ(r.acc_bits, plan_accumulator(r.config()).bits) << r.weight << " x " << r.activation;
    EXPECT_EQ(r.counts.ff, r.acc_bits) << "the accumulator is the only register";
  }
}

TEST(CostModel, HeldOutErrorMeetsTheBound) {
  const auto rows = read_synth_csv(kCsv);
  const auto errors = evaluate_cost_model(CostModel::builtin(), rows, true);
  int held_rows = 0;
  for (const ResourceError& e : errors) {
    held_rows += e.rows;
    if (e.resource == "LUT") {
      EXPECT_LE(e.median_ape, 10.0) << "LUT " << (e.use_dsp ? "DSP" : "no DSP");
    }
    if (e.resource == "FF") {
      EXPECT_EQ(e.exact, e.rows);
    }
    if (e.resource == "CARRY") {
      EXPECT_LE(e.median_ape, 15.0);
    }
    if (e.resource == "DSP") {
      EXPECT_EQ(e.exact, e.rows) << "the DSP mapping rule must match Yosys on every held-out row";
    }
  }
  EXPECT_GT(held_rows, 4 * 30);
}

TEST(CostModel, DspRuleMatchesYosysOnEveryRow) {
  for (const SynthRow& r : read_synth_csv(kCsv)) {
    const MacFeatures f = mac_features(r.config());
    EXPECT_EQ(r.use_dsp ? f.dsp_count : 0, r.counts.dsp) << r.weight << " x " << r.activation << (r.use_dsp ? "" : " nodsp");
  }
}

// The compiled-in coefficients are what `lowbit cost fit data/hw/yosys_xcup.csv` produces.
TEST(CostModel, RefitReproducesTheCheckedInCoefficients) {
  const FitResult fit = fit_cost_model(read_synth_csv(kCsv));
  const CostModel stored = CostModel::load(kJson);
  for (const auto& r : CostModel::resources())
    for (bool dsp : {true, false}) {
      const auto& a = fit.model.coefficients(r, dsp);
      const auto& b = stored.coefficients(r, dsp);
      const auto& c = CostModel::builtin().coefficients(r, dsp);
      for (size_t k = 0; k < a.size(); ++k) {
        EXPECT_NEAR(a[k], b[k], 1e-6 * (1 + std::fabs(b[k]))) << r << " " << feature_names()[k];
        EXPECT_EQ(b[k], c[k]);
      }
    }
  for (const ResourceError& e : fit.held_out)
    if (e.resource == "LUT") {
      EXPECT_LE(e.median_ape, 10.0);
    }
}

TEST(CostModel, NonnegativeLeastSquaresSolvesAKnownProblem) {
  // y = 2 x0 + 3 x1 exactly, and a third column that would need a negative coefficient.
  std::vector<double> a, b;
  for (int i = 0; i < 6; ++i) {
    const double x0 = i, x1 = (i * i) % 5, x2 = 1;
    a.insert(a.end(), {x0, x1, x2});
    b.push_back(2 * x0 + 3 * x1 - 0.5);
  }
  const auto x = nonnegative_least_squares(a, 6, 3, b);
  EXPECT_GE(x[2], 0.0);
  for (double v : x) EXPECT_GE(v, 0.0);
  std::vector<double> c = {1, 0, 0, 1, 1, 1};
  const auto y = nonnegative_least_squares(c, 3, 2, {1, 2, 3});
  EXPECT_NEAR(y[0], 1.0, 1e-9);
  EXPECT_NEAR(y[1], 2.0, 1e-9);
}

TEST(CostModel, BadCoefficientFilesAreRefused) {
  EXPECT_THROW(CostModel::from_json("{}", "x.json"), std::invalid_argument);
  EXPECT_THROW(CostModel::from_json("not json", "x.json"), std::invalid_argument);
  EXPECT_THROW(CostModel::load("/nonexistent/model.json"), std::runtime_error);
}

TEST(Yosys, ParsesStatistics) {
  const std::string stat = R"(
=== mac ===

   Number of wires:                 98
   Number of cells:                195
     BUFG                            1
     CARRY4                         12
     DSP48E2                         1
     FDRE                           28
     IBUF                           15
     INV                            11
     LUT2                            5
     LUT6                           35
     MUXF7                          10
     OBUF                           28
)";
  const SynthCounts c = parse_yosys_stat(stat);
  EXPECT_EQ(c.lut, 51);
  EXPECT_EQ(c.ff, 28);
  EXPECT_EQ(c.carry, 12);
  EXPECT_EQ(c.dsp, 1);
  EXPECT_EQ(c.muxf, 10);
  EXPECT_THROW(parse_yosys_stat("no statistics here"), std::runtime_error);
}

// Yosys is deterministic: a fresh synthesis of small configurations gives the CSV's counts.
TEST(Yosys, ResynthesisMatchesTheCsvExactly) {
  if (!yosys_available()) GTEST_SKIP() << "yosys is not installed (Debian package 'yosys'; scripts/setup installs it)";
  const auto rows = read_synth_csv(kCsv);
  const std::string version = yosys_version();
  struct Probe {
    const char* weight;
    const char* activation;
    uint64_t n;
    bool dsp;
  };
  for (const Probe& p : {Probe{"int2", "int2", 64, true}, Probe{"e2m1:specials=none", "e2m1:specials=none", 64, false},
                         Probe{"int5", "int5", 64, true}}) {
    const SynthRow* row = nullptr;
    for (const SynthRow& r : rows)
      if (r.weight == p.weight && r.activation == p.activation && r.n == p.n && r.acc_request == 0 && r.use_dsp == p.dsp) row = &r;
    ASSERT_NE(row, nullptr) << p.weight << " x " << p.activation;
    if (row->yosys != version) GTEST_SKIP() << "the CSV comes from " << row->yosys << ", this machine has " << version;
    const SynthCounts c = synthesize_mac(row->config(), p.dsp);
    EXPECT_EQ(c.lut, row->counts.lut) << p.weight;
    EXPECT_EQ(c.ff, row->counts.ff) << p.weight;
    EXPECT_EQ(c.carry, row->counts.carry) << p.weight;
    EXPECT_EQ(c.dsp, row->counts.dsp) << p.weight;
    EXPECT_EQ(c.muxf, row->counts.muxf) << p.weight;
  }
}

}  // namespace
}  // namespace lowbit::hw
