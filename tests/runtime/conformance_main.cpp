// Prints the result of every conformance case (or those whose name contains argv[1]) and the totals.
#include <cstdio>
#include <string>

#include "tests/runtime/conformance_runner.hpp"

int main(int argc, char** argv) {
  using namespace lowbit::conformance;
  std::string filter = argc > 1 ? argv[1] : "";
  bool verbose = argc > 2;
  int passed = 0, failed = 0, unsupported = 0;
  for (const std::string& dir : all_cases()) {
    if (!filter.empty() && dir.find(filter) == std::string::npos) continue;
    CaseResult r = run_case(dir);
    const char* s = r.status == Status::Passed ? "pass" : r.status == Status::Failed ? "FAIL" : "unsupported";
    (r.status == Status::Passed ? passed : r.status == Status::Failed ? failed : unsupported)++;
    if (r.status == Status::Failed || verbose) std::printf("%-12s %s  %s\n", s, r.name.c_str(), r.message.c_str());
  }
  std::printf("passed %d, failed %d, unsupported %d\n", passed, failed, unsupported);
  return failed ? 1 : 0;
}
