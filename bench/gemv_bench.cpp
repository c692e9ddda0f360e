// GEMV on LLaMA-7B layer shapes for every storage format, against the memory read bandwidth
// measured in the same run. Counters:
//   weight_bytes/s  packed weight bytes streamed per second
//   bw_ratio        weight_bytes/s / read bandwidth measured at start-up with the same threads
//                   (the best streaming-read pattern over a 256 MiB buffer; see measured_bandwidth)
//   bw_ratio_near   weight_bytes/s / read bandwidth of that best pattern measured again right
//                   before and right after the run (the larger of the two): on a shared host the
//                   memory rate drifts by tens of percent over a whole run, less within one row
//   in_LLC          1 when the packed weights fit in the last-level cache (also "_inLLC" in the
//                   name): such a run re-reads the cache, and its bw_ratio is no memory figure
//   cpu_bw_ratio    1 thread: the same ratio by CPU time (kernel and probe), which leaves out the
//                   time other programs held the core on a shared machine
//   load1           the 1-minute load average when the run ended (the machine may be shared)
//   GOP/s           2 rows cols per second (multiply-adds count 2)
//   peak_ratio      GOP/s / (threads x per-core peak: 895 GOP/s int8 VNNI, 224 GFLOP/s fp32 FMA)
// Run: bench_lowbit_gemv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// At the end it lists any run on weights larger than the cache that streamed faster than the probe.
#include <benchmark/benchmark.h>
// GCC 12 warns falsely inside the intrinsics that start from _mm512_undefined_*() (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lowbit/kernels/gemv.hpp"

namespace {

using lowbit::kernels::PackedMatrix;
using lowbit::kernels::StorageFormat;

constexpr double kVnniPeakPerCore = 895e9, kFmaPeakPerCore = 224e9;

struct Shape {
  int64_t rows, cols;
};
constexpr Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};

// ---- read bandwidth: the fastest way we know to stream a buffer far larger than any cache.
// One sequential stream does not reach the memory system's limit on this class of CPU: GEMV-like
// patterns that read several rows in lockstep stream faster (the fp32 GEMV read 45 GB/s where a
// one-stream probe read 34.8 GB/s). The probe therefore tries 1 to 16 concurrent streams (rows
// read in lockstep, 1 to 8 independent 64-byte loads per stream per step, 8 to 16 accumulators,
// unrolled), with and without software prefetch, best of kProbePasses passes each,
// and keeps the best: an upper bound for any kernel that reads each weight byte once. The buffer is
// 8 times the 32 MiB last-level cache of a Zen 4/5 CCD, near the 64 - 180 MB weight matrices: in
// our runs a 1 GiB buffer read slower than a 180 MB one with the same loop (27 vs 32 GB/s, one
// stream; probably more page walks), which would understate the bound.
constexpr size_t kBandwidthBytes = size_t{256} << 20;
constexpr int kProbePasses = 8;
constexpr size_t kPrefetchBytes = 1024;

template <int Streams, int Loads, bool Prefetch, size_t kRow>
__attribute__((target("avx512f"))) float stream_avx512(const float* p, size_t n) {
  __m512 acc[Streams][Loads];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (size_t r = 0; r + Streams * kRow <= n; r += Streams * kRow)
    for (size_t k = 0; k < kRow; k += 16 * Loads)
#pragma GCC unroll 16
      for (int s = 0; s < Streams; ++s) {
        const float* q = p + r + s * kRow + k;
        if constexpr (Prefetch) _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetchBytes, _MM_HINT_T0);
#pragma GCC unroll 8
        for (int l = 0; l < Loads; ++l) acc[s][l] = _mm512_add_ps(acc[s][l], _mm512_load_ps(q + 16 * l));
      }
  __m512 total = _mm512_setzero_ps();
  for (auto& row : acc)
    for (auto& a : row) total = _mm512_add_ps(total, a);
  return _mm512_reduce_add_ps(total);
}

// The same with 32-byte loads (two per 64 bytes), for AVX2-only machines.
template <int Streams, int Loads, bool Prefetch, size_t kRow>
__attribute__((target("avx2"))) float stream_avx2(const float* p, size_t n) {
  __m256 acc[Streams][2 * Loads];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  for (size_t r = 0; r + Streams * kRow <= n; r += Streams * kRow)
    for (size_t k = 0; k < kRow; k += 16 * Loads)
#pragma GCC unroll 16
      for (int s = 0; s < Streams; ++s) {
        const float* q = p + r + s * kRow + k;
        if constexpr (Prefetch) _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetchBytes, _MM_HINT_T0);
#pragma GCC unroll 16
        for (int l = 0; l < 2 * Loads; ++l) acc[s][l] = _mm256_add_ps(acc[s][l], _mm256_load_ps(q + 8 * l));
      }
  __m256 total = _mm256_setzero_ps();
  for (auto& row : acc)
    for (auto& a : row) total = _mm256_add_ps(total, a);
  alignas(32) float out[8];
  _mm256_store_ps(out, total);
  float s = 0;
  for (float v : out) s += v;
  return s;
}

