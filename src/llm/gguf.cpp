#include "lowbit/llm/gguf.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "lowbit/llm/checkpoint.hpp"
#include "src/llm/binary_file.hpp"

namespace lowbit::llm {

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t mag = x & 0x7fffffff;
  if (mag > 0x7f800000) return sign | 0x7e00;      // NaN
  if (mag >= 0x477ff000) return sign | 0x7c00;     // 65520 and up round to infinity
  if (mag < 0x38800000)                            // below 2^-14: subnormal; v * 2^24 is exact
    return sign | static_cast<uint16_t>(std::nearbyint(std::bit_cast<float>(mag) * 16777216.0f));
  uint32_t m = mag - (112u << 23);  // rebias the exponent from 127 to 15
  const uint32_t dropped = m & 0x1fff;
  m >>= 13;
  if (dropped > 0x1000 || (dropped == 0x1000 && (m & 1))) ++m;  // ties to even; a carry moves into the exponent
  return sign | static_cast<uint16_t>(m);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    const float v = static_cast<float>(man) / 16777216.0f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000 | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  if (n % 32 != 0) throw std::invalid_argument(fmt::format("q8_0: {} values are not a whole number of blocks of 32", n));
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) y[b].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));  // roundf: half away from zero
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < 32; ++j) y[b * 32 + j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;

enum class ValueType : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };

struct Value {
  ValueType type = ValueType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<Value>> v;
};

Value read_value(ByteReader& r, ValueType type, int depth);

// The fewest bytes one value of a type takes in the file: what bounds an array's length by the
// bytes left (a string is at least its 8-byte length, an array its type and length).
uint64_t min_value_bytes(ValueType type) {
  switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::Bool: return 1;
    case ValueType::U16:
    case ValueType::I16: return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32: return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
    case ValueType::String: return 8;
    case ValueType::Array: return 12;
  }
  return 1;
}

// Each value is held as a Value (about 48 bytes) however small it is in the file; no real model
// has metadata arrays near this length (a 256K-token vocabulary is 2^18), and it keeps a crafted
// file from asking for memory far beyond its size.
constexpr uint64_t kMaxArrayLength = uint64_t{1} << 24;

std::string read_gguf_string(ByteReader& r, const char* what) {
  const uint64_t n = r.read<uint64_t>(what);
  return r.read_string(n, what);
}

Value read_value(ByteReader& r, ValueType type, int depth) {
  Value out;
  out.type = type;
  switch (type) {
    case ValueType::U8: out.v = uint64_t{r.read<uint8_t>("u8 value")}; break;
    case ValueType::I8: out.v = int64_t{r.read<int8_t>("i8 value")}; break;
    case ValueType::U16: out.v = uint64_t{r.read<uint16_t>("u16 value")}; break;
    case ValueType::I16: out.v = int64_t{r.read<int16_t>("i16 value")}; break;
    case ValueType::U32: out.v = uint64_t{r.read<uint32_t>("u32 value")}; break;
    case ValueType::I32: out.v = int64_t{r.read<int32_t>("i32 value")}; break;
    case ValueType::F32: out.v = double{r.read<float>("f32 value")}; break;
    case ValueType::Bool: {
      const uint8_t b = r.read<uint8_t>("bool value");
      if (b > 1) throw std::runtime_error(fmt::format("{}: bool value {} at offset {}", r.path(), b, r.offset() - 1));
      out.v = b == 1;
      break;
    }
    case ValueType::String: out.v = read_gguf_string(r, "string value"); break;
    case ValueType::U64: out.v = r.read<uint64_t>("u64 value"); break;
    case ValueType::I64: out.v = r.read<int64_t>("i64 value"); break;
    case ValueType::F64: out.v = r.read<double>("f64 value"); break;
    case ValueType::Array: {
      if (depth > 4) throw std::runtime_error(fmt::format("{}: arrays nested too deep at offset {}", r.path(), r.offset()));
      const auto elem = static_cast<ValueType>(r.read<uint32_t>("array type"));
      if (static_cast<uint32_t>(elem) > static_cast<uint32_t>(ValueType::F64))
        throw std::runtime_error(fmt::format("{}: unknown array element type {} at offset {}", r.path(), static_cast<uint32_t>(elem), r.offset()));
      const uint64_t n = r.read<uint64_t>("array length");
      r.require(n, min_value_bytes(elem), "array elements");
      if (n > kMaxArrayLength)
        throw std::runtime_error(fmt::format("{}: metadata array of {} values at offset {} (at most {} supported)", r.path(), n, r.offset(), kMaxArrayLength));
      std::vector<Value> items;
      items.reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(r, elem, depth + 1));
      out.v = std::move(items);
      break;
    }
    default:
      throw std::runtime_error(fmt::format("{}: unknown metadata value type {} at offset {}", r.path(), static_cast<uint32_t>(type), r.offset()));
  }
  return out;
}

