// Generated MAC Verilog against the C++ emulation, bit for bit, in Verilator.
#include "lowbit/hw/verilator_check.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

namespace lowbit::hw {
namespace {

double test_scale() {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  return s ? std::atof(s) : 1.0;
}

// One Verilator model holding a representative handful: integers, OCP FP4 (exhaustive), FP8
// (random), a minifloat by a wide integer (exhaustive, 6 x 6 bits), fixed point by integer, a
// narrowed Kulisch accumulator and the special-value policies that need decode logic.
TEST(Verilator, RepresentativeMacsAreBitExact) {
  if (!verilator_available()) GTEST_SKIP() << "verilator is not installed (Debian package 'verilator'; scripts/setup installs it)";
  std::vector<MacConfig> configs = {
      make_mac_config("int4", "int4", 64),
      make_mac_config("float4_e2m1fn", "float4_e2m1fn", 64),
      make_mac_config("float8_e4m3fn", "float8_e4m3fn", 512),
      make_mac_config("float6_e3m2fn", "int6", 64),
      make_mac_config("fixed<6,2>", "int4", 64),
  };
  if (test_scale() >= 1.0) {
    configs.push_back(make_mac_config("uint3", "e3m2", 16));                 // unsigned x ieee minifloat (inf / NaN codes)
    configs.push_back(make_mac_config("e4m3:specials=fn", "int8n", 32, 20));  // narrow integer, narrowed accumulator
    configs.push_back(make_mac_config("e2m1:bias=2,specials=fnuz", "ufixed<4,1>", 8));
  }
  VerilatorCheckOptions options;
  options.random_products = test_scale() >= 1.0 ? 20000 : 4000;
  const VerilatorCheckReport report = verilator_check(configs, options);
  ASSERT_EQ(report.results.size(), configs.size());
  for (size_t i = 0; i < configs.size(); ++i) {
    const MacCheckResult& r = report.results[i];
    EXPECT_TRUE(r.passed()) << r.config << ": " << r.mismatches << " mismatches; first: " << r.first_mismatch
                            << (report.work_dir.empty() ? "" : "; work dir " + report.work_dir.string());
    const uint64_t pairs = configs[i].weight.code_count() * configs[i].activation.code_count();
    EXPECT_GE(r.products, r.exhaustive ? pairs : options.random_products) << r.config;
  }
  EXPECT_TRUE(report.results[1].exhaustive);
  EXPECT_TRUE(report.results[3].exhaustive);
  EXPECT_FALSE(report.results[2].exhaustive);
  std::printf("verilator build %.1f s, simulation %.2f s\n", report.build_seconds, report.run_seconds);
}

}  // namespace
}  // namespace lowbit::hw
