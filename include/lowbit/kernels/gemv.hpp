#pragma once
// GEMV and small-batch GEMM over packed weights: y[b] = W x[b] for b < batch.
//
// Integer formats quantize each activation vector dynamically to int8 (symmetric, per vector:
// scale = amax / 127, round half to even) and accumulate exactly in int32 per weight block; the
// float result is y = x_scale * sum over blocks of (block scale * integer dot). Float formats
// (F32, MXFP4, NVFP4) use float32 activations and FMA.
//
// Kernels: AVX-512 (F, BW, VL, VNNI: vpdpbusd), AVX2 + FMA (vpmaddubsw), and portable scalar code,
// chosen at run time from the CPU; the build uses no -march flags.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::kernels {

// x: batch x cols, y: batch x rows, both row-major. Any batch >= 1 (the kernels take 8 at a time).
// threads: OpenMP threads over blocks of rows. Throws std::invalid_argument on size mismatches.
void gemm(const PackedMatrix& w, std::span<const float> x, std::span<float> y, int batch, int threads = 1);
inline void gemv(const PackedMatrix& w, std::span<const float> x, std::span<float> y, int threads = 1) {
  gemm(w, x, y, 1, threads);
}

// The obviously-right reference: dequantized weights times (quantized, for integer formats)
// activations, block by block, in plain scalar code.
void gemm_reference(const PackedMatrix& w, std::span<const float> x, std::span<float> y, int batch);

// Kernel instruction sets: "avx512", "avx2", "scalar".
// The best the CPU supports, and the one gemm() uses now.
std::string best_kernel_isa();
std::string kernel_isa();
// Instruction sets this CPU can run, best first.
std::vector<std::string> available_kernel_isas();
// Makes gemm() use `isa` (one of available_kernel_isas(), or "auto" for the best); for tests and
// benchmarks of the fallbacks. Throws std::invalid_argument for an unknown or unsupported name.
void force_kernel_isa(std::string_view isa);

// Dynamic int8 quantization of one activation vector as gemm() does it: q = clamp(round(x / s),
// -127, 127) with s = amax / 127 (s = 1 for an all-zero vector; the smallest subnormal where
// amax / 127 underflows to 0). Returns s.
float quantize_activations_int8(std::span<const float> x, std::span<int8_t> q);

}  // namespace lowbit::kernels
