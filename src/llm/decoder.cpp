#include "lowbit/llm/decoder.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/kernels/gemv.hpp"

namespace lowbit::llm {

int64_t KvCacheQuant::quantized_prefix(int64_t n) const {
  switch (kind) {
    case KvQuantKind::None: return 0;
    case KvQuantKind::PerToken: return n;
    case KvQuantKind::Kivi: return std::max<int64_t>(0, n - residual) / group * group;
  }
  return 0;
}

void KvCacheQuant::validate() const {
  if (kind == KvQuantKind::PerToken && (!format || !format->scalar()))
    throw std::invalid_argument("per-token KV cache quantization needs a scalar format (int8, float8_e4m3fn, ...)");
  if (kind == KvQuantKind::Kivi) {
    if (bits < 1 || bits > 16) throw std::invalid_argument(fmt::format("KIVI bits {} out of range 1 .. 16", bits));
    if (group < 1) throw std::invalid_argument(fmt::format("KIVI group {} must be positive", group));
    if (residual < 0) throw std::invalid_argument(fmt::format("KIVI residual {} must be >= 0", residual));
  }
}

namespace {

// Row-by-row dot products, compiled for AVX-512, AVX2 and the baseline, chosen at load time.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void gemv_rows(const float* w, const float* x, float* y, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* row = w + r * cols;
    float acc[16] = {};
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16)
      for (int j = 0; j < 16; ++j) acc[j] += row[k + j] * x[k + j];
    float s = 0;
    for (; k < cols; ++k) s += row[k] * x[k];
    for (int j = 0; j < 16; ++j) s += acc[j];
    y[r] = s;
  }
}

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
           float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // oneDNN wants k >= 1; C = beta * C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  // One thread: the products here are small and come by the hundred; oneDNN's own OpenMP team
  // would spend more time waking and spinning than multiplying. Callers parallelize outside.
  dnnl_status_t status = dnnl_success;
  if (omp_get_max_threads() > 1) {
#pragma omp parallel num_threads(1)
    {
      omp_set_num_threads(1);
      status = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  } else {
    status = dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  if (status != dnnl_success)
    throw std::runtime_error(fmt::format("oneDNN sgemm failed ({} x {} x {})", m, n, k));
}

void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float ss = 0;
    for (int64_t j = 0; j < n; ++j) ss += xr[j] * xr[j];
    ss = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t j = 0; j < n; ++j) out[r * n + j] = w[j] * (ss * xr[j]);
  }
}

// x[i] = exp(x[i] - shift), returning their sum. exp by Cody-Waite reduction to r in [-ln2/2, ln2/2]
// and a degree-6 Taylor polynomial (relative error below 2e-7), written so that it vectorizes.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
float exp_shifted(float* x, int64_t n, float shift) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::max(x[i] - shift, -87.0f);
    const float k = (v * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest integer
    const float r = (v - k * 0.693145752f) - k * 1.42860677e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    x[i] = p * scale;
  }
  float acc[16] = {};  // partial sums: a single running sum would not vectorize
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
  for (; i < n; ++i) sum += x[i];
  for (float a : acc) sum += a;
  return sum;
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  const float inv = 1.0f / exp_shifted(x, n, mx);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// Each row scaled by its largest magnitude onto the format's range, rounded, scaled back.
void quantize_rows_per_token(const Format& f, float* x, int64_t rows, int64_t cols, std::vector<float>& tmp) {
  const double fmax = f.scalar()->max();
  tmp.resize(static_cast<size_t>(rows * cols));
  std::vector<float> scales(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(x[r * cols + j]));
    const float s = amax > 0 ? static_cast<float>(amax / fmax) : 1.0f;
    scales[static_cast<size_t>(r)] = s;
    for (int64_t j = 0; j < cols; ++j) tmp[static_cast<size_t>(r * cols + j)] = x[r * cols + j] / s;
  }
  fake_quant(f, tmp, tmp);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) x[r * cols + j] = tmp[static_cast<size_t>(r * cols + j)] * scales[static_cast<size_t>(r)];
}

// Asymmetric min-max integers of `bits` bits over n values at stride `stride`.
void quantize_min_max(const float* in, float* out, int64_t n, int64_t stride, int bits) {
  float lo = in[0], hi = in[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, in[i * stride]);
    hi = std::max(hi, in[i * stride]);
  }
  const float levels = static_cast<float>((1 << bits) - 1);
  const float scale = (hi - lo) / levels;
  for (int64_t i = 0; i < n; ++i) {
    const float v = in[i * stride];
    out[i * stride] = scale > 0 ? std::clamp(std::nearbyint((v - lo) / scale), 0.0f, levels) * scale + lo : v;
  }
}

}  // namespace