struct TensorInfo {
  std::vector<uint64_t> dims;  // ne[0] first: the innermost (row length)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

class Metadata {
 public:
  Metadata(std::map<std::string, Value> kv, std::string path) : kv_(std::move(kv)), path_(std::move(path)) {}
  const Value* find(const std::string& key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
  }
  int64_t integer(const std::string& key, std::optional<int64_t> fallback = {}) const {
    const Value* v = find(key);
    if (!v) {
      if (fallback) return *fallback;
      throw std::runtime_error(fmt::format("{}: metadata key {} is missing", path_, key));
    }
    if (auto* u = std::get_if<uint64_t>(&v->v)) {
      if (*u > static_cast<uint64_t>(INT64_MAX)) throw std::runtime_error(fmt::format("{}: {} = {} is out of range", path_, key, *u));
      return static_cast<int64_t>(*u);
    }
    if (auto* i = std::get_if<int64_t>(&v->v)) return *i;
    throw std::runtime_error(fmt::format("{}: metadata key {} is not an integer", path_, key));
  }
  double real(const std::string& key, double fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (auto* d = std::get_if<double>(&v->v)) return *d;
    throw std::runtime_error(fmt::format("{}: metadata key {} is not a float", path_, key));
  }
  std::string string(const std::string& key) const {
    const Value* v = find(key);
    if (!v) throw std::runtime_error(fmt::format("{}: metadata key {} is missing", path_, key));
    if (auto* s = std::get_if<std::string>(&v->v)) return *s;
    throw std::runtime_error(fmt::format("{}: metadata key {} is not a string", path_, key));
  }
  const std::vector<Value>* array(const std::string& key) const {
    const Value* v = find(key);
    if (!v) return nullptr;
    if (auto* a = std::get_if<std::vector<Value>>(&v->v)) return a;
    throw std::runtime_error(fmt::format("{}: metadata key {} is not an array", path_, key));
  }

 private:
  std::map<std::string, Value> kv_;
  std::string path_;
};

// Weights of a model of this shape (embedding, norms, block matrices, an unshared classifier), in
// 64 bits: each factor is at most 2^20.
uint64_t model_weight_count(const LlamaConfig& c) {
  const uint64_t dim = static_cast<uint64_t>(c.dim), hidden = static_cast<uint64_t>(c.hidden_dim), kv = static_cast<uint64_t>(c.kv_dim());
  const uint64_t vocab = static_cast<uint64_t>(c.vocab_size), layers = static_cast<uint64_t>(c.n_layers);
  const uint64_t per_layer = 2 * dim + dim * dim + 2 * kv * dim + dim * dim + 3 * hidden * dim;
  return vocab * dim * (c.shared_classifier ? 1 : 2) + dim + layers * per_layer;
}

int checked_int(const Metadata& md, const std::string& key, const std::string& path, std::optional<int64_t> fallback = {}) {
  const int64_t v = md.integer(key, fallback);
  if (v < 1 || v > (1 << 20)) throw std::runtime_error(fmt::format("{}: {} = {} is out of range", path, key, v));
  return static_cast<int>(v);
}

// Reads a tensor's values as float32 into dst (rows x cols), checking its shape and type.
void load_tensor(const std::vector<uint8_t>& bytes, uint64_t data_start, const std::map<std::string, TensorInfo>& tensors, const std::string& name,
                 int64_t rows, int64_t cols, std::vector<float>& dst, const std::string& path) {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error(fmt::format("{}: tensor {} is missing", path, name));
  const TensorInfo& t = it->second;
  const bool is_vector = rows == 1;
  const bool shape_ok = is_vector ? (t.dims.size() == 1 && t.dims[0] == static_cast<uint64_t>(cols))
                                  : (t.dims.size() == 2 && t.dims[0] == static_cast<uint64_t>(cols) && t.dims[1] == static_cast<uint64_t>(rows));
  if (!shape_ok) {
    std::string dims;
    for (uint64_t d : t.dims) dims += fmt::format("{}{}", dims.empty() ? "" : " x ", d);
    throw std::runtime_error(fmt::format("{}: tensor {} has dims [{}] (innermost first), expected [{}{}]", path, name, dims, cols,
                                         is_vector ? "" : fmt::format(" x {}", rows)));
  }
  const size_t n = static_cast<size_t>(rows * cols);
  dst.resize(n);
  const uint8_t* src = bytes.data() + data_start + t.offset;
  switch (t.type) {
    case GgmlType::F32: std::memcpy(dst.data(), src, n * 4); break;
    case GgmlType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      break;
    case GgmlType::Q8_0: {
      std::vector<BlockQ8_0> blocks(n / 32);
      std::memcpy(blocks.data(), src, blocks.size() * sizeof(BlockQ8_0));
      dequantize_row_q8_0(blocks.data(), dst.data(), static_cast<int64_t>(n));
      break;
    }
  }
}

}  // namespace