using StreamFn = float (*)(const float*, size_t);
struct ProbePattern {
  int streams, loads;
  bool prefetch;
  size_t row_floats;
  StreamFn avx512, avx2;
};
// Rows of 4096 floats (16 KiB) and of 11008 floats: the fp32 rows of the benchmark's shapes, so
// that the fp32 GEMV's own access pattern (4 rows in lockstep, one 64-byte load each) is among
// the patterns, without its arithmetic.
template <int S, int L, bool P, size_t Row = 4096>
constexpr ProbePattern pattern() {
  return {S, L, P, Row, stream_avx512<S, L, P, Row>, stream_avx2<S, L, P, Row>};
}
constexpr ProbePattern kProbePatterns[] = {
    pattern<1, 8, false>(),        pattern<2, 4, false>(),        pattern<4, 2, false>(),       pattern<4, 1, false>(),
    pattern<8, 1, false>(),        pattern<16, 1, false>(),       pattern<1, 8, true>(),        pattern<4, 1, true>(),
    pattern<8, 1, true>(),         pattern<4, 1, false, 11008>(), pattern<8, 1, false, 11008>(), pattern<4, 1, true, 11008>()};

float* filled_buffer(size_t bytes) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  for (size_t i = 0; i < bytes / sizeof(float); ++i) p[i] = static_cast<float>(i & 7);  // touch every page
  return p;
}

const float* bandwidth_buffer() {
  static const float* buffer = filled_buffer(kBandwidthBytes);
  return buffer;
}

// Process CPU time: what the run got of the cores, without the time other programs held them.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Seconds {
  double wall = 0, cpu = 0;
};

// Reads `bytes` of p with `threads` threads, each its own contiguous part.
Seconds timed_read(const float* p, size_t bytes, int threads, const ProbePattern& pattern) {
  const size_t n = bytes / sizeof(float);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  float total = 0;
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const size_t chunk = n / static_cast<size_t>(omp_get_num_threads());
    const float* part = p + chunk * static_cast<size_t>(omp_get_thread_num());
    total += avx512 ? pattern.avx512(part, chunk) : pattern.avx2(part, chunk);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  benchmark::DoNotOptimize(total);
  return {wall, cpu_seconds() - c0};
}

struct Rates {
  double wall = 0, cpu = 0;  // bytes / s
};

// Best of `passes`, by wall time and (separately) by CPU time.
Rates best_rates(const float* p, size_t bytes, int threads, const ProbePattern& pattern, int passes) {
  Rates best;
  for (int pass = 0; pass < passes; ++pass) {
    const Seconds s = timed_read(p, bytes, threads, pattern);
    best.wall = std::max(best.wall, bytes / s.wall);
    best.cpu = std::max(best.cpu, bytes / s.cpu);
  }
  return best;
}

double load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

// The best rate over every pattern (bytes / s), measured once per thread count before the GEMV
// runs; each pattern's best is printed so the choice can be checked. The CPU-time rate serves the
// 1-thread cpu_bw_ratio: on a machine shared with other jobs, wall time includes the slices the
// scheduler gave to others, CPU time does not.
std::map<int, const ProbePattern*>& best_patterns() {
  static std::map<int, const ProbePattern*> best;
  return best;
}

Rates measured_bandwidth(int threads) {
  static std::map<int, Rates> cache;
  if (auto it = cache.find(threads); it != cache.end()) return it->second;
  Rates best;
  std::string line;
  for (const ProbePattern& pattern : kProbePatterns) {
    const Rates r = best_rates(bandwidth_buffer(), kBandwidthBytes, threads, pattern, kProbePasses);
    line += fmt::format(" {}x{}{}{}={:.1f}", pattern.streams, pattern.loads, pattern.prefetch ? "+pf" : "",
                        pattern.row_floats == 4096 ? "" : fmt::format("/{}", pattern.row_floats), r.wall / 1e9);
    if (r.wall > best.wall) best_patterns()[threads] = &pattern;
    best.wall = std::max(best.wall, r.wall);
    best.cpu = std::max(best.cpu, r.cpu);
  }
  std::fprintf(stderr, "read bandwidth, %d thread(s): %.2f GB/s by wall time, %.2f GB/s by CPU time (best by wall time of streams x loads[+prefetch][/row floats]=GB/s:%s; load average %.2f)\n",
               threads, best.wall / 1e9, best.cpu / 1e9, line.c_str(), load_average());
  return cache[threads] = best;
}

