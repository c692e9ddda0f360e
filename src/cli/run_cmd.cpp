// `lowbit run MODEL --input x.pb`: runs a model on TensorProto inputs and prints the outputs.
#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/session.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;  // FILE or NAME=FILE
  int threads = 1;
  bool all = false;
  std::string output_dir;
};

void run(const RunOptions& o) {
  Session s(load_onnx(o.model), SessionOptions{o.threads, true});
  const Graph& g = s.graph();
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (size_t k = 0; k < o.inputs.size(); ++k) {
    std::string name, file = o.inputs[k];
    if (auto eq = file.find('='); eq != std::string::npos) {
      name = file.substr(0, eq);
      file = file.substr(eq + 1);
    } else {
      if (k >= g.inputs.size()) throw std::runtime_error(fmt::format("the model has {} inputs, more were given", g.inputs.size()));
      name = g.inputs[k].name;
    }
    feeds.emplace_back(name, load_tensor_pb(file));
  }
  std::vector<Tensor> out = s.run(std::move(feeds));
  for (size_t k = 0; k < out.size(); ++k) {
    const Tensor& t = out[k];
    fmt::print("{} {} {}\n", g.outputs[k].name, to_string(t.dtype()), shape_string(t.shape()));
    int64_t n = o.all ? t.size() : std::min<int64_t>(t.size(), 20);
    std::vector<std::string> v;
    for (int64_t i = 0; i < n; ++i)
      v.push_back(t.dtype() == DType::F32 || t.dtype() == DType::F64 ? fmt::format("{:.6g}", t.float_at(i)) : fmt::format("{}", t.int_at(i)));
    fmt::print("  {}{}\n", fmt::join(v, " "), n < t.size() ? fmt::format(" ... ({} values)", t.size()) : "");
    if (t.dtype() == DType::F32 && t.rank() == 2 && t.dim(0) >= 1) {
      for (int64_t r = 0; r < t.dim(0); ++r) {
        const float* row = t.data<float>() + r * t.dim(1);
        fmt::print("  argmax[{}] = {}\n", r, std::max_element(row, row + t.dim(1)) - row);
      }
    }
    if (!o.output_dir.empty()) {
      save_tensor_pb(t, g.outputs[k].name, fmt::format("{}/output_{}.pb", o.output_dir, k));
    }
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* c = app.add_subcommand("run", "run an ONNX model on TensorProto inputs and print its outputs");
  c->add_option("model", o->model, "ONNX model")->required();
  c->add_option("--input", o->inputs, "input TensorProto file, or NAME=FILE (repeat for several)")->required();
  c->add_option("--threads", o->threads, "threads")->check(CLI::Range(1, 256));
  c->add_flag("--all", o->all, "print every value, not the first 20");
  c->add_option("--output-dir", o->output_dir, "also write each output as output_K.pb here");
  c->callback([o] { run(*o); });
}

}  // namespace lowbit::cli
