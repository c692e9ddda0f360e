// Every case of Debian's libonnx-testdata whose operators the executor supports must pass.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "tests/runtime/conformance_runner.hpp"

namespace lowbit::conformance {

TEST(OnnxConformance, EverySupportedCasePasses) {
  std::vector<std::string> cases = all_cases();
  ASSERT_GT(cases.size(), 1000u) << "libonnx-testdata is not installed";
  int passed = 0, failed = 0, unsupported = 0;
  std::string failures;
  for (const std::string& dir : cases) {
    CaseResult r = run_case(dir);
    if (r.status == Status::Passed) ++passed;
    if (r.status == Status::Unsupported) ++unsupported;
    if (r.status == Status::Failed) {
      ++failed;
      failures += r.name + ": " + r.message + "\n";
    }
  }
  std::printf("ONNX conformance: passed %d, failed %d, unsupported %d (of %zu)\n", passed, failed, unsupported, cases.size());
  EXPECT_EQ(failed, 0) << failures;
  EXPECT_GT(passed, 300);
}

}  // namespace lowbit::conformance
