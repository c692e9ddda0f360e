#pragma once
// Perplexity by the protocol of ../shared/data/README.md: the text encoded once with one BOS at the
// start, cut into consecutive non-overlapping windows of `window` input tokens, each run from a fresh
// KV cache (position 0) and scored on the next token of each position (the last one's target is
// the first token of the next window): all tokens but the BOS are scored once.
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/llm/decoder.hpp"
#include "lowbit/llm/model.hpp"

namespace lowbit::llm {

struct PerplexityOptions {
  int window = 512;          // tokens per window (at most the model's seq_len)
  int64_t first_window = 0;  // score windows [first_window, first_window + max_windows)
  int64_t max_windows = -1;  // -1: to the end
  int threads = 1;           // windows in parallel, one decoder each
  RuntimeOptions runtime;
};

struct PerplexityResult {
  double mean_nll = 0;  // nats per scored token
  double perplexity = 0;
  int64_t tokens = 0;   // scored tokens
  int64_t windows = 0;
};

// The windows: window + 1 tokens each (inputs and, shifted by one, targets), starting every
// `window` tokens; the last one may be shorter.
std::vector<std::span<const int>> perplexity_windows(std::span<const int> tokens, int window);

PerplexityResult perplexity(const LlamaModel& m, std::span<const int> tokens, const PerplexityOptions& opt = {});

}  // namespace lowbit::llm