Decoder::Decoder(const LlamaModel& m, RuntimeOptions opt) : m_(m), opt_(std::move(opt)) {
  const LlamaConfig& c = m_.config;
  c.validate("decoder");
  opt_.kv.validate();
  if (opt_.activation_format && !opt_.activation_format->scalar())
    throw std::invalid_argument(fmt::format("activation quantization needs a scalar format, not {}", opt_.activation_format->to_string()));
  const int hs = c.head_size(), half = hs / 2;
  rope_cos_.resize(static_cast<size_t>(c.seq_len) * half);
  rope_sin_.resize(rope_cos_.size());
  for (int p = 0; p < c.seq_len; ++p)
    for (int i = 0; i < half; ++i) {
      const float freq = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(hs));
      const float angle = static_cast<float>(p) * freq;
      rope_cos_[static_cast<size_t>(p) * half + i] = std::cos(angle);
      rope_sin_[static_cast<size_t>(p) * half + i] = std::sin(angle);
    }
  if (opt_.packed) {
    if (opt_.packed->layers() != c.n_layers)
      throw std::invalid_argument(fmt::format("packed weights hold {} layers, the model {}", opt_.packed->layers(), c.n_layers));
    for (int l = 0; l < c.n_layers; ++l)
      for (LinearKind k : kLinearKinds) {
        const kernels::PackedMatrix& p = opt_.packed->get(l, k);
        const Linear& lin = m_.layers[static_cast<size_t>(l)][k];
        if (p.rows() != lin.rows || p.cols() != lin.cols)
          throw std::invalid_argument(fmt::format("packed layer {} {} is {} x {}, the model's {} x {}", l, to_string(k), p.rows(), p.cols(),
                                                  lin.rows, lin.cols));
      }
  }
  cache_.resize(static_cast<size_t>(c.n_layers));
  const size_t kv_size = static_cast<size_t>(c.seq_len) * static_cast<size_t>(c.kv_dim());
  for (auto& lc : cache_) {
    lc.k.assign(kv_size, 0.0f);
    lc.v.assign(kv_size, 0.0f);
    if (opt_.kv.kind != KvQuantKind::None) {
      lc.kq.assign(kv_size, 0.0f);
      lc.vq.assign(kv_size, 0.0f);
    }
  }
}

void Decoder::linear(int layer, LinearKind kind, const Linear& lin, const float* x, int64_t rows, float* y) {
  if (observer_ && layer >= 0) observer_(layer, kind, x, rows, lin.cols);
  const bool smooth = !lin.input_divisor.empty();
  const bool act = opt_.activation_format && layer >= 0;
  if (smooth || act) {
    xb_.assign(x, x + rows * lin.cols);
    if (smooth)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < lin.cols; ++j) xb_[static_cast<size_t>(r * lin.cols + j)] /= lin.input_divisor[static_cast<size_t>(j)];
    if (act) quantize_rows_per_token(*opt_.activation_format, xb_.data(), rows, lin.cols, scratch_);
    x = xb_.data();
  }
  const auto start = opt_.time_matmuls ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  // Small matrices are not worth a thread team's wake-up.
  const int threads = rows == 1 && lin.rows * lin.cols >= (1 << 16) ? std::max(1, opt_.threads) : 1;
  if (opt_.packed && layer >= 0) {
    const size_t in = static_cast<size_t>(rows * lin.cols), out = static_cast<size_t>(rows * lin.rows);
    kernels::gemm(opt_.packed->get(layer, kind), std::span<const float>(x, in), std::span<float>(y, out), static_cast<int>(rows), threads);
  } else if (rows == 1) {
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (int t = 0; t < threads; ++t) {
      const int64_t r0 = lin.rows * t / threads, r1 = lin.rows * (t + 1) / threads;
      gemv_rows(lin.w.data(), x, y, r0, r1, lin.cols);
    }
  } else {
    sgemm('N', 'T', rows, lin.rows, lin.cols, 1.0f, x, lin.cols, lin.w.data(), lin.cols, 0.0f, y, lin.rows);
  }
  if (opt_.time_matmuls) matmul_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Decoder::append_kv(LayerCache& c, int64_t first, int64_t count) {
  const KvCacheQuant& kv = opt_.kv;
  if (kv.kind == KvQuantKind::None) return;
  const int64_t kvd = m_.config.kv_dim();
  if (kv.kind == KvQuantKind::PerToken) {
    for (auto [src, dst] : {std::pair{&c.k, &c.kq}, std::pair{&c.v, &c.vq}}) {
      std::copy(src->begin() + first * kvd, src->begin() + (first + count) * kvd, dst->begin() + first * kvd);
      quantize_rows_per_token(*kv.format, dst->data() + first * kvd, count, kvd, scratch_);
    }
    return;
  }
  // KIVI: values per token, in groups of channels; keys per channel, in groups of tokens once complete.
  for (int64_t t = first; t < first + count; ++t)
    for (int64_t g = 0; g < kvd; g += kv.group)
      quantize_min_max(c.v.data() + t * kvd + g, c.vq.data() + t * kvd + g, std::min<int64_t>(kv.group, kvd - g), 1, kv.bits);
  const int64_t complete = (first + count) / kv.group;
  for (; c.key_groups_done < complete; ++c.key_groups_done) {
    const int64_t t0 = c.key_groups_done * kv.group;
    for (int64_t ch = 0; ch < kvd; ++ch) quantize_min_max(c.k.data() + t0 * kvd + ch, c.kq.data() + t0 * kvd + ch, kv.group, kvd, kv.bits);
  }
}

