// `lowbit bench MODEL`: inference speed (images/s) at a batch size and thread count, on uniform
// random inputs of the model's input shape; bench/engine_vs_ort.sh runs ONNX Runtime beside it.
#include <chrono>
#include <random>
#include <string>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/runtime/session.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

struct BenchOptions {
  std::string model;
  int batch = 32, threads = 1;
  double seconds = 3;
};

void run(const BenchOptions& o) {
  Graph g = load_onnx(o.model);
  if (g.inputs.size() != 1 || !g.inputs[0].has_shape || g.inputs[0].dtype != DType::F32)
    throw std::runtime_error(fmt::format("{}: lowbit bench needs one float32 input of known rank", o.model));
  Shape shape;
  for (int64_t d : g.inputs[0].dims) shape.push_back(d > 0 ? d : 1);
  shape[0] = o.batch;
  Tensor x = Tensor::uninitialized(DType::F32, shape);
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& v : x.span<float>()) v = u(rng);
  Session s(std::move(g), SessionOptions{o.threads, true});
  for (int i = 0; i < 2; ++i) s.run(x);
  int runs = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < o.seconds || runs < 3) {
    s.run(x);
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  fmt::print("images/s {:.1f}\n", runs * o.batch / elapsed);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand("bench", "inference speed (images/s) of an ONNX model on random inputs");
  c->add_option("model", o->model, "ONNX model")->required();
  c->add_option("--batch", o->batch, "batch size")->check(CLI::Range(1, 4096));
  c->add_option("--threads", o->threads, "threads")->check(CLI::Range(1, 256));
  c->add_option("--seconds", o->seconds, "measure at least this long")->check(CLI::Range(0.1, 600.0));
  c->callback([o] { run(*o); });
}

}  // namespace lowbit::cli
