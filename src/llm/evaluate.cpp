#include "lowbit/llm/evaluate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace lowbit::llm {

namespace {

PerplexityResult combine(const PerplexityResult& a, const PerplexityResult& b) {
  PerplexityResult r;
  r.tokens = a.tokens + b.tokens;
  r.windows = a.windows + b.windows;
  r.mean_nll = (a.mean_nll * static_cast<double>(a.tokens) + b.mean_nll * static_cast<double>(b.tokens)) / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace

EvalResult evaluate_config(const LlamaModel& m, std::span<const int> tokens, const LlmQuantConfig& cfg, const EvalSetup& setup) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto windows = perplexity_windows(tokens, setup.window);
  const int64_t n = static_cast<int64_t>(windows.size());
  if (n == 0) throw std::invalid_argument(fmt::format("evaluate: {} token(s) make no window to score (text too short?)", tokens.size()));
  const int64_t calib = std::clamp<int64_t>(setup.calib_windows, 0, n - 1);
  const int64_t held = n - calib;
  const std::span<const std::span<const int>> calib_windows(windows.data() + held, static_cast<size_t>(calib));
  const LlamaModel q = quantize_model(m, cfg, calib_windows, setup.threads);

  PerplexityOptions po;
  po.window = setup.window;
  po.threads = setup.threads;
  po.runtime = cfg.runtime(q);
  EvalResult r;
  if (setup.max_windows >= 0 && setup.max_windows <= held) {
    po.max_windows = setup.max_windows;
    r.all = r.held_out = perplexity(q, tokens, po);
  } else {
    po.max_windows = held;
    r.held_out = perplexity(q, tokens, po);
    r.all = r.held_out;
    if (calib > 0) {
      po.first_window = held;
      po.max_windows = calib;
      r.all = combine(r.held_out, perplexity(q, tokens, po));
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<std::pair<std::string, std::string>> default_sweep_configs() {
  return {
      {"fp32", ""},
      {"W8 per-channel RTN", "w=int8"},
      {"W4 g128 RTN", "w=int4;group=128"},
      {"W4 g128 GPTQ", "w=int4;group=128;method=gptq"},
      {"W4 g32 RTN", "w=int4;group=32"},
      {"W4 g32 GPTQ", "w=int4;group=32;method=gptq"},
      {"W3 g32 RTN", "w=int3;group=32"},
      {"W3 g32 GPTQ", "w=int3;group=32;method=gptq"},
      {"MXFP8", "w=mxfp8"},
      {"MXFP6", "w=mxfp6"},
      {"MXINT8", "w=mxint8"},
      {"MXFP4", "w=mxfp4"},
      {"NVFP4", "w=nvfp4"},
      {"BitMoD FP4 (g128)", "w=bitmod_fp4"},
      {"BitMoD FP3 (g128)", "w=bitmod_fp3"},
      {"BitMoD FP3 (g32)", "w=bitmod_fp3(group=32)"},
      {"W8A8", "w=int8;a=int8"},
      {"W8A8 SmoothQuant 0.5", "w=int8;a=int8;smooth=0.5"},
      {"W4 g32 A8", "w=int4;group=32;a=int8"},
      {"KV int8 per token", "kv=int8"},
      {"KV fp8 e4m3 per token", "kv=fp8"},
      {"KIVI 4-bit", "kv=kivi4"},
      {"KIVI 2-bit", "kv=kivi2"},
      {"2:4 magnitude", "sparsity=2:4"},
      {"2:4 SparseGPT", "sparsity=2:4;prune=sparsegpt"},
      {"4:8 SparseGPT", "sparsity=4:8;prune=sparsegpt"},
      {"2:4 SparseGPT + W8", "sparsity=2:4;prune=sparsegpt;w=int8"},
      {"2:4 SparseGPT + W4 g32", "sparsity=2:4;prune=sparsegpt;w=int4;group=32"},
      {"2:4 SparseGPT + W4 g32 GPTQ (joint)", "sparsity=2:4;prune=sparsegpt;w=int4;group=32;method=gptq"},
  };
}

std::vector<std::pair<std::string, std::string>> read_sweep_configs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::pair<std::string, std::string>> out;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
    }
    for (const auto& item : j) {
      if (!item.is_object()) throw std::runtime_error(fmt::format("{}: every entry must be an object", path));
      const std::string config = item.dump();
      out.emplace_back(item.value("name", config), config);
    }
    return out;
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const auto bar = line.find('|');
    std::string name = bar == std::string::npos ? line : line.substr(0, bar);
    std::string config = bar == std::string::npos ? line : line.substr(bar + 1);
    auto trim = [](std::string s) {
      const auto x = s.find_first_not_of(" \t\r"), y = s.find_last_not_of(" \t\r");
      return x == std::string::npos ? std::string() : s.substr(x, y - x + 1);
    };
    out.emplace_back(trim(name), trim(config));
  }
  return out;
}

}  // namespace lowbit::llm
