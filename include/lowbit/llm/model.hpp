#pragma once
// A llama-family decoder's hyper-parameters and weights, as every loader (llama2.c, GGUF) produces
// them and every quantizer rewrites them: plain float32 row-major matrices, [out, in] like
// PyTorch's Linear.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::llm {

struct LlamaConfig {
  int dim = 0;         // model width
  int hidden_dim = 0;  // SwiGLU width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // grouped-query attention: n_heads is a multiple of it
  int vocab_size = 0;
  int seq_len = 0;     // longest context (KV cache capacity)
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  bool shared_classifier = true;  // the checkpoint ties the classifier to the token embedding

  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return head_size() * n_kv_heads; }
  // Throws std::runtime_error naming `source` when a value is out of range or inconsistent.
  void validate(const std::string& source) const;
};

// The seven Linear layers of a decoder block, in llama2.c's names.
enum class LinearKind : uint8_t { Wq, Wk, Wv, Wo, W1, W2, W3 };
inline constexpr std::array<LinearKind, 7> kLinearKinds = {LinearKind::Wq, LinearKind::Wk, LinearKind::Wv, LinearKind::Wo,
                                                           LinearKind::W1, LinearKind::W2, LinearKind::W3};
std::string_view to_string(LinearKind k);

// y = W (x / input_divisor): W is [rows = outputs, cols = inputs]. input_divisor is empty unless
// SmoothQuant moved activation range into the weights (then W holds W * divisor per column).
struct Linear {
  int64_t rows = 0, cols = 0;
  std::vector<float> w;
  std::vector<float> input_divisor;
};

struct LayerWeights {
  std::vector<float> rms_att, rms_ffn;
  std::array<Linear, 7> linear;  // indexed by LinearKind
  Linear& operator[](LinearKind k) { return linear[static_cast<size_t>(k)]; }
  const Linear& operator[](LinearKind k) const { return linear[static_cast<size_t>(k)]; }
};

struct LlamaModel {
  LlamaConfig config;
  Linear embedding;   // [vocab, dim]: row t is token t's vector
  std::vector<LayerWeights> layers;
  std::vector<float> rms_final;
  Linear classifier;  // [vocab, dim]; a copy of the embedding when the checkpoint shares them

  // An empty model of this shape (all weights zero, sizes set); validates the config.
  static LlamaModel zeros(const LlamaConfig& c, const std::string& source);
  size_t parameter_count() const;
};

}  // namespace lowbit::llm
