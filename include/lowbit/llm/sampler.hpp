#pragma once
// Choosing the next token: greedy (temperature 0), or sampling from softmax(logits / temperature)
// restricted to the smallest set of most likely tokens whose mass reaches top_p. The random
// numbers come from our own xorshift64* generator, so a seed gives the same text everywhere.
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit::llm {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint32_t next_u32() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return static_cast<uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
  }
  float next_float() { return static_cast<float>(next_u32() >> 8) / 16777216.0f; }  // [0, 1)

 private:
  uint64_t state_;
};

struct SamplerOptions {
  float temperature = 1.0f;  // 0: greedy
  float top_p = 0.9f;        // 1 or more: sample from the whole distribution
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions o);  // throws std::invalid_argument on a negative temperature or top_p <= 0
  int sample(std::span<const float> logits);  // throws std::invalid_argument for no logits

 private:
  SamplerOptions o_;
  Rng rng_;
  std::vector<float> probs_;
  std::vector<int> order_;
};

int argmax(std::span<const float> logits);

}  // namespace lowbit::llm
