// Fake-quantization throughput per format on a 256 MiB float32 buffer, 1 and 2 threads, beside a
// plain copy of the same buffer. Prints GB/s (bytes read + written) and the ratio to the copy, which
// each format's benchmark times itself, alternating one copy and one fake quantization, so that
// both see the same machine (on a shared host the memory rate drifts by tens of percent within a
// run). Run: build/bin/bench_fake_quant [--benchmark_repetitions=3] (the table then shows medians).
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cmath>
#include <optional>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/format/parallel.hpp"

namespace {

constexpr size_t kBytes = size_t{256} << 20;
constexpr size_t kCount = kBytes / sizeof(float);

struct Buffers {
  std::vector<float> in, out;
  Buffers() : in(kCount), out(kCount) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    // Blocks of values at varied magnitudes, so block formats see varied scales.
    for (size_t i = 0; i < kCount; ++i) in[i] = normal(rng) * std::ldexp(1.0f, static_cast<int>((i / 4096) % 9) - 4);
  }
};

Buffers& buffers() {
  static Buffers b;
  return b;
}

void copy(Buffers& b, int threads) {
  lowbit::parallel_chunks(kCount, threads, 4096, [&](size_t s, size_t e) {
    std::memcpy(b.out.data() + s, b.in.data() + s, (e - s) * sizeof(float));
  });
  benchmark::ClobberMemory();
}

void BM_Copy(benchmark::State& state) {
  Buffers& b = buffers();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) copy(b, threads);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(kBytes));
}

// Manual time: only the fake quantization counts; x_copy = copy time / fake-quant time over the
// paired iterations.
void BM_FakeQuant(benchmark::State& state, std::string spec, std::optional<lowbit::Rounding> rounding) {
  using Clock = std::chrono::steady_clock;
  Buffers& b = buffers();
  const lowbit::Format f = lowbit::Format::parse(spec);
  lowbit::FakeQuantOptions opt;
  opt.threads = static_cast<int>(state.range(0));
  opt.rounding = rounding;
  double copy_seconds = 0, quant_seconds = 0;
  for (auto _ : state) {
    const Clock::time_point t0 = Clock::now();
    copy(b, opt.threads);
    const Clock::time_point t1 = Clock::now();
    lowbit::fake_quant(f, b.in, b.out, {}, opt);
    benchmark::ClobberMemory();
    const Clock::time_point t2 = Clock::now();
    copy_seconds += std::chrono::duration<double>(t1 - t0).count();
    const double quant = std::chrono::duration<double>(t2 - t1).count();
    quant_seconds += quant;
    state.SetIterationTime(quant);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(kBytes));
  state.counters["x_copy"] = copy_seconds / quant_seconds;
}

// Collects GB/s per benchmark and prints the ratio table after the run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      // With --benchmark_repetitions the table takes the median (it follows the single runs).
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) rates_[r.benchmark_name()] = it->second.value / 1e9;
      if (auto x = r.counters.find("x_copy"); x != r.counters.end()) ratios_[r.benchmark_name()] = x->second.value;
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nFake quantization of 256 MiB float32 (SIMD target %s); GB/s counts bytes read + written;\n"
                "x copy: against the copy timed alternately with it (BM_Copy: the copy alone, for reference)\n",
                lowbit::simd_target().c_str());
    std::printf("%-44s %9s %7s %9s %7s\n", "format", "1T GB/s", "x copy", "2T GB/s", "x copy");
    std::map<std::string, std::array<double, 4>> table;
    for (const auto& [full_name, rate] : rates_) {
      std::string name = full_name;
      if (const size_t rt = name.find("/real_time"); rt != std::string::npos) name.erase(rt);
      if (const size_t mt = name.find("/manual_time"); mt != std::string::npos) name.erase(mt);
      const size_t slash = name.rfind('/');
      const std::string base = name.substr(0, slash);
      const int t = std::stoi(name.substr(slash + 1));
      table[base][t - 1] = rate;
      auto ratio = ratios_.find(full_name);
      table[base][t + 1] = ratio != ratios_.end() ? ratio->second : 1.0;
    }
    for (auto& [base, r] : table) {
      std::string label = base.rfind("BM_FakeQuant/", 0) == 0 ? base.substr(13) : base;
      std::printf("%-44s %9.2f %7.2f %9.2f %7.2f\n", label.c_str(), r[0], r[2], r[1], r[3]);
    }
  }

 private:
  std::map<std::string, double> rates_, ratios_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("BM_Copy", BM_Copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  const std::vector<std::pair<std::string, std::optional<lowbit::Rounding>>> cases = {
      {"int8", {}}, {"uint8", {}}, {"int4", {}}, {"int8n", {}}, {"ternary", {}}, {"binary", {}},
      {"int4", lowbit::Rounding::Stochastic}, {"int8", lowbit::Rounding::TowardZero},
      {"float8_e4m3fn", {}}, {"float8_e5m2", {}}, {"float6_e2m3fn", {}}, {"float6_e3m2fn", {}},
      {"float4_e2m1fn", {}}, {"float16", {}}, {"bfloat16", {}}, {"e4m3:specials=none", {}},
      {"float8_e4m3fn", lowbit::Rounding::Stochastic}, {"float8_e4m3fn", lowbit::Rounding::NearestAway},
      {"fixed<8,3,AP_RND_CONV,AP_SAT>", {}}, {"fixed<8,3,AP_TRN,AP_WRAP>", {}}, {"fixed<16,6,AP_RND,AP_SAT_SYM>", {}},
      {"ufixed<6,2,AP_RND_ZERO,AP_SAT_ZERO>", {}},
      {"mxfp8", {}}, {"mxfp8_e5m2", {}}, {"mxfp6_e2m3", {}}, {"mxfp6_e3m2", {}}, {"mxfp4", {}}, {"mxint8", {}},
      {"nvfp4", {}}, {"bitmod_fp4", {}}, {"bitmod_fp3", {}},
  };
  for (const auto& [spec, r] : cases) {
    const std::string name = fmt::format("BM_FakeQuant/{}{}{}", spec, r ? ":" : "", r ? lowbit::to_string(*r) : "");
    benchmark::RegisterBenchmark(name.c_str(), BM_FakeQuant, spec, r)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