void Decoder::attention(const LayerCache& c, int64_t first, int64_t count, const float* q, float* out) {
  const LlamaConfig& cfg = m_.config;
  const int64_t dim = cfg.dim, kvd = cfg.kv_dim(), hs = cfg.head_size(), per_kv = cfg.n_heads / cfg.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const int64_t n = first + count;
  const KvCacheQuant& kv = opt_.kv;
  if (count == 1) {
    const int64_t nq = kv.quantized_prefix(n);
    scores_.resize(static_cast<size_t>(n));
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      const int64_t off = (h / per_kv) * hs;
      const float* qh = q + h * hs;
      for (int64_t s = 0; s < n; ++s) {
        const float* kr = (s < nq ? c.kq.data() : c.k.data()) + s * kvd + off;
        float d = 0;
        for (int64_t j = 0; j < hs; ++j) d += qh[j] * kr[j];
        scores_[static_cast<size_t>(s)] = d * scale;
      }
      softmax(scores_.data(), n);
      float* oh = out + h * hs;
      std::fill(oh, oh + hs, 0.0f);
      for (int64_t s = 0; s < n; ++s) {
        const float* vr = (s < nq ? c.vq.data() : c.v.data()) + s * kvd + off;
        const float p = scores_[static_cast<size_t>(s)];
        for (int64_t j = 0; j < hs; ++j) oh[j] += p * vr[j];
      }
    }
    return;
  }
  // A chunk, in blocks of queries: each block's scores against the keys it can see by sgemm, then
  // the causal mask; where a query reads quantized keys and values (the oldest ones, by its own
  // position), a second product supplies them.
  constexpr int64_t kQueryBlock = 64;
  for (int64_t b0 = 0; b0 < count; b0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, count - b0), nb = first + b0 + rows;  // keys visible to the block's last query
    const int64_t nq_max = kv.quantized_prefix(nb);
    scores_.resize(static_cast<size_t>(rows * nb));
    if (nq_max > 0) {
      scores_q_.resize(static_cast<size_t>(rows * nq_max));
      probs_q_.resize(static_cast<size_t>(rows * nq_max));
    }
    const float* qb = q + b0 * dim;
    float* ob = out + b0 * dim;
    for (int64_t h = 0; h < cfg.n_heads; ++h) {
      const int64_t off = (h / per_kv) * hs;
      sgemm('N', 'T', rows, nb, hs, scale, qb + h * hs, dim, c.k.data() + off, kvd, 0.0f, scores_.data(), nb);
      if (nq_max > 0) sgemm('N', 'T', rows, nq_max, hs, scale, qb + h * hs, dim, c.kq.data() + off, kvd, 0.0f, scores_q_.data(), nq_max);
      for (int64_t i = 0; i < rows; ++i) {
        float* row = scores_.data() + i * nb;
        const int64_t visible = first + b0 + i + 1, nq = kv.quantized_prefix(visible);
        if (nq > 0) std::copy_n(scores_q_.data() + i * nq_max, nq, row);
        softmax(row, visible);
        std::fill(row + visible, row + nb, 0.0f);
        if (nq_max > 0) {
          float* pq = probs_q_.data() + i * nq_max;
          std::copy_n(row, nq, pq);
          std::fill(pq + nq, pq + nq_max, 0.0f);
          std::fill(row, row + nq, 0.0f);
        }
      }
      sgemm('N', 'N', rows, hs, nb, 1.0f, scores_.data(), nb, c.v.data() + off, kvd, 0.0f, ob + h * hs, dim);
      if (nq_max > 0) sgemm('N', 'N', rows, hs, nq_max, 1.0f, probs_q_.data(), nq_max, c.vq.data() + off, kvd, 1.0f, ob + h * hs, dim);
    }
  }
}