// Cache-resident shapes: a matrix whose packed weights fit in the last-level cache is re-read from
// the cache, not from memory, and its bw_ratio is no memory figure. The guest's CPUID reports the
// host's whole L3 (sysconf: 508 MiB on the 2-core EPYC VM) and lscpu no cache at all, while a core
// only uses its own CCD's L3 (32 MiB on Zen 4/5); LOWBIT_LLC_BYTES overrides the 32 MiB default.
// The start-up read-bandwidth-versus-size sweep shows where the cache ends on the machine at hand.
size_t last_level_cache_bytes() {
  static const size_t bytes = [] {
    if (const char* env = std::getenv("LOWBIT_LLC_BYTES")) return static_cast<size_t>(std::strtoull(env, nullptr, 10));
    return size_t{32} << 20;
  }();
  return bytes;
}

void print_cache_sweep() {
  std::string line;
  for (size_t mib : {4, 8, 16, 32, 64, 128}) {
    const size_t bytes = mib << 20;
    std::unique_ptr<float, decltype(&std::free)> buffer(filled_buffer(bytes), &std::free);
    const int passes = static_cast<int>(std::max<size_t>(4, (size_t{512} << 20) / bytes));
    line += fmt::format(" {}MiB={:.1f}", mib, best_rates(buffer.get(), bytes, 1, kProbePatterns[0], passes).wall / 1e9);
  }
  std::fprintf(stderr, "re-read bandwidth by buffer size, 1 thread, GB/s:%s (cache-resident above the memory rate)\n",
               line.c_str());
  std::fprintf(stderr, "last-level cache assumed %.0f MiB (LOWBIT_LLC_BYTES); sysconf reports %ld bytes\n",
               last_level_cache_bytes() / 1048576.0, sysconf(_SC_LEVEL3_CACHE_SIZE));
}

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const ProbePattern& pattern = kProbePatterns[state.range(1)];
  for (auto _ : state) timed_read(bandwidth_buffer(), kBandwidthBytes, threads, pattern);
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(kBandwidthBytes), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(fmt::format("{} streams x {} loads{}, rows of {} floats", pattern.streams, pattern.loads, pattern.prefetch ? " + prefetch" : "",
                             pattern.row_floats));
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

// Packed sizes without packing: a zero-filled matrix of the same format and shape.
size_t packed_bytes(Shape s, StorageFormat f) { return PackedMatrix(f, s.rows, s.cols).size_bytes(); }
bool cache_resident(size_t bytes) { return bytes <= last_level_cache_bytes(); }

// Runs whose weights do not fit in the cache and that still streamed faster than the probe: the
// probe would then not be an upper bound. Listed at the end of the run.
std::vector<std::string>& probe_exceeded() {
  static std::vector<std::string> list;
  return list;
}

// The start-up probe's best pattern again, best of 2 passes by wall time (bytes / s).
double nearby_bandwidth(int threads) {
  measured_bandwidth(threads);
  return best_rates(bandwidth_buffer(), kBandwidthBytes, threads, *best_patterns()[threads], 2).wall;
}

void set_counters(benchmark::State& state, const std::string& name, double bytes, double ops, int threads, double peak_per_core,
                  Seconds seconds, double nearby) {
  using benchmark::Counter;
  const Rates probe = measured_bandwidth(threads);
  const double bandwidth = probe.wall;
  state.counters["weight_bytes/s"] = Counter(bytes, Counter::kIsIterationInvariantRate);
  state.counters["bw_ratio"] = Counter(bytes / bandwidth, Counter::kIsIterationInvariantRate);
  state.counters["bw_ratio_near"] = Counter(bytes / nearby, Counter::kIsIterationInvariantRate);
  state.counters["GOP/s"] = Counter(ops / 1e9, Counter::kIsIterationInvariantRate);
  state.counters["peak_ratio"] = Counter(ops / (peak_per_core * threads), Counter::kIsIterationInvariantRate);
  const bool in_cache = cache_resident(static_cast<size_t>(bytes));
  state.counters["in_LLC"] = in_cache ? 1 : 0;
  state.counters["load1"] = load_average();
  const double streamed = bytes * static_cast<double>(state.iterations());
  const double rate = streamed / seconds.wall;
  if (!in_cache && rate > bandwidth)
    probe_exceeded().push_back(fmt::format("{}: {:.2f} GB/s > probe {:.2f} GB/s by wall time", name, rate / 1e9, bandwidth / 1e9));
  // CPU time of several threads also counts their waits at the barrier: 1 thread only.
  if (threads == 1) {
    const double cpu_rate = streamed / seconds.cpu;
    state.counters["cpu_bw_ratio"] = cpu_rate / probe.cpu;
    if (!in_cache && cpu_rate > probe.cpu)
      probe_exceeded().push_back(fmt::format("{}: {:.2f} GB/s > probe {:.2f} GB/s by CPU time", name, cpu_rate / 1e9, probe.cpu / 1e9));
  }
}

