// GEMV on LLaMA-7B layer shapes for every storage format, against the memory read bandwidth
// measured in the same run. Counters:
//   weight_bytes/s  packed weight bytes streamed per second
//   bw_ratio        weight_bytes/s / read bandwidth measured at start-up with the same threads
//   GOP/s           2 rows cols per second (multiply-adds count 2)
//   peak_ratio      GOP/s / (threads x per-core peak: 895 GOP/s int8 VNNI, 224 GFLOP/s fp32 FMA)
// Run: bench_lowbit_gemv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
// GCC 12 warns falsely inside the intrinsics that start from _mm512_undefined_*() (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "lowbit/kernels/gemv.hpp"

namespace {

using lowbit::kernels::PackedMatrix;
using lowbit::kernels::StorageFormat;

constexpr double kVnniPeakPerCore = 895e9, kFmaPeakPerCore = 224e9;

struct Shape {
  int64_t rows, cols;
};
constexpr Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};

// ---- read bandwidth: sum of a buffer much larger than the caches, AVX-512 loads
constexpr size_t kBandwidthBytes = size_t{1} << 30;

__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float v : out) s += v;
  return s;
}

const float* bandwidth_buffer() {
  static const float* buffer = [] {
    auto* p = static_cast<float*>(std::aligned_alloc(64, kBandwidthBytes));
    for (size_t i = 0; i < kBandwidthBytes / sizeof(float); ++i) p[i] = 1.0f;  // touch every page
    return p;
  }();
  return buffer;
}

float read_all(int threads) {
  const float* p = bandwidth_buffer();
  const size_t n = kBandwidthBytes / sizeof(float);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const size_t chunk = n / static_cast<size_t>(omp_get_num_threads());
    const float* part = p + chunk * static_cast<size_t>(omp_get_thread_num());
    total += avx512 ? sum_avx512(part, chunk) : sum_avx2(part, chunk);
  }
  return total;
}

// Best of several passes (bytes / s), measured once per thread count before the GEMV runs.
double measured_bandwidth(int threads) {
  static std::map<int, double> cache;
  if (auto it = cache.find(threads); it != cache.end()) return it->second;
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(read_all(threads));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, kBandwidthBytes / s);
  }
  std::fprintf(stderr, "read bandwidth, %d thread(s): %.2f GB/s\n", threads, best / 1e9);
  return cache[threads] = best;
}

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(read_all(threads));
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(kBandwidthBytes), benchmark::Counter::kIsIterationInvariantRate);
}

// ---- weights: random, generated once per shape; packed once per (shape, format)
const std::vector<float>& weights(Shape s) {
  static std::pair<int64_t, int64_t> key{0, 0};
  static std::vector<float> w;
  if (key != std::pair{s.rows, s.cols}) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    w.resize(static_cast<size_t>(s.rows * s.cols));
    for (float& v : w) v = normal(rng);
    key = {s.rows, s.cols};
  }
  return w;
}

const PackedMatrix& packed(Shape s, StorageFormat f) {
  static std::tuple<int64_t, int64_t, StorageFormat> key{0, 0, StorageFormat::F32};
  static PackedMatrix m;
  if (!m.data() || key != std::tuple{s.rows, s.cols, f}) {
    m = PackedMatrix();
    m = lowbit::kernels::pack(weights(s), s.rows, s.cols, f);
    key = {s.rows, s.cols, f};
  }
  return m;
}

std::vector<float> activations(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

void set_counters(benchmark::State& state, double bytes, double ops, int threads, double peak_per_core) {
  using benchmark::Counter;
  state.counters["weight_bytes/s"] = Counter(bytes, Counter::kIsIterationInvariantRate);
  state.counters["bw_ratio"] = Counter(bytes / measured_bandwidth(threads), Counter::kIsIterationInvariantRate);
  state.counters["GOP/s"] = Counter(ops / 1e9, Counter::kIsIterationInvariantRate);
  state.counters["peak_ratio"] = Counter(ops / (peak_per_core * threads), Counter::kIsIterationInvariantRate);
}

void BM_Gemv(benchmark::State& state, Shape s, StorageFormat f, int threads) {
  const PackedMatrix& w = packed(s, f);
  const std::vector<float> x = activations(s.cols);
  std::vector<float> y(static_cast<size_t>(s.rows));
  measured_bandwidth(threads);
  for (auto _ : state) {
    lowbit::kernels::gemv(w, x, y, threads);
    benchmark::DoNotOptimize(y.data());
  }
  const double peak = lowbit::kernels::uses_int8_activations(f) ? kVnniPeakPerCore : kFmaPeakPerCore;
  set_counters(state, static_cast<double>(w.size_bytes()), 2.0 * s.rows * s.cols, threads, peak);
  state.SetLabel(lowbit::kernels::kernel_isa());
}

// oneDNN's sgemm on the same shape, y (rows x 1) = W (rows x cols) x (cols x 1): the fp32 peer.
void BM_DnnlSgemm(benchmark::State& state, Shape s, int threads) {
  const std::vector<float>& w = weights(s);
  const std::vector<float> x = activations(s.cols);
  std::vector<float> y(static_cast<size_t>(s.rows));
  measured_bandwidth(threads);
  omp_set_num_threads(threads);
  for (auto _ : state) {
    if (dnnl_sgemm('N', 'N', s.rows, 1, s.cols, 1.0f, w.data(), s.cols, x.data(), 1, 0.0f, y.data(), 1) != dnnl_success)
      state.SkipWithError("dnnl_sgemm failed");
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(state, 4.0 * s.rows * s.cols, 2.0 * s.rows * s.cols, threads, kFmaPeakPerCore);
}

std::string fmt_name(const std::string& what, Shape s, int threads) {
  return what + "/" + std::to_string(s.rows) + "x" + std::to_string(s.cols) + "/threads:" + std::to_string(threads);
}

void register_all() {
  benchmark::RegisterBenchmark("read_bandwidth_1GiB", BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const Shape& s : kShapes) {
    for (int threads : {1, 2})
      benchmark::RegisterBenchmark(fmt_name("dnnl_sgemm", s, threads).c_str(), BM_DnnlSgemm, s, threads)
          ->UseRealTime()->Unit(benchmark::kMicrosecond);
    for (StorageFormat f : lowbit::kernels::kAllStorageFormats)
      for (int threads : {1, 2})
        benchmark::RegisterBenchmark(fmt_name(std::string(lowbit::kernels::to_string(f)), s, threads).c_str(), BM_Gemv, s, f, threads)
            ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* isa = std::getenv("LOWBIT_KERNEL_ISA")) lowbit::kernels::force_kernel_isa(isa);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::fprintf(stderr, "kernels: %s\n", lowbit::kernels::kernel_isa().c_str());
  measured_bandwidth(1);
  measured_bandwidth(2);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
