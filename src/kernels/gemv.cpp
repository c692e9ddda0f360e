#include "lowbit/kernels/gemv.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include <fmt/format.h>

#include "src/kernels/kernel_set.hpp"

namespace lowbit::kernels {
namespace detail {

Kernel KernelSet::get(StorageFormat f) const {
  switch (f) {
    case StorageFormat::F32: return f32;
    case StorageFormat::Int8: return int8;
    case StorageFormat::Int4G32: return int4g32;
    case StorageFormat::Int4G128: return int4g128;
    case StorageFormat::Int3: return int3;
    case StorageFormat::Int2: return int2;
    case StorageFormat::Int2Lut: return int2lut;
    case StorageFormat::Mxfp4: return mxfp4;
    case StorageFormat::Nvfp4: return nvfp4;
    case StorageFormat::Mxfp4A8: return mxfp4a8;
    case StorageFormat::Nvfp4A8: return nvfp4a8;
  }
  throw std::invalid_argument("unknown storage format");
}

}  // namespace detail

namespace {

enum class Isa { Scalar, Avx2, Avx512 };

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return cpu_has(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

std::string_view name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa best_isa() {
  static const Isa best = cpu_has(Isa::Avx512) ? Isa::Avx512 : (cpu_has(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar);
  return best;
}

std::atomic<int> forced_isa{-1};

Isa current_isa() {
  const int f = forced_isa.load(std::memory_order_relaxed);
  return f < 0 ? best_isa() : static_cast<Isa>(f);
}

const detail::KernelSet& kernels(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return detail::avx512_kernels();
    case Isa::Avx2: return detail::avx2_kernels();
    case Isa::Scalar: break;
  }
  return detail::scalar_kernels();
}

void check_sizes(const PackedMatrix& w, std::span<const float> x, std::span<const float> y, int batch) {
  if (!w.data()) throw std::invalid_argument("gemm: empty packed matrix");
  if (batch < 1) throw std::invalid_argument(fmt::format("gemm: batch must be >= 1, got {}", batch));
  if (static_cast<int64_t>(x.size()) != batch * w.cols())
    throw std::invalid_argument(fmt::format("gemm: x has {} values, expected batch {} x cols {}", x.size(), batch, w.cols()));
  if (static_cast<int64_t>(y.size()) != batch * w.rows())
    throw std::invalid_argument(fmt::format("gemm: y has {} values, expected batch {} x rows {}", y.size(), batch, w.rows()));
}

}  // namespace

std::string best_kernel_isa() { return std::string(name(best_isa())); }
std::string kernel_isa() { return std::string(name(current_isa())); }

std::vector<std::string> available_kernel_isas() {
  std::vector<std::string> out;
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Scalar})
    if (cpu_has(isa)) out.emplace_back(name(isa));
  return out;
}

void force_kernel_isa(std::string_view isa) {
  if (isa == "auto") {
    forced_isa = -1;
    return;
  }
  for (Isa i : {Isa::Avx512, Isa::Avx2, Isa::Scalar})
    if (name(i) == isa) {
      if (!cpu_has(i)) throw std::invalid_argument(fmt::format("kernel ISA '{}' is not supported by this CPU", isa));
      forced_isa = static_cast<int>(i);
      return;
    }
  throw std::invalid_argument(fmt::format("unknown kernel ISA '{}' (known: avx512, avx2, scalar, auto)", isa));
}

void gemm(const PackedMatrix& w, std::span<const float> x, std::span<float> y, int batch, int threads) {
  check_sizes(w, x, y, batch);
  const detail::Kernel kernel = kernels(current_isa()).get(w.format());
  thread_local detail::PreparedInput in;
  // Whole row blocks per thread: tiles for Int2Lut, a cache line of y otherwise.
  const int64_t align = std::max<int64_t>(tile_rows(w.format()), 16);
  const int64_t rows = w.rows();
  const int team = static_cast<int>(std::clamp<int64_t>((rows + align - 1) / align, 1, std::max(threads, 1)));
  for (int b0 = 0; b0 < batch; b0 += detail::kMaxBatch) {
    const int nb = std::min(detail::kMaxBatch, batch - b0);
    detail::prepare_input(w, x.data() + b0 * w.cols(), nb, in);
    float* out = y.data() + b0 * rows;
    if (team == 1) {
      kernel({w, in, out, rows, 0, rows});
      continue;
    }
    const detail::PreparedInput& shared = in;
#pragma omp parallel num_threads(team)
    {
      const int n = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = ((rows + n - 1) / n + align - 1) / align * align;
      const int64_t begin = std::min(rows, t * chunk), end = std::min(rows, begin + chunk);
      if (begin < end) kernel({w, shared, out, rows, begin, end});
    }
  }
}

void gemm_reference(const PackedMatrix& w, std::span<const float> x, std::span<float> y, int batch) {
  check_sizes(w, x, y, batch);
  const std::vector<float> weights = unpack(w);
  const int64_t rows = w.rows(), cols = w.cols();
  std::vector<double> xb(static_cast<size_t>(cols));
  std::vector<int8_t> q(static_cast<size_t>(cols));
  for (int b = 0; b < batch; ++b) {
    const std::span<const float> xv = x.subspan(static_cast<size_t>(b * cols), static_cast<size_t>(cols));
    if (uses_int8_activations(w.format())) {
      const double s = quantize_activations_int8(xv, q);
      for (int64_t k = 0; k < cols; ++k) xb[k] = s * q[k];
    } else {
      for (int64_t k = 0; k < cols; ++k) xb[k] = xv[k];
    }
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t k = 0; k < cols; ++k) sum += static_cast<double>(weights[r * cols + k]) * xb[k];
      y[b * rows + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace lowbit::kernels
