#include "lowbit/llm/checkpoint.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "src/llm/binary_file.hpp"

namespace lowbit::llm {

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr size_t kVersionedHeaderBytes = 256;

LlamaConfig config_from_header(const int32_t h[7], bool legacy, const std::string& path) {
  LlamaConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.vocab_size = h[5];
  c.seq_len = h[6];
  if (legacy) {
    c.shared_classifier = c.vocab_size > 0;
    // INT32_MIN has no positive counterpart; validate() refuses 0 anyway.
    if (c.vocab_size < 0) c.vocab_size = c.vocab_size == INT32_MIN ? 0 : -c.vocab_size;
  }
  c.validate(path);
  return c;
}

// The Linear matrices of every layer, in llama2.c's order: all wq, then all wk, ...
std::vector<Linear*> layer_matrices_in_file_order(LlamaModel& m) {
  std::vector<Linear*> out;
  for (LinearKind k : kLinearKinds)
    for (auto& l : m.layers) out.push_back(&l[k]);
  return out;
}

uint64_t element_count(const LlamaConfig& c, bool with_freqs, bool with_classifier) {
  const uint64_t dim = static_cast<uint64_t>(c.dim), hidden = static_cast<uint64_t>(c.hidden_dim), L = static_cast<uint64_t>(c.n_layers),
                 kv = static_cast<uint64_t>(c.kv_dim()), vocab = static_cast<uint64_t>(c.vocab_size);
  uint64_t n = vocab * dim + 2 * L * dim + dim;                // embedding, norms
  n += L * (2 * dim * dim + 2 * dim * kv + 3 * dim * hidden);  // linears
  if (with_freqs) n += static_cast<uint64_t>(c.seq_len) * static_cast<uint64_t>(c.head_size());  // cos and sin, head_size/2 each
  if (with_classifier) n += vocab * dim;
  return n;
}

void expect_size(const std::string& path, uint64_t expected, size_t actual, const LlamaConfig& c) {
  if (expected == actual) return;
  throw std::runtime_error(fmt::format(
      "{}: the header (dim {}, hidden {}, layers {}, heads {}, kv heads {}, vocab {}, seq_len {}, {} classifier) implies {} bytes, "
      "the file has {} ({})",
      path, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, c.shared_classifier ? "shared" : "unshared",
      expected, actual, actual < expected ? "truncated" : "trailing data"));
}

void read_into(ByteReader& r, std::vector<float>& dst, const char* what) {
  auto v = r.read_array<float>(dst.size(), what);
  dst = std::move(v);
}

LlamaModel load_legacy(const std::vector<uint8_t>& bytes, const std::string& path) {
  ByteReader r(bytes, path);
  int32_t h[7];
  for (auto& v : h) v = r.read<int32_t>("header");
  LlamaModel m = LlamaModel::zeros(config_from_header(h, true, path), path);
  const LlamaConfig& c = m.config;
  expect_size(path, 28 + 4 * element_count(c, true, !c.shared_classifier), bytes.size(), c);
  read_into(r, m.embedding.w, "token embedding");
  for (auto& l : m.layers) read_into(r, l.rms_att, "rms_att");
  for (LinearKind k : {LinearKind::Wq, LinearKind::Wk, LinearKind::Wv, LinearKind::Wo})
    for (auto& l : m.layers) read_into(r, l[k].w, "attention weights");
  for (auto& l : m.layers) read_into(r, l.rms_ffn, "rms_ffn");
  for (LinearKind k : {LinearKind::W1, LinearKind::W2, LinearKind::W3})
    for (auto& l : m.layers) read_into(r, l[k].w, "ffn weights");
  read_into(r, m.rms_final, "rms_final");
  // freq_cis_real / freq_cis_imag: llama2.c recomputes them; skip.
  r.require(static_cast<uint64_t>(c.seq_len) * c.head_size(), 4, "freq_cis");
  r.seek(r.offset() + static_cast<size_t>(c.seq_len) * static_cast<size_t>(c.head_size()) * 4, "freq_cis");
  if (c.shared_classifier)
    m.classifier.w = m.embedding.w;
  else
    read_into(r, m.classifier.w, "classifier");
  return m;
}

LlamaModel load_versioned(const std::vector<uint8_t>& bytes, const std::string& path) {
  ByteReader r(bytes, path);
  r.require(1, kVersionedHeaderBytes, "256-byte header");
  r.read<uint32_t>("magic");
  const int32_t version = r.read<int32_t>("version");
  if (version != 1 && version != 2)
    throw std::runtime_error(fmt::format("{}: llama2.c export version {} is not supported (1 = float32, 2 = Q8_0)", path, version));
  int32_t h[7];
  for (auto& v : h) v = r.read<int32_t>("header");
  LlamaConfig c = config_from_header(h, false, path);
  const uint8_t shared = r.read<uint8_t>("shared classifier flag");
  if (shared > 1) throw std::runtime_error(fmt::format("{}: shared classifier flag is {}, expected 0 or 1", path, shared));
  c.shared_classifier = shared == 1;
  LlamaModel m = LlamaModel::zeros(c, path);
  if (version == 1) {
    expect_size(path, kVersionedHeaderBytes + 4 * element_count(c, false, !c.shared_classifier), bytes.size(), c);
    r.seek(kVersionedHeaderBytes, "weights");
    for (auto& l : m.layers) read_into(r, l.rms_att, "rms_att");
    for (auto& l : m.layers) read_into(r, l.rms_ffn, "rms_ffn");
    read_into(r, m.rms_final, "rms_final");
    read_into(r, m.embedding.w, "token embedding");
    for (Linear* lin : layer_matrices_in_file_order(m)) read_into(r, lin->w, "layer weights");
    if (c.shared_classifier)
      m.classifier.w = m.embedding.w;
    else
      read_into(r, m.classifier.w, "classifier");
    return m;
  }
  const int32_t group = r.read<int32_t>("group size");
  std::vector<Linear*> quantized = {&m.embedding};
  for (Linear* lin : layer_matrices_in_file_order(m)) quantized.push_back(lin);
  if (!c.shared_classifier) quantized.push_back(&m.classifier);
  if (group < 1) throw std::runtime_error(fmt::format("{}: Q8_0 group size {} must be positive", path, group));
  uint64_t q_count = 0;
  for (Linear* lin : quantized) {
    if (lin->w.size() % static_cast<size_t>(group) != 0)
      throw std::runtime_error(fmt::format("{}: a {} x {} tensor is not a whole number of Q8_0 groups of {}", path, lin->rows, lin->cols, group));
    q_count += lin->w.size();
  }
  const uint64_t norms = 2 * static_cast<uint64_t>(c.n_layers) * c.dim + c.dim;
  expect_size(path, kVersionedHeaderBytes + 4 * norms + q_count + 4 * (q_count / static_cast<uint64_t>(group)), bytes.size(), c);
  r.seek(kVersionedHeaderBytes, "weights");
  for (auto& l : m.layers) read_into(r, l.rms_att, "rms_att");
  for (auto& l : m.layers) read_into(r, l.rms_ffn, "rms_ffn");
  read_into(r, m.rms_final, "rms_final");
  std::vector<std::vector<int8_t>> q;
  for (Linear* lin : quantized) q.push_back(r.read_array<int8_t>(lin->w.size(), "Q8_0 values"));
  for (size_t t = 0; t < quantized.size(); ++t) {
    const auto scales = r.read_array<float>(q[t].size() / static_cast<size_t>(group), "Q8_0 scales");
    auto& w = quantized[t]->w;
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(q[t][i]) * scales[i / static_cast<size_t>(group)];
  }
  if (c.shared_classifier) m.classifier.w = m.embedding.w;
  return m;
}

void write_header_ints(ByteWriter& out, const LlamaConfig& c, int32_t vocab) {
  for (int32_t v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, vocab, c.seq_len}) out.write(v);
}