GgufModel load_gguf(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  ByteReader r(bytes, path);
  if (r.read<uint32_t>("magic") != kGgufMagic) throw std::runtime_error(fmt::format("{}: not a GGUF file (magic)", path));
  const uint32_t version = r.read<uint32_t>("version");
  if (version != 2 && version != 3) throw std::runtime_error(fmt::format("{}: GGUF version {} is not supported (2, 3)", path, version));
  const uint64_t n_tensors = r.read<uint64_t>("tensor count"), n_kv = r.read<uint64_t>("metadata count");
  r.require(n_kv, 12, "metadata key-value pairs");  // key length + type at least
  std::map<std::string, Value> kv;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = read_gguf_string(r, "metadata key");
    const auto type = static_cast<ValueType>(r.read<uint32_t>("metadata type"));
    kv[key] = read_value(r, type, 0);
  }
  const Metadata md(std::move(kv), path);
  r.require(n_tensors, 24, "tensor infos");  // name length + n_dims + type + offset at least
  std::map<std::string, TensorInfo> tensors;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    std::string name = read_gguf_string(r, "tensor name");
    TensorInfo t;
    const uint32_t n_dims = r.read<uint32_t>("tensor n_dims");
    if (n_dims < 1 || n_dims > 4) throw std::runtime_error(fmt::format("{}: tensor {} has {} dimensions", path, name, n_dims));
    uint64_t count = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = r.read<uint64_t>("tensor dims");
      if (dim == 0 || dim > (uint64_t{1} << 40) || count > (uint64_t{1} << 40) / dim)
        throw std::runtime_error(fmt::format("{}: tensor {} has an impossible dimension {}", path, name, dim));
      count *= dim;
      t.dims.push_back(dim);
    }
    const uint32_t type = r.read<uint32_t>("tensor type");
    if (type == static_cast<uint32_t>(GgmlType::F32))
      t.bytes = count * 4;
    else if (type == static_cast<uint32_t>(GgmlType::F16))
      t.bytes = count * 2;
    else if (type == static_cast<uint32_t>(GgmlType::Q8_0)) {
      if (t.dims[0] % 32 != 0) throw std::runtime_error(fmt::format("{}: q8_0 tensor {} has rows of {} values, not a multiple of 32", path, name, t.dims[0]));
      t.bytes = count / 32 * sizeof(BlockQ8_0);
    } else {
      throw std::runtime_error(fmt::format("{}: tensor {} has ggml type {}; only f32 (0), f16 (1) and q8_0 (8) are supported", path, name, type));
    }
    t.type = static_cast<GgmlType>(type);
    t.offset = r.read<uint64_t>("tensor offset");
    if (!tensors.emplace(name, std::move(t)).second) throw std::runtime_error(fmt::format("{}: tensor {} appears twice", path, name));
  }
  const int64_t alignment = md.integer("general.alignment", kDefaultAlignment);
  if (alignment < 1 || alignment > (1 << 20) || (alignment & (alignment - 1)) != 0)
    throw std::runtime_error(fmt::format("{}: general.alignment {} is not a power of two", path, alignment));
  const uint64_t align = static_cast<uint64_t>(alignment);
  const uint64_t data_start = (r.offset() + align - 1) / align * align;
  if (data_start > bytes.size()) throw std::runtime_error(fmt::format("{}: truncated before the tensor data (offset {})", path, data_start));
  const uint64_t data_size = bytes.size() - data_start;
  for (const auto& [name, t] : tensors) {
    if (t.offset % align != 0) throw std::runtime_error(fmt::format("{}: tensor {} offset {} is not aligned to {}", path, name, t.offset, align));
    if (t.offset > data_size || t.bytes > data_size - t.offset)
      throw std::runtime_error(fmt::format("{}: truncated or inconsistent: tensor {} needs bytes {} .. {} of the data section, which has {}", path,
                                           name, t.offset, t.offset + t.bytes, data_size));
  }

  const std::string arch = md.string("general.architecture");
  if (arch != "llama") throw std::runtime_error(fmt::format("{}: architecture '{}' is not supported (llama)", path, arch));
  LlamaConfig c;
  c.dim = checked_int(md, "llama.embedding_length", path);
  c.hidden_dim = checked_int(md, "llama.feed_forward_length", path);
  c.n_layers = checked_int(md, "llama.block_count", path);
  c.n_heads = checked_int(md, "llama.attention.head_count", path);
  c.n_kv_heads = checked_int(md, "llama.attention.head_count_kv", path, c.n_heads);
  c.seq_len = checked_int(md, "llama.context_length", path);
  c.norm_eps = static_cast<float>(md.real("llama.attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(md.real("llama.rope.freq_base", 10000.0));
  auto embd = tensors.find("token_embd.weight");
  if (embd == tensors.end() || embd->second.dims.size() != 2) throw std::runtime_error(fmt::format("{}: tensor token_embd.weight is missing or not 2-D", path));
  if (embd->second.dims[1] > (1 << 20)) throw std::runtime_error(fmt::format("{}: vocabulary of {} tokens is out of range", path, embd->second.dims[1]));
  c.vocab_size = static_cast<int>(embd->second.dims[1]);
  if (md.find("llama.vocab_size") && md.integer("llama.vocab_size") != c.vocab_size)
    throw std::runtime_error(fmt::format("{}: llama.vocab_size {} but token_embd.weight has {} rows", path, md.integer("llama.vocab_size"), c.vocab_size));
  c.shared_classifier = tensors.find("output.weight") == tensors.end();
  c.validate(path);
  if (md.find("llama.rope.dimension_count") && md.integer("llama.rope.dimension_count") != c.head_size())
    throw std::runtime_error(fmt::format("{}: llama.rope.dimension_count {} differs from the head size {} (partial rotary is not supported)", path,
                                         md.integer("llama.rope.dimension_count"), c.head_size()));

  // Every weight takes at least a byte in f32, f16 or q8_0: a header whose sizes ask for more
  // weights than the file holds is refused before the model's memory is allocated.
  const uint64_t weights = model_weight_count(c);
  if (weights > data_size)
    throw std::runtime_error(fmt::format("{}: the header describes {} weights, but only {} bytes of tensor data follow", path, weights, data_size));
  GgufModel out{LlamaModel::zeros(c, path), std::nullopt};
  LlamaModel& m = out.model;
  auto load = [&](const std::string& name, Linear& lin) { load_tensor(bytes, data_start, tensors, name, lin.rows, lin.cols, lin.w, path); };
  auto load_vec = [&](const std::string& name, std::vector<float>& v) {
    load_tensor(bytes, data_start, tensors, name, 1, static_cast<int64_t>(v.size()), v, path);
  };
  load("token_embd.weight", m.embedding);
  load_vec("output_norm.weight", m.rms_final);
  if (c.shared_classifier)
    m.classifier.w = m.embedding.w;
  else
    load("output.weight", m.classifier);
  static constexpr const char* kNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"};
  for (int l = 0; l < c.n_layers; ++l) {
    auto& lw = m.layers[static_cast<size_t>(l)];
    load_vec(fmt::format("blk.{}.attn_norm.weight", l), lw.rms_att);
    load_vec(fmt::format("blk.{}.ffn_norm.weight", l), lw.rms_ffn);
    for (size_t k = 0; k < kLinearKinds.size(); ++k) load(fmt::format("blk.{}.{}.weight", l, kNames[k]), lw.linear[k]);
  }

  if (const auto* tokens = md.array("tokenizer.ggml.tokens")) {
    const std::string model = md.find("tokenizer.ggml.model") ? md.string("tokenizer.ggml.model") : "llama";
    if (model != "llama") throw std::runtime_error(fmt::format("{}: tokenizer model '{}' is not supported (llama)", path, model));
    const auto* scores = md.array("tokenizer.ggml.scores");
    if (!scores || scores->size() != tokens->size())
      throw std::runtime_error(fmt::format("{}: tokenizer.ggml.scores is missing or does not match the {} tokens", path, tokens->size()));
    const int64_t bos = md.integer("tokenizer.ggml.bos_token_id", Tokenizer::kBos), eos = md.integer("tokenizer.ggml.eos_token_id", Tokenizer::kEos);
    if (bos != Tokenizer::kBos || eos != Tokenizer::kEos)
      throw std::runtime_error(fmt::format("{}: BOS / EOS ids {} / {}; only llama's 1 / 2 are supported", path, bos, eos));
    std::vector<std::string> pieces;
    std::vector<float> sc;
    for (size_t i = 0; i < tokens->size(); ++i) {
      const auto* s = std::get_if<std::string>(&(*tokens)[i].v);
      const auto* f = std::get_if<double>(&(*scores)[i].v);
      if (!s || !f) throw std::runtime_error(fmt::format("{}: tokenizer entry {} has the wrong type", path, i));
      std::string piece;
      if (static_cast<int64_t>(i) == bos)
        piece = "\n<s>\n";  // llama2.c's spelling of the control pieces
      else if (static_cast<int64_t>(i) == eos)
        piece = "\n</s>\n";
      else
        for (size_t k = 0; k < s->size(); ++k) {
          if (s->compare(k, 3, "\xE2\x96\x81") == 0) {  // U+2581, sentencepiece's space
            piece += ' ';
            k += 2;
          } else {
            piece += (*s)[k];
          }
        }
      pieces.push_back(std::move(piece));
      sc.push_back(static_cast<float>(*f));
    }
    out.tokenizer.emplace(std::move(pieces), std::move(sc), path);
    out.tokenizer->require_vocab(c.vocab_size, path);
  }
  return out;
}

namespace {

void write_string(ByteWriter& w, const std::string& s) {
  w.write(static_cast<uint64_t>(s.size()));
  w.write_array(s.data(), s.size());
}

struct PendingTensor {
  std::string name;
  std::vector<uint64_t> dims;
  GgmlType type;
  std::vector<uint8_t> data;
};

PendingTensor encode_tensor(const std::string& name, const float* v, int64_t rows, int64_t cols, GgmlType type) {
  PendingTensor t{name, rows == 1 ? std::vector<uint64_t>{static_cast<uint64_t>(cols)}
                                  : std::vector<uint64_t>{static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)},
                  type, {}};
  const size_t n = static_cast<size_t>(rows * cols);
  if (type == GgmlType::Q8_0 && cols % 32 != 0) t.type = type = GgmlType::F16;
  switch (type) {
    case GgmlType::F32:
      t.data.resize(n * 4);
      std::memcpy(t.data.data(), v, n * 4);
      break;
    case GgmlType::F16:
      t.data.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(v[i]);
        std::memcpy(t.data.data() + 2 * i, &h, 2);
      }
      break;
    case GgmlType::Q8_0: {
      std::vector<BlockQ8_0> blocks(n / 32);
      quantize_row_q8_0(v, blocks.data(), static_cast<int64_t>(n));
      t.data.resize(blocks.size() * sizeof(BlockQ8_0));
      std::memcpy(t.data.data(), blocks.data(), t.data.size());
      break;
    }
  }
  return t;
}

}  // namespace

