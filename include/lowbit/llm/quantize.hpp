#pragma once
// One quantization configuration of a llama model, and applying it.
//
// Text form: `key=value` pairs separated by ';' (a JSON object with the same keys works too):
//   w=FORMAT        weight format of every block Linear (wq wk wv wo w1 w2 w3): any lowbit format
//                   (int4, e2m1:specials=none, mxfp4, nvfp4, bitmod_fp3, ...)
//   group=N         scalar formats: scales per group of N inputs (0 = per output channel, default)
//   sym=0|1         scalar integer formats: asymmetric min-max with a zero point when 0 (default 1)
//   method=rtn|gptq round to nearest (default) or GPTQ (lowbit's gptq_quantize, calibration Hessians)
//   embed=0|1, head=0|1   also quantize the token embedding / the classifier (default 0: fp32)
//   sparsity=N:M    N of every M consecutive weights along the input kept (2:4, 4:8)
//   prune=magnitude|sparsegpt   choose them by magnitude (default) or SparseGPT's OBS update
//   a=FORMAT        per-token activation quantization of every block Linear's input (int8, ...)
//   smooth=ALPHA    SmoothQuant migration strength (0.5 typical) from calibration activation maxima
//   kv=none|kiviB|FORMAT   KV cache: KIVI with B bits, or per-token scaling into a scalar format
//                   (int8, fp8 = float8_e4m3fn)
//   kv_group=N, kv_residual=N   KIVI group size (32) and float32 residual window (128)
//   storage=FORMAT  run the block Linears on packed weights through lowbit_kernels (f32, int8,
//                   int4g32, int4g128, int3, int2, int2lut, mxfp4, nvfp4): the weights the other
//                   keys produce are packed once, by round-to-nearest in that format
// Pruning comes first, then quantization (zeros stay zeros); with method=gptq and sparsity both
// happen in one pass (SparseGPT's joint prune and quantize).
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/format/format.hpp"
#include "lowbit/llm/decoder.hpp"
#include "lowbit/llm/model.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit::llm {

enum class WeightMethod : uint8_t { Rtn, Gptq };
enum class PruneMethod : uint8_t { Magnitude, SparseGpt };

struct LlmQuantConfig {
  std::optional<Format> weights;
  int group = 0;
  bool symmetric = true;
  WeightMethod method = WeightMethod::Rtn;
  bool quantize_embedding = false, quantize_classifier = false;
  int sparse_n = 0, sparse_m = 0;  // 0: dense
  PruneMethod prune = PruneMethod::Magnitude;
  std::optional<Format> activations;
  double smooth_alpha = -1;  // < 0: no SmoothQuant
  KvCacheQuant kv;
  std::optional<kernels::StorageFormat> storage;

  bool needs_calibration() const;
  // Run-time options for a decoder of `quantized` (quantize_model's result); packs its block
  // Linears when storage is set.
  RuntimeOptions runtime(const LlamaModel& quantized, int threads = 1) const;
  std::string to_string() const;  // the text form
};

// Throws std::invalid_argument with a message naming the bad key or value.
LlmQuantConfig parse_quant_config(std::string_view text);

// Returns the quantized copy of `m`. Calibration windows (token spans run from position 0) feed
// GPTQ and SparseGPT Hessians (layer by layer, earlier layers already quantized) and SmoothQuant's
// activation maxima; they may be empty when the config needs none.
LlamaModel quantize_model(const LlamaModel& m, const LlmQuantConfig& cfg, std::span<const std::span<const int>> calibration, int threads = 1);

// Round-to-nearest of one weight matrix by cfg's format and granularity (in place).
void quantize_weights_rtn(Linear& lin, const LlmQuantConfig& cfg);

// N:M pruning of w [rows x cols] along each row: by magnitude, or SparseGPT (Frantar & Alistarh
// 2023): columns left to right, each group's mask by w^2 / [H^-1]_jj^2, and every pruned weight's
// error spread over the later columns through the inverse Hessian's Cholesky factor.
void prune_magnitude(std::vector<float>& w, int64_t rows, int64_t cols, int n, int m);
void prune_sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m, double damp = 0.01);
// SparseGPT's joint pruning and quantization in one pass (Frantar & Alistarh 2023, section 3.5):
// the same column sweep, each kept weight rounded by `quant` (a scalar format at any granularity of
// [rows, cols]; scales from the weights before any update) and each pruned one set to zero, every
// rounding and pruning error spread over the later columns through the inverse Hessian.
void prune_quantize_sparsegpt(std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<double>& hessian, int n, int m,
                              const QuantizerConfig& quant, double damp = 0.01);

}  // namespace lowbit::llm