// Wall and CPU seconds over the iterations, measured here as well so that set_counters can compare
// a run's own rate with the probe.
class Clock {
 public:
  Seconds seconds() const {
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), cpu_seconds() - cpu_start_};
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double cpu_start_ = cpu_seconds();
};

void BM_Gemv(benchmark::State& state, const std::string& name, Shape s, StorageFormat f, int threads) {
  const PackedMatrix& w = packed(s, f);
  const std::vector<float> x = activations(s.cols);
  std::vector<float> y(static_cast<size_t>(s.rows));
  const double before = nearby_bandwidth(threads);
  lowbit::kernels::gemv(w, x, y, threads);  // the weights back in the cache where they fit
  const Clock clock;
  for (auto _ : state) {
    lowbit::kernels::gemv(w, x, y, threads);
    benchmark::DoNotOptimize(y.data());
  }
  const Seconds seconds = clock.seconds();
  const double nearby = std::max(before, nearby_bandwidth(threads));
  const double peak = lowbit::kernels::uses_int8_activations(f) ? kVnniPeakPerCore : kFmaPeakPerCore;
  set_counters(state, name, static_cast<double>(w.size_bytes()), 2.0 * s.rows * s.cols, threads, peak, seconds, nearby);
  state.SetLabel(lowbit::kernels::kernel_isa());
}

// oneDNN's sgemm on the same shape, y (rows x 1) = W (rows x cols) x (cols x 1): the fp32 peer.
void BM_DnnlSgemm(benchmark::State& state, const std::string& name, Shape s, int threads) {
  const std::vector<float>& w = weights(s);
  const std::vector<float> x = activations(s.cols);
  std::vector<float> y(static_cast<size_t>(s.rows));
  const double before = nearby_bandwidth(threads);
  omp_set_num_threads(threads);
  const Clock clock;
  for (auto _ : state) {
    if (dnnl_sgemm('N', 'N', s.rows, 1, s.cols, 1.0f, w.data(), s.cols, x.data(), 1, 0.0f, y.data(), 1) != dnnl_success)
      state.SkipWithError("dnnl_sgemm failed");
    benchmark::DoNotOptimize(y.data());
  }
  const Seconds seconds = clock.seconds();
  const double nearby = std::max(before, nearby_bandwidth(threads));
  set_counters(state, name, 4.0 * s.rows * s.cols, 2.0 * s.rows * s.cols, threads, kFmaPeakPerCore, seconds, nearby);
}

// "<format>/<rows>x<cols>[_inLLC]/threads:<n>": _inLLC marks packed weights that fit in the
// last-level cache, whose bw_ratio measures the cache, not memory.
std::string fmt_name(const std::string& what, Shape s, size_t bytes, int threads) {
  return fmt::format("{}/{}x{}{}/threads:{}", what, s.rows, s.cols, cache_resident(bytes) ? "_inLLC" : "", threads);
}

void register_all() {
  for (int threads : {1, 2})
    for (int p = 0; p < static_cast<int>(std::size(kProbePatterns)); ++p)
      benchmark::RegisterBenchmark("read_bandwidth_256MiB", BM_ReadBandwidth)
          ->Args({threads, p})->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const Shape& s : kShapes) {
    for (int threads : {1, 2}) {
      const std::string name = fmt_name("dnnl_sgemm", s, 4 * s.rows * s.cols, threads);
      benchmark::RegisterBenchmark(name.c_str(), BM_DnnlSgemm, name, s, threads)->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
    for (StorageFormat f : lowbit::kernels::kAllStorageFormats)
      for (int threads : {1, 2}) {
        const std::string name = fmt_name(std::string(lowbit::kernels::to_string(f)), s, packed_bytes(s, f), threads);
        benchmark::RegisterBenchmark(name.c_str(), BM_Gemv, name, s, f, threads)->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* isa = std::getenv("LOWBIT_KERNEL_ISA")) lowbit::kernels::force_kernel_isa(isa);
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::fprintf(stderr, "kernels: %s\n", lowbit::kernels::kernel_isa().c_str());
  print_cache_sweep();
  measured_bandwidth(1);
  measured_bandwidth(2);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (probe_exceeded().empty()) {
    std::fprintf(stderr, "no run on weights larger than the last-level cache exceeded the read-bandwidth probe\n");
  } else {
    std::fprintf(stderr, "runs on weights larger than the last-level cache that exceeded the probe (by wall time this also happens "
                         "when the machine's load fell after the probe ran: compare the load averages):\n");
    for (const std::string& line : probe_exceeded()) std::fprintf(stderr, "  %s\n", line.c_str());
  }
  std::fprintf(stderr, "load average at the end: %.2f\n", load_average());
  return 0;
}
