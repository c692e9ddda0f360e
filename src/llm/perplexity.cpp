#include "lowbit/llm/perplexity.hpp"

#include <atomic>
#include <cmath>
#include <exception>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::llm {

std::vector<std::span<const int>> perplexity_windows(std::span<const int> tokens, int window) {
  if (window < 2) throw std::invalid_argument(fmt::format("perplexity window {} must be at least 2 tokens", window));
  std::vector<std::span<const int>> out;
  for (size_t b = 0; b + 1 < tokens.size(); b += static_cast<size_t>(window)) {
    const size_t n = std::min(tokens.size() - b, static_cast<size_t>(window) + 1);
    if (n >= 2) out.push_back(tokens.subspan(b, n));
  }
  return out;
}

PerplexityResult perplexity(const LlamaModel& m, std::span<const int> tokens, const PerplexityOptions& opt) {
  if (opt.window > m.config.seq_len)
    throw std::invalid_argument(fmt::format("perplexity window {} exceeds the model's context of {}", opt.window, m.config.seq_len));
  const auto all = perplexity_windows(tokens, opt.window);
  const int64_t first = std::min<int64_t>(std::max<int64_t>(0, opt.first_window), static_cast<int64_t>(all.size()));
  const int64_t last = opt.max_windows < 0 ? static_cast<int64_t>(all.size()) : std::min<int64_t>(static_cast<int64_t>(all.size()), first + opt.max_windows);
  if (last <= first) throw std::invalid_argument("perplexity: no window to score (text too short?)");
  std::vector<double> nll(static_cast<size_t>(last - first), 0.0);
  // An exception must not leave the worksharing loop (the OpenMP runtime would terminate): each
  // thread catches its own, the first one is rethrown after the team, and the rest of the windows
  // are skipped.
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto record_error = [&] {
#pragma omp critical(lowbit_perplexity_error)
    if (!error) error = std::current_exception();
    failed = true;
  };
  const int threads = std::max(1, opt.threads);
#pragma omp parallel num_threads(threads)
  {
    std::optional<Decoder> d;
    try {
      d.emplace(m, opt.runtime);
    } catch (...) {
      record_error();
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = first; w < last; ++w) {
      if (failed) continue;
      try {
        const auto win = all[static_cast<size_t>(w)];
        d->reset();
        const auto logits = d->forward(win.first(win.size() - 1));
        const size_t V = static_cast<size_t>(m.config.vocab_size);
        double sum = 0;
        for (size_t i = 0; i + 1 < win.size(); ++i) sum -= log_probability(logits.subspan(i * V, V), win[i + 1]);
        nll[static_cast<size_t>(w - first)] = sum;
      } catch (...) {
        record_error();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  PerplexityResult r;
  double total = 0;
  for (int64_t w = first; w < last; ++w) {
    total += nll[static_cast<size_t>(w - first)];
    r.tokens += static_cast<int64_t>(all[static_cast<size_t>(w)].size()) - 1;
  }
  r.windows = last - first;
  r.mean_nll = total / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace lowbit::llm
