#include "lowbit/llm/model.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::llm {

void LlamaConfig::validate(const std::string& source) const {
  auto fail = [&](const std::string& what) { throw std::runtime_error(fmt::format("{}: {}", source, what)); };
  constexpr int kLimit = 1 << 20;  // far beyond any real model; keeps size products inside int64
  const std::pair<const char*, int> fields[] = {{"dim", dim}, {"hidden_dim", hidden_dim}, {"n_layers", n_layers},
                                                {"n_heads", n_heads}, {"n_kv_heads", n_kv_heads}, {"vocab_size", vocab_size},
                                                {"seq_len", seq_len}};
  for (const auto& [name, value] : fields)
    if (value < 1 || value > kLimit) fail(fmt::format("{} = {} is out of range (1 .. {})", name, value, kLimit));
  if (dim % n_heads != 0) fail(fmt::format("dim {} is not a multiple of n_heads {}", dim, n_heads));
  if (head_size() % 2 != 0) fail(fmt::format("head size {} is odd; rotary embeddings need pairs", head_size()));
  if (n_kv_heads > n_heads || n_heads % n_kv_heads != 0)
    fail(fmt::format("n_heads {} is not a multiple of n_kv_heads {}", n_heads, n_kv_heads));
  if (!(norm_eps > 0) || !(rope_theta > 0)) fail("norm epsilon and rope theta must be positive");
}

std::string_view to_string(LinearKind k) {
  switch (k) {
    case LinearKind::Wq: return "wq";
    case LinearKind::Wk: return "wk";
    case LinearKind::Wv: return "wv";
    case LinearKind::Wo: return "wo";
    case LinearKind::W1: return "w1";
    case LinearKind::W2: return "w2";
    case LinearKind::W3: return "w3";
  }
  return "?";
}

namespace {
Linear zero_linear(int64_t rows, int64_t cols) {
  Linear l;
  l.rows = rows;
  l.cols = cols;
  l.w.assign(static_cast<size_t>(rows * cols), 0.0f);
  return l;
}
}  // namespace

LlamaModel LlamaModel::zeros(const LlamaConfig& c, const std::string& source) {
  c.validate(source);
  LlamaModel m;
  m.config = c;
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv = c.kv_dim();
  m.embedding = zero_linear(c.vocab_size, dim);
  m.classifier = zero_linear(c.vocab_size, dim);
  m.rms_final.assign(static_cast<size_t>(dim), 0.0f);
  m.layers.resize(static_cast<size_t>(c.n_layers));
  for (auto& l : m.layers) {
    l.rms_att.assign(static_cast<size_t>(dim), 0.0f);
    l.rms_ffn.assign(static_cast<size_t>(dim), 0.0f);
    l[LinearKind::Wq] = zero_linear(dim, dim);
    l[LinearKind::Wk] = zero_linear(kv, dim);
    l[LinearKind::Wv] = zero_linear(kv, dim);
    l[LinearKind::Wo] = zero_linear(dim, dim);
    l[LinearKind::W1] = zero_linear(hidden, dim);
    l[LinearKind::W2] = zero_linear(dim, hidden);
    l[LinearKind::W3] = zero_linear(hidden, dim);
  }
  return m;
}

size_t LlamaModel::parameter_count() const {
  size_t n = embedding.w.size() + rms_final.size() + (config.shared_classifier ? 0 : classifier.w.size());
  for (const auto& l : layers) {
    n += l.rms_att.size() + l.rms_ffn.size();
    for (const auto& lin : l.linear) n += lin.w.size();
  }
  return n;
}

}  // namespace lowbit::llm
