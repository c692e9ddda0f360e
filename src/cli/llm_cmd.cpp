// `lowbit llm ...`: generate text, perplexity, quantization sweeps, GGUF conversion and decode speed
// for llama-family checkpoints (llama2.c .bin or GGUF).
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "lowbit/dse/store.hpp"
#include "lowbit/kernels/gemv.hpp"
#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/decoder.hpp"
#include "lowbit/llm/evaluate.hpp"
#include "lowbit/llm/gguf.hpp"
#include "lowbit/llm/perplexity.hpp"
#include "lowbit/llm/sampler.hpp"
#include "lowbit/llm/tokenizer.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

using namespace lowbit::llm;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Loaded {
  LlamaModel model;
  Tokenizer tokenizer;
};

// The model (llama2.c or GGUF) and its tokenizer: the file given, else the one inside the GGUF.
Loaded load(const std::string& model_path, const std::string& tokenizer_path) {
  GgufModel g = load_model(model_path);
  if (tokenizer_path.empty() && !g.tokenizer)
    throw std::runtime_error(fmt::format("{}: holds no tokenizer; give --tokenizer", model_path));
  Tokenizer t = tokenizer_path.empty() ? std::move(*g.tokenizer) : Tokenizer::load_llama2c(tokenizer_path);
  t.require_vocab(g.model.config.vocab_size, model_path);
  return {std::move(g.model), std::move(t)};
}

struct GenerateOptions {
  std::string model, tokenizer, prompt, storage;
  int steps = 256;
  float temperature = 1.0f, top_p = 0.9f;
  uint64_t seed = 42;
  int threads = 1;
};

void run_generate(const GenerateOptions& o) {
  Loaded l = load(o.model, o.tokenizer);
  const std::vector<int> prompt = l.tokenizer.encode(o.prompt, true, false);
  RuntimeOptions runtime;
  runtime.threads = o.threads;
  if (!o.storage.empty()) runtime.packed = std::make_shared<const PackedLinears>(l.model, kernels::parse_storage_format(o.storage));
  Decoder d(l.model, runtime);
  Sampler sampler({o.temperature, o.top_p, o.seed});
  const int steps = std::min(o.steps, l.model.config.seq_len);
  int token = prompt[0];
  std::string text;
  int generated = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int pos = 0; pos < steps; ++pos) {
    const int tok_in = token;
    const auto logits = d.forward(std::span<const int>(&tok_in, 1));
    const int next = pos + 1 < static_cast<int>(prompt.size()) ? prompt[static_cast<size_t>(pos + 1)] : sampler.sample(logits);
    if (next == Tokenizer::kBos) break;  // llama2.c: BOS delimits sequences
    fmt::print("{}", l.tokenizer.decode(token, next));
    std::fflush(stdout);
    token = next;
    ++generated;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("\n");
  fmt::print(stderr, "{} tokens in {:.3f} s: {:.1f} tokens/s\n", generated, seconds, generated / seconds);
}

struct PplOptions {
  std::string model, tokenizer, text, config, configs, storage, store;
  EvalSetup setup;
};

// --config with --storage's format added as its storage key.
std::string config_with_storage(const std::string& config, const std::string& storage) {
  if (storage.empty()) return config;
  const size_t first = config.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && config[first] == '{')
    throw std::invalid_argument("--storage with a JSON --config: put \"storage\" in the JSON object");
  return config + ";storage=" + storage;
}

void run_ppl(const PplOptions& o) {
  const LlmQuantConfig cfg = parse_quant_config(config_with_storage(o.config, o.storage));
  Loaded l = load(o.model, o.tokenizer);
  const std::vector<int> tokens = l.tokenizer.encode(read_text(o.text), true, false);
  const EvalResult r = evaluate_config(l.model, tokens, cfg, o.setup);
  fmt::print("config {}\n", cfg.to_string());
  fmt::print("perplexity {:.4f}\n", r.all.perplexity);
  fmt::print("mean NLL {:.5f} nats/token over {} scored tokens in {} windows of {} ({} tokens in the text, {:.2f} s)\n", r.all.mean_nll,
             r.all.tokens, r.all.windows, o.setup.window, tokens.size(), r.seconds);
  if (cfg.needs_calibration())
    fmt::print("calibrated on the last {} windows; held-out perplexity {:.4f} over {} tokens\n", o.setup.calib_windows, r.held_out.perplexity,
               r.held_out.tokens);
}