void write_floats(ByteWriter& out, const std::vector<float>& v) { out.write_array(v.data(), v.size()); }

}  // namespace

LlamaModel load_llama2c(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  if (bytes.size() >= 4) {
    uint32_t magic;
    std::memcpy(&magic, bytes.data(), 4);
    if (magic == kLlama2cMagic) return load_versioned(bytes, path);
  }
  return load_legacy(bytes, path);
}

void save_llama2c(const LlamaModel& m, const std::string& path, int version, int q8_group) {
  const LlamaConfig& c = m.config;
  c.validate(path);
  ByteWriter out;
  const std::vector<const Linear*> matrices = [&] {
    std::vector<const Linear*> v;
    for (LinearKind k : kLinearKinds)
      for (const auto& l : m.layers) v.push_back(&l[k]);
    return v;
  }();
  if (version == 0) {
    write_header_ints(out, c, c.shared_classifier ? c.vocab_size : -c.vocab_size);
    write_floats(out, m.embedding.w);
    for (const auto& l : m.layers) write_floats(out, l.rms_att);
    for (LinearKind k : {LinearKind::Wq, LinearKind::Wk, LinearKind::Wv, LinearKind::Wo})
      for (const auto& l : m.layers) write_floats(out, l[k].w);
    for (const auto& l : m.layers) write_floats(out, l.rms_ffn);
    for (LinearKind k : {LinearKind::W1, LinearKind::W2, LinearKind::W3})
      for (const auto& l : m.layers) write_floats(out, l[k].w);
    write_floats(out, m.rms_final);
    // freqs_cos then freqs_sin, [seq_len, head_size / 2], as llama2.c's model.py precomputes them.
    const int half = c.head_size() / 2;
    for (int part = 0; part < 2; ++part)
      for (int t = 0; t < c.seq_len; ++t)
        for (int i = 0; i < half; ++i) {
          const float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_size()));
          const float angle = static_cast<float>(t) * freq;
          out.write(part == 0 ? std::cos(angle) : std::sin(angle));
        }
    if (!c.shared_classifier) write_floats(out, m.classifier.w);
  } else if (version == 1 || version == 2) {
    out.write(kLlama2cMagic);
    out.write(static_cast<int32_t>(version));
    write_header_ints(out, c, c.vocab_size);
    out.write(static_cast<uint8_t>(c.shared_classifier ? 1 : 0));
    if (version == 1) {
      out.pad_to(kVersionedHeaderBytes);
      for (const auto& l : m.layers) write_floats(out, l.rms_att);
      for (const auto& l : m.layers) write_floats(out, l.rms_ffn);
      write_floats(out, m.rms_final);
      write_floats(out, m.embedding.w);
      for (const Linear* lin : matrices) write_floats(out, lin->w);
      if (!c.shared_classifier) write_floats(out, m.classifier.w);
    } else {
      int group = q8_group;
      if (group < 1) throw std::invalid_argument(fmt::format("Q8_0 group size {} must be positive", group));
      while (c.dim % group != 0) group /= 2;
      out.write(static_cast<int32_t>(group));
      out.pad_to(kVersionedHeaderBytes);
      for (const auto& l : m.layers) write_floats(out, l.rms_att);
      for (const auto& l : m.layers) write_floats(out, l.rms_ffn);
      write_floats(out, m.rms_final);
      std::vector<const Linear*> quantized = {&m.embedding};
      quantized.insert(quantized.end(), matrices.begin(), matrices.end());
      if (!c.shared_classifier) quantized.push_back(&m.classifier);
      std::vector<float> scales;
      for (const Linear* lin : quantized) {
        if (lin->w.size() % static_cast<size_t>(group) != 0)
          throw std::invalid_argument(fmt::format("{}: a {} x {} tensor is not a whole number of Q8_0 groups of {}", path, lin->rows,
                                                  lin->cols, group));
        for (size_t g = 0; g < lin->w.size(); g += static_cast<size_t>(group)) {
          float amax = 0;
          for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(lin->w[g + static_cast<size_t>(i)]));
          const float scale = amax / 127.0f;
          scales.push_back(scale);
          for (int i = 0; i < group; ++i) {
            // torch.round: half to even, as nearbyint in the default rounding mode.
            const float v = scale > 0 ? std::nearbyint(lin->w[g + static_cast<size_t>(i)] / scale) : 0.0f;
            out.write(static_cast<int8_t>(v));
          }
        }
      }
      write_floats(out, scales);
    }
  } else {
    throw std::invalid_argument(fmt::format("llama2.c export version {} is not one of 0, 1, 2", version));
  }
  detail::write_file_bytes(path, out.bytes);
}

}  // namespace lowbit::llm
