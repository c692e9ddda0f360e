#pragma once
// Runs one case of the ONNX backend conformance suite (model.onnx + test_data_set_*/{input,output}_N.pb)
// through the executor and compares with the stored outputs.
#include <string>
#include <vector>

namespace lowbit::conformance {

enum class Status { Passed, Failed, Unsupported };

struct CaseResult {
  std::string name;
  Status status = Status::Failed;
  std::string message;                // why it failed or is unsupported
  std::vector<std::string> op_types;  // operators the model uses
};

// Unsupported = the model does not load (unsupported element type) or uses an operator the
// executor does not register; everything else that goes wrong is a failure.
CaseResult run_case(const std::string& dir);
// Every case folder under the suite's node, pytorch-converted, pytorch-operator and simple folders.
std::vector<std::string> all_cases(const std::string& root = "/usr/share/libonnx-testdata/data");

}  // namespace lowbit::conformance