void run_sweep(const PplOptions& o) {
  const auto configs = o.configs.empty() ? default_sweep_configs() : read_sweep_configs(o.configs);
  std::vector<LlmQuantConfig> parsed;
  for (const auto& [name, text] : configs) {
    try {
      parsed.push_back(parse_quant_config(text));
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("configuration '{}': {}", name, e.what()));
    }
  }
  std::optional<dse::ResultStore> store;
  std::map<std::string, dse::LlmPointResult> stored_rows;  // by key
  if (!o.store.empty()) {
    store.emplace(dse::ResultStore::open(o.store));
    for (dse::LlmPointResult& r : store->llm_points()) stored_rows.emplace(r.key, std::move(r));
  }
  // A stored row is reused when everything its perplexity depends on is the same.
  auto key_of = [&](const LlmQuantConfig& c) {
    return nlohmann::json{{"model", std::filesystem::path(o.model).filename().string()},
                          {"tokenizer", std::filesystem::path(o.tokenizer).filename().string()},
                          {"text", std::filesystem::path(o.text).filename().string()},
                          {"config", c.to_string()},
                          {"window", o.setup.window},
                          {"calib_windows", o.setup.calib_windows},
                          {"max_windows", o.setup.max_windows}}
        .dump();
  };
  Loaded l = load(o.model, o.tokenizer);
  const std::vector<int> tokens = l.tokenizer.encode(read_text(o.text), true, false);
  fmt::print("| configuration | spec | weight bits | perplexity (all windows) | held-out perplexity | vs fp32 | seconds |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|\n");
  double reference = 0;
  int64_t scored = 0;
  size_t reused = 0;
  for (size_t i = 0; i < parsed.size(); ++i) {
    dse::LlmPointResult row;
    row.key = key_of(parsed[i]);
    const auto stored = stored_rows.find(row.key);
    const bool reuse = stored != stored_rows.end();
    if (reuse) {
      row = stored->second;
      ++reused;
    } else {
      const EvalResult r = evaluate_config(l.model, tokens, parsed[i], o.setup);
      row.model = o.model;
      row.name = configs[i].first;
      row.config = parsed[i].to_string();
      row.weight_bits = parsed[i].weights ? parsed[i].weights->bits_per_element() : 32.0;
      row.perplexity = r.all.perplexity;
      row.held_out_perplexity = parsed[i].needs_calibration() ? r.held_out.perplexity : NAN;
      row.tokens = r.all.tokens;
      row.seconds = r.seconds;
      row.lowbit_version = LOWBIT_VERSION;
      if (store) store->insert_llm(row);
    }
    scored = row.tokens;
    if (i == 0) reference = row.perplexity;
    fmt::print("| {} | `{}` | {:.2f} | {:.4f} | {} | {:+.2f} % | {:.1f}{} |\n", configs[i].first, parsed[i].to_string(), row.weight_bits,
               row.perplexity, std::isnan(row.held_out_perplexity) ? std::string("=") : fmt::format("{:.4f}", row.held_out_perplexity),
               100 * (row.perplexity / reference - 1), row.seconds, reuse ? " (stored)" : "");
    std::fflush(stdout);
  }
  fmt::print("\n{} scored tokens per configuration; calibration (GPTQ, SparseGPT, SmoothQuant): the last {} windows.\n", scored,
             o.setup.calib_windows);
  if (store) fmt::print("{}: {} configurations stored, {} reused\n", o.store, parsed.size() - reused, reused);
}

struct BenchOptions {
  std::string model, config, storage;
  int steps = 0, repeats = 5, threads = 1;
};

struct DecodeTiming {
  double seconds = 0;       // best of the repeats, wall time
  double cpu_seconds = 0;   // best of the repeats, process CPU time (leaves out other programs' slices)
  double matmul_share = 0;  // of the fastest of as many further runs that time the matrix products
};

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Greedy decoding from BOS, one token per forward (the KV-cache path).
DecodeTiming time_decode(const LlamaModel& m, const RuntimeOptions& runtime, int steps, int repeats) {
  struct Run {
    double wall, cpu, matmul;
  };
  auto decode = [&](const RuntimeOptions& r) {
    Decoder d(m, r);
    int token = Tokenizer::kBos;
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (int pos = 0; pos < steps; ++pos) token = argmax(d.forward(std::span<const int>(&token, 1)));
    return Run{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), process_cpu_seconds() - c0, d.matmul_seconds()};
  };
  DecodeTiming t{1e30, 1e30, 0};
  for (int rep = 0; rep < std::max(1, repeats); ++rep) {
    const Run run = decode(runtime);
    t.seconds = std::min(t.seconds, run.wall);
    t.cpu_seconds = std::min(t.cpu_seconds, run.cpu);
  }
  RuntimeOptions timed = runtime;
  timed.time_matmuls = true;
  double fastest = 1e30;
  for (int rep = 0; rep < std::max(1, repeats); ++rep) {
    const Run run = decode(timed);
    if (run.wall < fastest) {
      fastest = run.wall;
      t.matmul_share = run.matmul / run.wall;
    }
  }
  return t;
}

