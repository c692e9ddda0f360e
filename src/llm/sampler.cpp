#include "lowbit/llm/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::llm {

int argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of no logits");
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(SamplerOptions o) : o_(o), rng_(o.seed) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw std::invalid_argument(fmt::format("temperature {} must be >= 0", o.temperature));
  if (!(o.top_p > 0)) throw std::invalid_argument(fmt::format("top-p {} must be > 0", o.top_p));
}

int Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("sampling from no logits");
  if (o_.temperature == 0) return argmax(logits);
  const size_t n = logits.size();
  probs_.resize(n);
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += probs_[i] = std::exp((logits[i] - mx) / o_.temperature);
  for (auto& p : probs_) p = static_cast<float>(p / sum);
  const float coin = rng_.next_float();
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  size_t keep = n;
  float mass = 1.0f;
  if (o_.top_p < 1.0f) {
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) { return probs_[static_cast<size_t>(a)] > probs_[static_cast<size_t>(b)]; });
    mass = 0;
    for (keep = 0; keep < n;) {
      mass += probs_[static_cast<size_t>(order_[keep++])];
      if (mass >= o_.top_p) break;
    }
  }
  const float target = coin * mass;
  float cdf = 0;
  for (size_t i = 0; i < keep; ++i) {
    cdf += probs_[static_cast<size_t>(order_[i])];
    if (target < cdf) return order_[i];
  }
  return order_[keep - 1];  // rounding
}

}  // namespace lowbit::llm
