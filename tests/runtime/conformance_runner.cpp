#include "tests/runtime/conformance_runner.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit::conformance {

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0 && e.path().extension() == ".pb") v.push_back(e.path());
  // input_10 after input_9
  std::sort(v.begin(), v.end(), [&](const fs::path& a, const fs::path& b) {
    auto num = [&](const fs::path& p) { return std::stoi(p.stem().string().substr(prefix.size())); };
    return num(a) < num(b);
  });
  return v;
}

// ONNX Runtime's backend-test tolerances.
std::string compare(const Tensor& want, const Tensor& got, const std::string& what) {
  if (want.dtype() != got.dtype())
    return fmt::format("{}: type {} expected, got {}", what, to_string(want.dtype()), to_string(got.dtype()));
  if (want.shape() != got.shape())
    return fmt::format("{}: shape {} expected, got {}", what, shape_string(want.shape()), shape_string(got.shape()));
  bool is_float = want.dtype() == DType::F32 || want.dtype() == DType::F64;
  for (int64_t i = 0; i < want.size(); ++i) {
    if (is_float) {
      double w = want.float_at(i), g = got.float_at(i);
      if (std::isnan(w) && std::isnan(g)) continue;
      if (std::isinf(w) && w == g) continue;
      if (!(std::fabs(w - g) <= 1e-7 + 1e-3 * std::fabs(w)))
        return fmt::format("{}: element {} is {}, expected {}", what, i, g, w);
    } else if (want.int_at(i) != got.int_at(i)) {
      return fmt::format("{}: element {} is {}, expected {}", what, i, got.int_at(i), want.int_at(i));
    }
  }
  return "";
}

}  // namespace

std::vector<std::string> all_cases(const std::string& root) {
  std::vector<std::string> out;
  for (const char* group : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path g = fs::path(root) / group;
    if (!fs::exists(g)) continue;
    for (const auto& e : fs::directory_iterator(g))
      if (fs::exists(e.path() / "model.onnx")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

CaseResult run_case(const std::string& dir) {
  CaseResult r;
  r.name = fs::path(dir).parent_path().filename().string() + "/" + fs::path(dir).filename().string();
  Graph g;
  try {
    g = load_onnx((fs::path(dir) / "model.onnx").string());
  } catch (const std::exception& e) {
    r.status = Status::Unsupported;
    r.message = e.what();
    return r;
  }
  std::set<std::string> ops;
  for (const Node& n : g.nodes) ops.insert(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
  r.op_types.assign(ops.begin(), ops.end());
  for (const Node& n : g.nodes)
    if (!OpRegistry::global().find(n.domain, n.op_type)) {
      r.status = Status::Unsupported;
      r.message = "operator " + n.op_type;
      return r;
    }
  try {
    Session s(g);
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_directory() || e.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
      std::vector<fs::path> in_files = sorted_files(e.path(), "input_"), out_files = sorted_files(e.path(), "output_");
      std::vector<std::pair<std::string, Tensor>> feeds;
      for (size_t k = 0; k < in_files.size(); ++k) {
        if (k >= g.inputs.size()) break;
        feeds.emplace_back(g.inputs[k].name, load_tensor_pb(in_files[k].string()));
      }
      std::vector<Tensor> got = s.run(std::move(feeds));
      if (got.size() != out_files.size())
        throw std::runtime_error(fmt::format("{} outputs, {} expected", got.size(), out_files.size()));
      for (size_t k = 0; k < got.size(); ++k) {
        std::string diff = compare(load_tensor_pb(out_files[k].string()), got[k],
                                   e.path().filename().string() + " output " + std::to_string(k));
        if (!diff.empty()) throw std::runtime_error(diff);
      }
    }
    r.status = Status::Passed;
  } catch (const std::exception& e) {
    // A feature the executor refuses by name (e.g. Dropout in training mode, which draws random
    // numbers) is unsupported, not wrong.
    r.status = std::string(e.what()).find("is not supported") != std::string::npos ? Status::Unsupported : Status::Failed;
    r.message = e.what();
  }
  return r;
}

}  // namespace lowbit::conformance