std::span<const float> Decoder::forward(std::span<const int> tokens) {
  const LlamaConfig& c = m_.config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return {};
  if (pos_ + T > c.seq_len)
    throw std::out_of_range(fmt::format("positions {} .. {} exceed the context of {} tokens", pos_, pos_ + T - 1, c.seq_len));
  for (int t : tokens)
    if (t < 0 || t >= c.vocab_size) throw std::out_of_range(fmt::format("token id {} outside the vocabulary of {}", t, c.vocab_size));
  const int64_t dim = c.dim, kvd = c.kv_dim(), hs = c.head_size(), hidden = c.hidden_dim, first = pos_;
  x_.resize(static_cast<size_t>(T * dim));
  std::vector<float> xn(static_cast<size_t>(T * dim)), tmp(static_cast<size_t>(T * dim));
  q_.resize(static_cast<size_t>(T * dim));
  att_.resize(static_cast<size_t>(T * dim));
  h1_.resize(static_cast<size_t>(T * hidden));
  h3_.resize(static_cast<size_t>(T * hidden));
  for (int64_t t = 0; t < T; ++t)
    std::copy_n(m_.embedding.w.data() + static_cast<int64_t>(tokens[static_cast<size_t>(t)]) * dim, dim, x_.data() + t * dim);

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m_.layers[static_cast<size_t>(l)];
    LayerCache& lc = cache_[static_cast<size_t>(l)];
    rmsnorm(x_.data(), w.rms_att.data(), xn.data(), T, dim, c.norm_eps);
    float* kdst = lc.k.data() + first * kvd;
    float* vdst = lc.v.data() + first * kvd;
    linear(l, LinearKind::Wq, w[LinearKind::Wq], xn.data(), T, q_.data());
    linear(l, LinearKind::Wk, w[LinearKind::Wk], xn.data(), T, kdst);
    linear(l, LinearKind::Wv, w[LinearKind::Wv], xn.data(), T, vdst);
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = rope_cos_.data() + (first + t) * (hs / 2);
      const float* sn = rope_sin_.data() + (first + t) * (hs / 2);
      auto rotate = [&](float* vec, int64_t width) {
        for (int64_t i = 0; i < width; i += 2) {
          const int64_t f = (i % hs) / 2;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * cs[f] - v1 * sn[f];
          vec[i + 1] = v0 * sn[f] + v1 * cs[f];
        }
      };
      rotate(q_.data() + t * dim, dim);
      rotate(kdst + t * kvd, kvd);
    }
    append_kv(lc, first, T);
    attention(lc, first, T, q_.data(), att_.data());
    linear(l, LinearKind::Wo, w[LinearKind::Wo], att_.data(), T, tmp.data());
    for (int64_t i = 0; i < T * dim; ++i) x_[static_cast<size_t>(i)] += tmp[static_cast<size_t>(i)];

    rmsnorm(x_.data(), w.rms_ffn.data(), xn.data(), T, dim, c.norm_eps);
    linear(l, LinearKind::W1, w[LinearKind::W1], xn.data(), T, h1_.data());
    linear(l, LinearKind::W3, w[LinearKind::W3], xn.data(), T, h3_.data());
    for (size_t i = 0; i < h1_.size(); ++i) {
      const float a = h1_[i];
      h1_[i] = a / (1.0f + std::exp(-a)) * h3_[i];
    }
    linear(l, LinearKind::W2, w[LinearKind::W2], h1_.data(), T, tmp.data());
    for (int64_t i = 0; i < T * dim; ++i) x_[static_cast<size_t>(i)] += tmp[static_cast<size_t>(i)];
  }
  rmsnorm(x_.data(), m_.rms_final.data(), xn.data(), T, dim, c.norm_eps);
  logits_.resize(static_cast<size_t>(T * c.vocab_size));
  linear(-1, LinearKind::Wq, m_.classifier, xn.data(), T, logits_.data());
  pos_ += static_cast<int>(T);
  return logits_;
}

double log_probability(std::span<const float> logits, int target) {
  if (target < 0 || static_cast<size_t>(target) >= logits.size())
    throw std::out_of_range(fmt::format("target {} outside {} logits", target, logits.size()));
  double mx = logits[0];
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  return static_cast<double>(logits[static_cast<size_t>(target)]) - mx - std::log(sum);
}

}  // namespace lowbit::llm
