#include <array>
#include <cmath>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/llm/quantize.hpp"
#include "lowbit/ptq/gptq.hpp"
#include "lowbit/quant/quantizer.hpp"

namespace lowbit::llm {

namespace {

QuantizerConfig scalar_config(const LlmQuantConfig& cfg, int threads = 1) {
  QuantizerConfig q(*cfg.weights);
  if (cfg.group > 0) {
    q.granularity = Granularity::Group;
    q.axis = 1;  // groups of consecutive inputs within an output row
    q.group_size = cfg.group;
  } else {
    q.granularity = Granularity::Channel;
    q.axis = 0;
  }
  q.symmetric = cfg.symmetric;
  q.threads = threads;
  return q;
}

// Runs the calibration windows through `m` and hands every block Linear input of `layer` to `sink`
// (layer < 0: every layer).
void calibrate(const LlamaModel& m, std::span<const std::span<const int>> windows, int layer, const LinearObserver& sink) {
  Decoder d(m);
  d.set_observer([&](int l, LinearKind k, const float* x, int64_t rows, int64_t cols) {
    if (layer < 0 || l == layer) sink(l, k, x, rows, cols);
  });
  for (const auto& w : windows) {
    d.reset();
    d.forward(w.first(std::min<size_t>(w.size(), static_cast<size_t>(m.config.seq_len))));
  }
}

// SmoothQuant (Xiao et al. 2023): per input channel j, s_j = max|X_j|^alpha / max|W_j|^(1 - alpha);
// the Linear then computes (W diag(s)) (x / s), moving activation outliers into the weights.
void smooth(LlamaModel& m, std::span<const std::span<const int>> windows, double alpha) {
  const size_t L = m.layers.size();
  std::vector<std::array<std::vector<float>, 7>> act_max(L);
  for (size_t l = 0; l < L; ++l)
    for (size_t k = 0; k < 7; ++k) act_max[l][k].assign(static_cast<size_t>(m.layers[l].linear[k].cols), 0.0f);
  calibrate(m, windows, -1, [&](int l, LinearKind k, const float* x, int64_t rows, int64_t cols) {
    auto& mx = act_max[static_cast<size_t>(l)][static_cast<size_t>(k)];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) mx[static_cast<size_t>(j)] = std::max(mx[static_cast<size_t>(j)], std::fabs(x[r * cols + j]));
  });
  for (size_t l = 0; l < L; ++l)
    for (size_t k = 0; k < 7; ++k) {
      Linear& lin = m.layers[l].linear[k];
      lin.input_divisor.assign(static_cast<size_t>(lin.cols), 1.0f);
      for (int64_t j = 0; j < lin.cols; ++j) {
        float wmax = 0;
        for (int64_t r = 0; r < lin.rows; ++r) wmax = std::max(wmax, std::fabs(lin.w[static_cast<size_t>(r * lin.cols + j)]));
        const float amax = act_max[l][k][static_cast<size_t>(j)];
        if (amax <= 0 || wmax <= 0) continue;
        const float s = std::max(1e-5f, static_cast<float>(std::pow(amax, alpha) / std::pow(wmax, 1 - alpha)));
        lin.input_divisor[static_cast<size_t>(j)] = s;
        for (int64_t r = 0; r < lin.rows; ++r) lin.w[static_cast<size_t>(r * lin.cols + j)] *= s;
      }
    }
}

}  // namespace

void quantize_weights_rtn(Linear& lin, const LlmQuantConfig& cfg) {
  if (!cfg.weights) return;
  const Format& f = *cfg.weights;
  const std::vector<int64_t> shape = {lin.rows, lin.cols};
  if (f.scalar()) {
    Quantizer q(scalar_config(cfg));
    q.observe(lin.w, shape);
    q.fake_quant(lin.w, lin.w, shape);
  } else if (f.block()) {
    fake_quant(f, lin.w, lin.w, shape);  // blocks along the last axis: consecutive inputs of a row
  } else {
    // BitMoD groups run over consecutive elements: one row at a time so that no group spans two rows.
    for (int64_t r = 0; r < lin.rows; ++r) {
      const std::span<float> row(lin.w.data() + r * lin.cols, static_cast<size_t>(lin.cols));
      fake_quant(f, row, row);
    }
  }
}

LlamaModel quantize_model(const LlamaModel& fp, const LlmQuantConfig& cfg, std::span<const std::span<const int>> calibration, int threads) {
  if (cfg.needs_calibration() && calibration.empty())
    throw std::invalid_argument(fmt::format("quantization '{}' needs calibration text", cfg.to_string()));
  LlamaModel m = fp;
  if (cfg.smooth_alpha >= 0) smooth(m, calibration, cfg.smooth_alpha);

  const bool gptq = cfg.weights && cfg.method == WeightMethod::Gptq;
  const bool sparsegpt = cfg.sparse_m > 0 && cfg.prune == PruneMethod::SparseGpt;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    LayerWeights& lw = m.layers[l];
    // Hessians of this layer's inputs, with the layers before it already quantized (the inputs it
    // will see). x / input_divisor is what the (smoothed) weights multiply.
    std::array<std::unique_ptr<HessianAccumulator>, 7> hess;
    if (gptq || sparsegpt) {
      for (size_t k = 0; k < 7; ++k) hess[k] = std::make_unique<HessianAccumulator>(lw.linear[k].cols, threads);
      std::vector<float> scaled;
      calibrate(m, calibration, static_cast<int>(l), [&](int, LinearKind k, const float* x, int64_t rows, int64_t cols) {
        const Linear& lin = lw[k];
        const float* src = x;
        if (!lin.input_divisor.empty()) {
          scaled.assign(x, x + rows * cols);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < cols; ++j) scaled[static_cast<size_t>(r * cols + j)] /= lin.input_divisor[static_cast<size_t>(j)];
          src = scaled.data();
        }
        hess[static_cast<size_t>(k)]->add(src, rows);
      });
    }
    for (size_t k = 0; k < 7; ++k) {
      Linear& lin = lw.linear[k];
      if (sparsegpt && gptq) {  // one pass: prune and quantize (parse_quant_config allows GPTQ with sparsity only so)
        prune_quantize_sparsegpt(lin.w, lin.rows, lin.cols, hess[k]->hessian(), cfg.sparse_n, cfg.sparse_m, scalar_config(cfg, threads));
        continue;
      }
      if (cfg.sparse_m > 0) {
        if (sparsegpt)
          prune_sparsegpt(lin.w, lin.rows, lin.cols, hess[k]->hessian(), cfg.sparse_n, cfg.sparse_m);
        else
          prune_magnitude(lin.w, lin.rows, lin.cols, cfg.sparse_n, cfg.sparse_m);
      }
      if (!cfg.weights) continue;
      if (gptq) {
        GptqResult r = gptq_quantize(lin.w, lin.rows, lin.cols, hess[k]->hessian(), scalar_config(cfg, threads));
        lin.w = std::move(r.weights);
      } else {
        quantize_weights_rtn(lin, cfg);
      }
    }
  }
  if (cfg.weights && cfg.quantize_embedding) quantize_weights_rtn(m.embedding, cfg);
  if (cfg.weights && cfg.quantize_classifier) {
    quantize_weights_rtn(m.classifier, cfg);
  } else if (m.config.shared_classifier) {
    m.classifier.w = fp.classifier.w;  // the classifier stays fp32 even when the embedding is quantized
  }
  return m;
}

}  // namespace lowbit::llm