void save_gguf(const LlamaModel& m, const Tokenizer* tokenizer, const std::string& path, GgmlType type) {
  const LlamaConfig& c = m.config;
  c.validate(path);
  if (tokenizer) tokenizer->require_vocab(c.vocab_size, "the model");
  std::vector<PendingTensor> tensors;
  tensors.push_back(encode_tensor("token_embd.weight", m.embedding.w.data(), m.embedding.rows, m.embedding.cols, type));
  tensors.push_back(encode_tensor("output_norm.weight", m.rms_final.data(), 1, c.dim, GgmlType::F32));
  if (!c.shared_classifier) tensors.push_back(encode_tensor("output.weight", m.classifier.w.data(), m.classifier.rows, m.classifier.cols, type));
  static constexpr const char* kNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"};
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& lw = m.layers[static_cast<size_t>(l)];
    tensors.push_back(encode_tensor(fmt::format("blk.{}.attn_norm.weight", l), lw.rms_att.data(), 1, c.dim, GgmlType::F32));
    tensors.push_back(encode_tensor(fmt::format("blk.{}.ffn_norm.weight", l), lw.rms_ffn.data(), 1, c.dim, GgmlType::F32));
    for (size_t k = 0; k < kLinearKinds.size(); ++k) {
      const Linear& lin = lw.linear[k];
      if (!lin.input_divisor.empty())
        throw std::invalid_argument(fmt::format("{}: layer {} {} carries SmoothQuant divisors, which GGUF cannot hold", path, l, to_string(kLinearKinds[k])));
      tensors.push_back(encode_tensor(fmt::format("blk.{}.{}.weight", l, kNames[k]), lin.w.data(), lin.rows, lin.cols, type));
    }
  }

  ByteWriter w;
  uint64_t n_kv = 0;
  ByteWriter kv;
  auto key = [&](const std::string& k, ValueType t) {
    write_string(kv, k);
    kv.write(static_cast<uint32_t>(t));
    ++n_kv;
  };
  auto u32 = [&](const std::string& k, uint32_t v) {
    key(k, ValueType::U32);
    kv.write(v);
  };
  auto f32 = [&](const std::string& k, float v) {
    key(k, ValueType::F32);
    kv.write(v);
  };
  key("general.architecture", ValueType::String);
  write_string(kv, "llama");
  key("general.name", ValueType::String);
  write_string(kv, "lowbit export");
  u32("general.alignment", static_cast<uint32_t>(kDefaultAlignment));
  u32("general.file_type", type == GgmlType::F32 ? 0u : type == GgmlType::F16 ? 1u : 7u);  // llama_ftype ALL_F32, MOSTLY_F16, MOSTLY_Q8_0
  u32("llama.context_length", static_cast<uint32_t>(c.seq_len));
  u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_size()));
  u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  f32("llama.rope.freq_base", c.rope_theta);
  if (tokenizer) {
    key("tokenizer.ggml.model", ValueType::String);
    write_string(kv, "llama");
    key("tokenizer.ggml.tokens", ValueType::Array);
    kv.write(static_cast<uint32_t>(ValueType::String));
    kv.write(static_cast<uint64_t>(tokenizer->vocab_size()));
    for (int i = 0; i < tokenizer->vocab_size(); ++i) {
      std::string piece;
      if (i == Tokenizer::kBos)
        piece = "<s>";
      else if (i == Tokenizer::kEos)
        piece = "</s>";
      else
        for (char ch : tokenizer->piece(i)) piece += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
      write_string(kv, piece);
    }
    key("tokenizer.ggml.scores", ValueType::Array);
    kv.write(static_cast<uint32_t>(ValueType::F32));
    kv.write(static_cast<uint64_t>(tokenizer->vocab_size()));
    for (int i = 0; i < tokenizer->vocab_size(); ++i) kv.write(tokenizer->score(i));
    key("tokenizer.ggml.token_type", ValueType::Array);
    kv.write(static_cast<uint32_t>(ValueType::I32));
    kv.write(static_cast<uint64_t>(tokenizer->vocab_size()));
    for (int i = 0; i < tokenizer->vocab_size(); ++i) {
      const std::string& p = tokenizer->piece(i);
      const bool byte = p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>';
      kv.write(static_cast<int32_t>(i == Tokenizer::kUnk ? 2 : i == Tokenizer::kBos || i == Tokenizer::kEos ? 3 : byte ? 6 : 1));
    }
    u32("tokenizer.ggml.bos_token_id", Tokenizer::kBos);
    u32("tokenizer.ggml.eos_token_id", Tokenizer::kEos);
    u32("tokenizer.ggml.unknown_token_id", Tokenizer::kUnk);
  }

  w.write(kGgufMagic);
  w.write(uint32_t{3});
  w.write(static_cast<uint64_t>(tensors.size()));
  w.write(n_kv);
  w.append(kv.bytes.data(), kv.bytes.size());
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    write_string(w, t.name);
    w.write(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) w.write(d);
    w.write(static_cast<uint32_t>(t.type));
    w.write(offset);
    offset = (offset + t.data.size() + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment;
  }
  for (const auto& t : tensors) {
    w.pad_to((w.bytes.size() + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment);
    w.append(t.data.data(), t.data.size());
  }
  detail::write_file_bytes(path, w.bytes);
}

GgufModel load_model(const std::string& path) {
  uint32_t magic = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading", path));
    in.read(reinterpret_cast<char*>(&magic), 4);
  }
  if (magic == kGgufMagic) return load_gguf(path);
  return {load_llama2c(path), std::nullopt};
}

}  // namespace lowbit::llm
