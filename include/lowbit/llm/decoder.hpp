#pragma once
// The llama decoder in float32 (weights as the model holds them, possibly fake-quantized):
// RMSNorm, rotary embeddings (llama2.c's convention: adjacent pairs (2i, 2i+1) of each head rotate
// by pos * theta^(-2i / head_size)), grouped-query attention over a KV cache, SwiGLU.
//
// One forward() takes a chunk of tokens at the next positions: one token (decoding: plain loops,
// multi-versioned for AVX-512 / AVX2 / baseline) or many (prefill and perplexity windows: oneDNN
// sgemm). Optional run-time quantization, emulated in float32:
//   - activations: per-token scaling into a scalar format on the input of every block Linear;
//   - KV cache: per-token (int8, fp8) or KIVI (keys per channel in groups of tokens, values per
//     token, the newest tokens kept in float32).
// Or, with RuntimeOptions::packed, the block Linear products run on packed low-bit weights through
// lowbit_kernels' GEMV / GEMM (real low-bit storage, not emulation).
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/format/format.hpp"
#include "lowbit/llm/model.hpp"
#include "lowbit/llm/packed_linears.hpp"

namespace lowbit::llm {

enum class KvQuantKind : uint8_t { None, PerToken, Kivi };

struct KvCacheQuant {
  KvQuantKind kind = KvQuantKind::None;
  // PerToken: the element format; each token's K (and V) vector is scaled to the format's max.
  std::optional<Format> format;
  int bits = 4;        // KIVI: asymmetric min-max integers of this many bits
  int group = 32;      // KIVI: tokens per key group (per channel), channels per value group (per token)
  int residual = 128;  // KIVI: at least this many newest tokens stay in float32
  // How many of the oldest n cached tokens are read in quantized form when n tokens are cached.
  int64_t quantized_prefix(int64_t n) const;
  void validate() const;  // throws std::invalid_argument
};

struct RuntimeOptions {
  std::optional<Format> activation_format;  // scalar format for per-token quantized Linear inputs
  KvCacheQuant kv;
  int threads = 1;  // single-token matrix-vector products
  // Block Linear weights packed from this decoder's model: every wq .. w3 product goes through
  // kernels::gemm on them (the model's float32 block weights are then not read).
  std::shared_ptr<const PackedLinears> packed;
  bool time_matmuls = false;  // accumulate the wall time of every matrix product (matmul_seconds)
};

// Sees the input rows (before smoothing and activation quantization) of every block Linear.
using LinearObserver = std::function<void(int layer, LinearKind kind, const float* x, int64_t rows, int64_t cols)>;

class Decoder {
 public:
  // The model must outlive the decoder.
  explicit Decoder(const LlamaModel& m, RuntimeOptions opt = {});
  void reset() { pos_ = 0; }
  int position() const { return pos_; }
  // Runs `tokens` at positions position() .. position() + size - 1 and returns their logits,
  // [size x vocab] row-major (valid until the next call). Throws std::out_of_range past seq_len or
  // for token ids outside the vocabulary.
  std::span<const float> forward(std::span<const int> tokens);
  void set_observer(LinearObserver o) { observer_ = std::move(o); }
  const LlamaModel& model() const { return m_; }
  // Wall time spent in matrix products (block Linears and the classifier) since construction, when
  // RuntimeOptions::time_matmuls is set.
  double matmul_seconds() const { return matmul_seconds_; }

 private:
  struct LayerCache {
    std::vector<float> k, v, kq, vq;  // [seq_len x kv_dim]; kq / vq: quantized copies
    int64_t key_groups_done = 0;
  };
  void linear(int layer, LinearKind kind, const Linear& lin, const float* x, int64_t rows, float* y);
  void append_kv(LayerCache& c, int64_t first, int64_t count);
  void attention(const LayerCache& c, int64_t first, int64_t count, const float* q, float* out);

  const LlamaModel& m_;
  RuntimeOptions opt_;
  int pos_ = 0;
  std::vector<float> rope_cos_, rope_sin_;  // [seq_len x head_size / 2]
  std::vector<LayerCache> cache_;
  std::vector<float> x_, xb_, q_, k_, v_, att_, h1_, h3_, scratch_, scores_, scores_q_, probs_q_, logits_;
  LinearObserver observer_;
  double matmul_seconds_ = 0;
};

// log softmax of logits at `target`, in double.
double log_probability(std::span<const float> logits, int target);

}  // namespace lowbit::llm
