#include <charconv>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/llm/quantize.hpp"

namespace lowbit::llm {

namespace {

std::string format_name(const Format& f) {
  const auto preset = preset_name(f);
  return preset ? std::string(*preset) : f.to_string();
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

int parse_int(const std::string& key, const std::string& v) {
  int out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) throw std::invalid_argument(fmt::format("{}: '{}' is not an integer", key, v));
  return out;
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw std::invalid_argument(fmt::format("{}: '{}' is not 0 or 1", key, v));
}

Format parse_format(const std::string& key, const std::string& v) {
  try {
    return Format::parse(v);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("{}: {}", key, e.what()));
  }
}

void apply(LlmQuantConfig& c, const std::string& key, const std::string& v) {
  if (key == "w") {
    c.weights = parse_format(key, v);
  } else if (key == "group") {
    c.group = parse_int(key, v);
    if (c.group < 0) throw std::invalid_argument(fmt::format("group {} must be >= 0", c.group));
  } else if (key == "sym") {
    c.symmetric = parse_bool(key, v);
  } else if (key == "method") {
    if (v == "rtn") c.method = WeightMethod::Rtn;
    else if (v == "gptq") c.method = WeightMethod::Gptq;
    else throw std::invalid_argument(fmt::format("method '{}': rtn or gptq", v));
  } else if (key == "embed") {
    c.quantize_embedding = parse_bool(key, v);
  } else if (key == "head") {
    c.quantize_classifier = parse_bool(key, v);
  } else if (key == "sparsity") {
    const auto colon = v.find(':');
    if (colon == std::string::npos) throw std::invalid_argument(fmt::format("sparsity '{}': expected N:M such as 2:4", v));
    c.sparse_n = parse_int(key, v.substr(0, colon));
    c.sparse_m = parse_int(key, v.substr(colon + 1));
    if (c.sparse_m < 1 || c.sparse_n < 1 || c.sparse_n > c.sparse_m)
      throw std::invalid_argument(fmt::format("sparsity '{}': needs 1 <= N <= M", v));
  } else if (key == "prune") {
    if (v == "magnitude") c.prune = PruneMethod::Magnitude;
    else if (v == "sparsegpt") c.prune = PruneMethod::SparseGpt;
    else throw std::invalid_argument(fmt::format("prune '{}': magnitude or sparsegpt", v));
  } else if (key == "a") {
    c.activations = parse_format(key, v);
    if (!c.activations->scalar()) throw std::invalid_argument(fmt::format("a: per-token activations need a scalar format, not '{}'", v));
  } else if (key == "smooth") {
    try {
      c.smooth_alpha = std::stod(v);
    } catch (const std::exception&) {
      throw std::invalid_argument(fmt::format("smooth: '{}' is not a number", v));
    }
    if (!(c.smooth_alpha >= 0 && c.smooth_alpha <= 1)) throw std::invalid_argument(fmt::format("smooth alpha {} outside [0, 1]", v));
  } else if (key == "kv") {
    if (v == "none") {
      c.kv.kind = KvQuantKind::None;
    } else if (v.rfind("kivi", 0) == 0) {
      c.kv.kind = KvQuantKind::Kivi;
      c.kv.bits = parse_int(key, v.substr(4));
    } else {
      c.kv.kind = KvQuantKind::PerToken;
      c.kv.format = parse_format(key, v == "fp8" ? "float8_e4m3fn" : v);
    }
  } else if (key == "kv_group") {
    c.kv.group = parse_int(key, v);
  } else if (key == "kv_residual") {
    c.kv.residual = parse_int(key, v);
  } else if (key == "storage") {
    try {
      c.storage = kernels::parse_storage_format(v);
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("storage: {}", e.what()));
    }
  } else {
    throw std::invalid_argument(fmt::format(
        "unknown quantization key '{}' (w, group, sym, method, embed, head, sparsity, prune, a, smooth, kv, kv_group, kv_residual, storage)", key));
  }
}

}  // namespace

LlmQuantConfig parse_quant_config(std::string_view text) {
  LlmQuantConfig c;
  const std::string t = trim(text);
  if (!t.empty() && t.front() == '{') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(t);
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("quantization config JSON: {}", e.what()));
    }
    for (const auto& [key, value] : j.items()) {
      if (key == "name") continue;
      apply(c, key, value.is_string() ? value.get<std::string>() : value.dump());
    }
  } else {
    size_t start = 0;
    while (start <= t.size()) {
      const size_t end = std::min(t.find(';', start), t.size());
      const std::string item = trim(std::string_view(t).substr(start, end - start));
      start = end + 1;
      if (item.empty()) continue;
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw std::invalid_argument(fmt::format("'{}': expected key=value", item));
      apply(c, trim(item.substr(0, eq)), trim(item.substr(eq + 1)));
    }
  }
  c.kv.validate();
  if (c.sparse_m > 0 && c.method == WeightMethod::Gptq && c.prune != PruneMethod::SparseGpt)
    throw std::invalid_argument(
        "GPTQ with N:M sparsity runs as SparseGPT's joint prune and quantize: add prune=sparsegpt (magnitude pruning then GPTQ would refill the pruned weights)");
  if (c.method == WeightMethod::Gptq && (!c.weights || !c.weights->scalar()))
    throw std::invalid_argument("method=gptq needs a scalar weight format (w=int4, ...)");
  if (c.group > 0 && c.weights && !c.weights->scalar())
    throw std::invalid_argument(fmt::format("group applies to scalar formats; {} carries its own blocks", c.weights->to_string()));
  if (c.smooth_alpha >= 0 && !c.activations) throw std::invalid_argument("smooth needs activation quantization (a=int8)");
  return c;
}

bool LlmQuantConfig::needs_calibration() const {
  return method == WeightMethod::Gptq || (sparse_m > 0 && prune == PruneMethod::SparseGpt) || smooth_alpha >= 0;
}

RuntimeOptions LlmQuantConfig::runtime(const LlamaModel& quantized, int threads) const {
  RuntimeOptions r;
  r.activation_format = activations;
  r.kv = kv;
  r.threads = threads;
  if (storage) r.packed = std::make_shared<const PackedLinears>(quantized, *storage);
  return r;
}

std::string LlmQuantConfig::to_string() const {
  std::vector<std::string> parts;
  if (sparse_m > 0) {
    parts.push_back(fmt::format("sparsity={}:{}", sparse_n, sparse_m));
    if (prune == PruneMethod::SparseGpt) parts.push_back("prune=sparsegpt");
  }
  if (weights) {
    parts.push_back("w=" + format_name(*weights));
    if (group > 0) parts.push_back(fmt::format("group={}", group));
    if (!symmetric) parts.push_back("sym=0");
    if (method == WeightMethod::Gptq) parts.push_back("method=gptq");
    if (quantize_embedding) parts.push_back("embed=1");
    if (quantize_classifier) parts.push_back("head=1");
  }
  if (activations) parts.push_back("a=" + format_name(*activations));
  if (smooth_alpha >= 0) parts.push_back(fmt::format("smooth={}", smooth_alpha));
  if (kv.kind == KvQuantKind::Kivi) parts.push_back(fmt::format("kv=kivi{};kv_group={};kv_residual={}", kv.bits, kv.group, kv.residual));
  if (kv.kind == KvQuantKind::PerToken) parts.push_back("kv=" + format_name(*kv.format));
  if (storage) parts.push_back(fmt::format("storage={}", kernels::to_string(*storage)));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ";") + p;
  return out.empty() ? "fp32" : out;
}

}  // namespace lowbit::llm
