// `lowbit llm ...`: generate text, perplexity, quantization sweeps, GGUF conversion and decode speed
// for llama-family checkpoints (llama2.c .bin or GGUF).
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>

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
  std::string model, tokenizer, prompt;
  int steps = 256;
  float temperature = 1.0f, top_p = 0.9f;
  uint64_t seed = 42;
  int threads = 1;
};

void run_generate(const GenerateOptions& o) {
  Loaded l = load(o.model, o.tokenizer);
  const std::vector<int> prompt = l.tokenizer.encode(o.prompt, true, false);
  Decoder d(l.model, RuntimeOptions{.activation_format = {}, .kv = {}, .threads = o.threads});
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
  std::string model, tokenizer, text, config, configs;
  EvalSetup setup;
};

void run_ppl(const PplOptions& o) {
  const LlmQuantConfig cfg = parse_quant_config(o.config);
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
  Loaded l = load(o.model, o.tokenizer);
  const std::vector<int> tokens = l.tokenizer.encode(read_text(o.text), true, false);
  fmt::print("| configuration | spec | weight bits | perplexity (all windows) | held-out perplexity | vs fp32 | seconds |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|\n");
  double reference = 0;
  int64_t scored = 0;
  for (size_t i = 0; i < parsed.size(); ++i) {
    const EvalResult r = evaluate_config(l.model, tokens, parsed[i], o.setup);
    scored = r.all.tokens;
    if (i == 0) reference = r.all.perplexity;
    const std::string bits = parsed[i].weights ? fmt::format("{:.2f}", parsed[i].weights->bits_per_element()) : "32";
    fmt::print("| {} | `{}` | {} | {:.4f} | {} | {:+.2f} % | {:.1f} |\n", configs[i].first, parsed[i].to_string(), bits, r.all.perplexity,
               parsed[i].needs_calibration() ? fmt::format("{:.4f}", r.held_out.perplexity) : std::string("="),
               100 * (r.all.perplexity / reference - 1), r.seconds);
    std::fflush(stdout);
  }
  fmt::print("\n{} scored tokens per configuration; calibration (GPTQ, SparseGPT, SmoothQuant): the last {} windows.\n", scored,
             o.setup.calib_windows);
}

struct BenchOptions {
  std::string model, config;
  int steps = 0, repeats = 5, threads = 1;
};

// Greedy decoding from BOS, one token per forward (the KV-cache path), best of `repeats`.
void run_bench(const BenchOptions& o) {
  const LlmQuantConfig cfg = parse_quant_config(o.config);
  if (cfg.needs_calibration()) throw std::invalid_argument("llm bench: configurations that need calibration are not supported here");
  GgufModel g = load_model(o.model);
  const LlamaModel m = quantize_model(g.model, cfg, {}, 1);
  const LlamaConfig& c = m.config;
  const int steps = o.steps > 0 ? std::min(o.steps, c.seq_len) : c.seq_len;
  double best = 1e30;
  for (int rep = 0; rep < std::max(1, o.repeats); ++rep) {
    Decoder d(m, cfg.runtime(o.threads));
    int token = Tokenizer::kBos;
    const auto t0 = std::chrono::steady_clock::now();
    for (int pos = 0; pos < steps; ++pos) token = argmax(d.forward(std::span<const int>(&token, 1)));
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // Multiply-adds per token: every matrix once, attention over (on average) half the context.
  double flops = 0;
  for (const auto& l : m.layers)
    for (const auto& lin : l.linear) flops += 2.0 * static_cast<double>(lin.w.size());
  flops += 2.0 * static_cast<double>(m.classifier.w.size());
  flops += 2.0 * 2.0 * c.n_layers * c.n_heads * c.head_size() * (steps + 1) / 2.0;
  fmt::print("{}: {} ({} parameters), config {}, {} thread(s)\n", o.model, "decode", m.parameter_count(), cfg.to_string(), o.threads);
  fmt::print("decode {} tokens: {:.4f} s, {:.0f} tokens/s, {:.2f} GFLOP/s\n", steps, best, steps / best, flops * steps / best / 1e9);
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
  ppl->callback([p] { run_ppl(*p); });

  auto s = std::make_shared<PplOptions>();
  CLI::App* sweep = llm->add_subcommand("sweep", "Perplexity table (markdown) over a list of quantization configurations");
  eval_options(sweep, s.get());
  sweep->add_option("--configs", s->configs, "File: lines 'name | config' or a JSON array (default: the docs/llm.md list)");
  sweep->callback([s] { run_sweep(*s); });

  auto b = std::make_shared<BenchOptions>();
  CLI::App* bench = llm->add_subcommand("bench", "Decode speed (tokens/s) of greedy generation from BOS");
  bench->add_option("model", b->model, "Checkpoint (llama2.c .bin or .gguf)")->required();
  bench->add_option("--config", b->config, "Weight / activation / KV quantization (no calibration)");
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