std::vector<kernels::StorageFormat> storage_list(const std::string& text) {
  std::vector<kernels::StorageFormat> out;
  if (text == "all") {
    out.assign(std::begin(kernels::kAllStorageFormats), std::end(kernels::kAllStorageFormats));
    return out;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(kernels::parse_storage_format(text.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

double load_average() {
  double load[1] = {-1};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

// Decode speed of the float32 runtime and of every requested packed storage format.
void run_bench(const BenchOptions& o) {
  const LlmQuantConfig cfg = parse_quant_config(o.config);
  if (cfg.needs_calibration()) throw std::invalid_argument("llm bench: configurations that need calibration are not supported here");
  if (cfg.storage) throw std::invalid_argument("llm bench: give storage formats with --storage, not in --config");
  GgufModel g = load_model(o.model);
  const LlamaModel m = quantize_model(g.model, cfg, {}, 1);
  const LlamaConfig& c = m.config;
  const int steps = o.steps > 0 ? std::min(o.steps, c.seq_len) : c.seq_len;
  // Multiply-adds per token: every matrix once, attention over (on average) half the context.
  double flops = 0;
  for (const auto& l : m.layers)
    for (const auto& lin : l.linear) flops += 2.0 * static_cast<double>(lin.w.size());
  flops += 2.0 * static_cast<double>(m.classifier.w.size());
  flops += 2.0 * 2.0 * c.n_layers * c.n_heads * c.head_size() * (steps + 1) / 2.0;
  fmt::print("{}: decode ({} parameters), config {}, {} thread(s), {} tokens from BOS, best of {}; load average {:.2f}\n", o.model,
             m.parameter_count(), cfg.to_string(), o.threads, steps, std::max(1, o.repeats), load_average());
  fmt::print("| weights | block weight KiB | tokens/s | tokens/s (CPU time) | ms / token | GFLOP/s | matmul share | vs fp32 (CPU time) |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  size_t fp32_bytes = 0;
  for (const auto& l : m.layers)
    for (const auto& lin : l.linear) fp32_bytes += lin.w.size() * sizeof(float);
  const DecodeTiming base = time_decode(m, cfg.runtime(m, o.threads), steps, o.repeats);
  auto row = [&](const std::string& name, size_t bytes, const DecodeTiming& t) {
    fmt::print("| {} | {:.1f} | {:.0f} | {:.0f} | {:.4f} | {:.2f} | {:.0f} % | {:.2f}x |\n", name, bytes / 1024.0, steps / t.seconds,
               steps / t.cpu_seconds, 1e3 * t.seconds / steps, flops * steps / t.seconds / 1e9, 100 * t.matmul_share,
               base.cpu_seconds / t.cpu_seconds);
    std::fflush(stdout);
  };
  row("fp32 (runtime loops)", fp32_bytes, base);
  for (kernels::StorageFormat f : storage_list(o.storage)) {
    LlmQuantConfig packed = cfg;
    packed.storage = f;
    const RuntimeOptions runtime = packed.runtime(m, o.threads);
    row(fmt::format("{} (kernels)", kernels::to_string(f)), runtime.packed->size_bytes(), time_decode(m, runtime, steps, o.repeats));
  }
  fmt::print("kernels: {}; load average at the end {:.2f}\n", kernels::kernel_isa(), load_average());
}

struct ConvertOptions {
  std::string input, output, tokenizer, type = "f32";
};

void run_convert(const ConvertOptions& o) {
  GgufModel g = load_model(o.input);
  std::optional<Tokenizer> tok = std::move(g.tokenizer);
  if (!o.tokenizer.empty()) tok = Tokenizer::load_llama2c(o.tokenizer);
  const GgmlType type = o.type == "f32" ? GgmlType::F32 : o.type == "f16" ? GgmlType::F16 : o.type == "q8_0" ? GgmlType::Q8_0
                        : throw std::invalid_argument(fmt::format("--type '{}': f32, f16 or q8_0", o.type));
  save_gguf(g.model, tok ? &*tok : nullptr, o.output, type);
  fmt::print("wrote {} ({}, {} parameters{})\n", o.output, o.type, g.model.parameter_count(), tok ? ", with tokenizer" : "");
}

}  // namespace

void add_llm_command(CLI::App& app) {
  CLI::App* llm = app.add_subcommand("llm", "llama-family models: generate, perplexity, quantization sweeps, GGUF");
  llm->require_subcommand(1);

  auto g = std::make_shared<GenerateOptions>();
  CLI::App* gen = llm->add_subcommand("generate", "Generate text from a prompt (prints tokens/s on stderr)");
  gen->add_option("model", g->model, "Checkpoint (llama2.c .bin or .gguf)")->required();
  gen->add_option("--tokenizer", g->tokenizer, "llama2.c tokenizer.bin (default: the one in the GGUF file)");
  gen->add_option("--prompt", g->prompt, "Prompt text");
  gen->add_option("--steps", g->steps, "Positions to run, prompt included")->capture_default_str();
  gen->add_option("--temperature", g->temperature, "0 = greedy")->capture_default_str();
  gen->add_option("--top-p", g->top_p, "Nucleus sampling mass")->capture_default_str();
  gen->add_option("--seed", g->seed, "Random seed")->capture_default_str();
  gen->add_option("--threads", g->threads, "Threads for the matrix-vector products")->capture_default_str();
  gen->add_option("--storage", g->storage, "Run the block Linears on packed weights: f32, int8, int4g32, int4g128, int3, int2, int2lut, mxfp4, nvfp4, mxfp4a8, nvfp4a8");
  gen->callback([g] { run_generate(*g); });

  auto p = std::make_shared<PplOptions>();
  CLI::App* ppl = llm->add_subcommand("ppl", "Perplexity of a text file (README protocol: one BOS, non-overlapping windows)");
  auto eval_options = [](CLI::App* cmd, PplOptions* o) {
    cmd->add_option("model", o->model, "Checkpoint (llama2.c .bin or .gguf)")->required();
    cmd->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer.bin (default: the one in the GGUF file)");
    cmd->add_option("--text", o->text, "UTF-8 text file")->required();
    cmd->add_option("--window", o->setup.window, "Tokens per window")->capture_default_str();
    cmd->add_option("--max-windows", o->setup.max_windows, "Score only the first N windows (-1: all)")->capture_default_str();
    cmd->add_option("--calib-windows", o->setup.calib_windows, "Calibration: the text's last N windows")->capture_default_str();
    cmd->add_option("--threads", o->setup.threads, "Windows in parallel")->capture_default_str();
  };
  eval_options(ppl, p.get());
  ppl->add_option("--config", p->config, "Quantization, e.g. 'w=int4;group=128;method=gptq' or a JSON object (default: fp32)");
  ppl->add_option("--storage", p->storage, "Packed weights through lowbit_kernels (int8, int4g32, ...): adds storage=FORMAT to the config");
  ppl->callback([p] { run_ppl(*p); });

  auto s = std::make_shared<PplOptions>();
  CLI::App* sweep = llm->add_subcommand("sweep", "Perplexity table (markdown) over a list of quantization configurations");
  eval_options(sweep, s.get());
  sweep->add_option("--configs", s->configs, "File: lines 'name | config' or a JSON array (default: the docs/llm.md list)");
  sweep->add_option("--store", s->store, "Results store (SQLite, shared with lowbit explore): each configuration once; stored rows are reused");
  sweep->callback([s] { run_sweep(*s); });

  auto b = std::make_shared<BenchOptions>();
  CLI::App* bench = llm->add_subcommand("bench", "Decode speed (tokens/s) of greedy generation from BOS");
  bench->add_option("model", b->model, "Checkpoint (llama2.c .bin or .gguf)")->required();
  bench->add_option("--config", b->config, "Weight / activation / KV quantization (no calibration)");
  bench->add_option("--storage", b->storage, "Packed storage formats to time beside fp32: a comma list (int8,int4g32,...) or 'all'");
  bench->add_option("--steps", b->steps, "Tokens to decode (default: the context length)");
  bench->add_option("--repeats", b->repeats, "Best of N runs")->capture_default_str();
  bench->add_option("--threads", b->threads, "Threads for the matrix-vector products")->capture_default_str();
  bench->callback([b] { run_bench(*b); });

  auto c = std::make_shared<ConvertOptions>();
  CLI::App* conv = llm->add_subcommand("convert", "Write a model as GGUF (f32, f16 or q8_0 matrices)");
  conv->add_option("input", c->input, "Checkpoint (llama2.c .bin or .gguf)")->required();
  conv->add_option("-o,--output", c->output, "GGUF file to write")->required();
  conv->add_option("--type", c->type, "f32, f16 or q8_0")->capture_default_str();
  conv->add_option("--tokenizer", c->tokenizer, "llama2.c tokenizer.bin to embed");
  conv->callback([c] { run_convert(*c); });
}

}  // namespace lowbit::cli
