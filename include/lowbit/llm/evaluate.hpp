#pragma once
// Perplexity of a quantization configuration on a text, by the README protocol, with calibration
// (GPTQ / SparseGPT Hessians, SmoothQuant maxima) drawn from the text's last windows.
//
// The data has one text only, so calibration cannot be disjoint from the protocol's evaluation
// over the whole file. We calibrate on the last `calib_windows` windows (16 = about 8K tokens,
// 2 % of tinystories_val_head.txt) and report both the protocol's figure over all windows and the
// figure over the held-out windows (all but the calibration ones).
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/llm/perplexity.hpp"
#include "lowbit/llm/quantize.hpp"

namespace lowbit::llm {

struct EvalSetup {
  int window = 512;
  int calib_windows = 16;
  int64_t max_windows = -1;  // evaluate only the first N windows (-1: all); calibration stays at the end
  int threads = 2;
};

struct EvalResult {
  PerplexityResult all;       // every evaluated window (the README protocol when max_windows = -1)
  PerplexityResult held_out;  // the evaluated windows that calibration did not use
  double seconds = 0;         // quantization and evaluation
};

EvalResult evaluate_config(const LlamaModel& m, std::span<const int> tokens, const LlmQuantConfig& cfg, const EvalSetup& setup);

// The configurations of docs/llm.md: (name, config text).
std::vector<std::pair<std::string, std::string>> default_sweep_configs();

// Reads a sweep list: a JSON array of objects (with "name" and the config keys) or lines of
// `name | config` (or just `config`); '#' starts a comment line.
std::vector<std::pair<std::string, std::string>> read_sweep_configs(const std::string& path);

}  // namespace lowbit::llm
