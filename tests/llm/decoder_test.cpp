// The fp32 decoder: the README's perplexity figure, agreement between token-by-token decoding,
// chunked prefill and an independent transcription of llama2.c's forward(), and sampling.
#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/decoder.hpp"
#include "lowbit/llm/perplexity.hpp"
#include "lowbit/llm/sampler.hpp"
#include "lowbit/llm/tokenizer.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

struct Fixture {
  LlamaModel model = load_llama2c(test::model_path());
  Tokenizer tokenizer = Tokenizer::load_llama2c(test::tokenizer_path());
};
const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// llama2.c's run.c forward(), transcribed loop for loop: one token at a time over plain arrays.
class ReferenceForward {
 public:
  explicit ReferenceForward(const LlamaModel& m) : m_(m) {
    const auto& c = m.config;
    kc_.assign(static_cast<size_t>(c.n_layers * c.seq_len * c.kv_dim()), 0);
    vc_ = kc_;
  }
  std::vector<float> operator()(int token, int pos) {
    const auto& p = m_.config;
    const int dim = p.dim, kv_dim = p.kv_dim(), hs = p.head_size(), hidden = p.hidden_dim, kv_mul = p.n_heads / p.n_kv_heads;
    std::vector<float> x(m_.embedding.w.begin() + token * dim, m_.embedding.w.begin() + (token + 1) * dim);
    std::vector<float> xb(dim), xb2(dim), q(dim), hb(hidden), hb2(hidden), att(p.seq_len);
    auto rms = [&](std::vector<float>& o, const std::vector<float>& in, const std::vector<float>& w) {
      float ss = 0;
      for (int j = 0; j < dim; ++j) ss += in[j] * in[j];
      ss = 1.0f / std::sqrt(ss / dim + 1e-5f);
      for (int j = 0; j < dim; ++j) o[j] = w[j] * (ss * in[j]);
    };
    auto matmul = [](float* out, const float* in, const Linear& w) {
      for (int64_t i = 0; i < w.rows; ++i) {
        float v = 0;
        for (int64_t j = 0; j < w.cols; ++j) v += w.w[i * w.cols + j] * in[j];
        out[i] = v;
      }
    };
    for (int l = 0; l < p.n_layers; ++l) {
      const auto& w = m_.layers[l];
      rms(xb, x, w.rms_att);
      float* k = kc_.data() + (l * p.seq_len + pos) * kv_dim;
      float* v = vc_.data() + (l * p.seq_len + pos) * kv_dim;
      matmul(q.data(), xb.data(), w[LinearKind::Wq]);
      matmul(k, xb.data(), w[LinearKind::Wk]);
      matmul(v, xb.data(), w[LinearKind::Wv]);
      for (int i = 0; i < dim; i += 2) {
        const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(i % hs) / hs);
        const float fcr = std::cos(pos * freq), fci = std::sin(pos * freq);
        for (int r = 0; r < (i < kv_dim ? 2 : 1); ++r) {
          float* vec = r == 0 ? q.data() : k;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      for (int h = 0; h < p.n_heads; ++h) {
        for (int t = 0; t <= pos; ++t) {
          const float* kt = kc_.data() + (l * p.seq_len + t) * kv_dim + (h / kv_mul) * hs;
          float s = 0;
          for (int i = 0; i < hs; ++i) s += q[h * hs + i] * kt[i];
          att[t] = s / std::sqrt(static_cast<float>(hs));
        }
        float mx = att[0], sum = 0;
        for (int t = 1; t <= pos; ++t) mx = std::max(mx, att[t]);
        for (int t = 0; t <= pos; ++t) sum += att[t] = std::exp(att[t] - mx);
        for (int i = 0; i < hs; ++i) xb[h * hs + i] = 0;
        for (int t = 0; t <= pos; ++t) {
          const float* vt = vc_.data() + (l * p.seq_len + t) * kv_dim + (h / kv_mul) * hs;
          for (int i = 0; i < hs; ++i) xb[h * hs + i] += att[t] / sum * vt[i];
        }
      }
      matmul(xb2.data(), xb.data(), w[LinearKind::Wo]);
      for (int i = 0; i < dim; ++i) x[i] += xb2[i];
      rms(xb, x, w.rms_ffn);
      matmul(hb.data(), xb.data(), w[LinearKind::W1]);
      matmul(hb2.data(), xb.data(), w[LinearKind::W3]);
      for (int i = 0; i < hidden; ++i) hb[i] = hb[i] * (1.0f / (1.0f + std::exp(-hb[i]))) * hb2[i];
      matmul(xb.data(), hb.data(), w[LinearKind::W2]);
      for (int i = 0; i < dim; ++i) x[i] += xb[i];
    }
    rms(xb, x, m_.rms_final);
    std::vector<float> logits(p.vocab_size);
    matmul(logits.data(), xb.data(), m_.classifier);
    return logits;
  }

 private:
  const LlamaModel& m_;
  std::vector<float> kc_, vc_;
};

std::vector<int> greedy(const LlamaModel& m, const std::vector<int>& prompt, int steps, RuntimeOptions opt = {}) {
  Decoder d(m, opt);
  std::vector<int> seq = prompt;
  for (int pos = 0; pos + 1 < steps; ++pos) {
    const auto logits = d.forward(std::span<const int>(&seq[pos], 1));
    if (pos + 1 >= static_cast<int>(seq.size())) seq.push_back(argmax(logits));
  }
  return seq;
}

TEST(Decoder, PerplexityOfTheReadme) {
  const auto& f = fixture();
  const auto tokens = f.tokenizer.encode(test::read_text(test::text_path()), true, false);
  PerplexityOptions o;
  o.threads = 2;
  if (test::test_scale() < 1) {
    // Sanitizer run: a tenth of the windows, which must still look like a trained model.
    o.max_windows = 77;
    const auto r = perplexity(f.model, tokens, o);
    EXPECT_EQ(r.tokens, 77 * 512);
    EXPECT_GT(r.perplexity, 3.0);
    EXPECT_LT(r.perplexity, 7.0);
    return;
  }
  const auto r = perplexity(f.model, tokens, o);
  EXPECT_EQ(r.tokens, 393018);
  EXPECT_EQ(r.windows, 768);
  EXPECT_NEAR(r.perplexity, 5.05, 0.01);
  EXPECT_NEAR(r.mean_nll, 1.619, 0.002);
}

TEST(Decoder, IncrementalChunkedAndReferenceAgree) {
  const auto& f = fixture();
  const auto prompt = f.tokenizer.encode("Once upon a time", true, false);
  const int steps = 60;
  const auto seq = greedy(f.model, prompt, steps);
  ASSERT_EQ(seq.size(), static_cast<size_t>(steps));
  // English from a model trained on children's stories.
  const std::string text = f.tokenizer.decode(seq);
  EXPECT_NE(text.find("Once upon a time, there was"), std::string::npos) << text;
  for (char ch : text.substr(f.tokenizer.piece(Tokenizer::kBos).size()))
    EXPECT_TRUE(std::isprint(static_cast<unsigned char>(ch)) || ch == '\n') << text;

  // The whole sequence in one chunk (sgemm path, causal mask) and token by token through the
  // transcription of run.c: the same logits, so the same greedy choices.
  Decoder chunked(f.model);
  const auto all = chunked.forward(std::span<const int>(seq.data(), seq.size() - 1));
  ReferenceForward ref(f.model);
  Decoder step(f.model);
  const size_t V = 512;
  for (size_t pos = 0; pos + 1 < seq.size(); ++pos) {
    const auto r = ref(seq[pos], static_cast<int>(pos));
    const auto s = step.forward(std::span<const int>(&seq[pos], 1));
    for (size_t i = 0; i < V; ++i) {
      ASSERT_NEAR(all[pos * V + i], r[i], 2e-4f) << "position " << pos;
      ASSERT_NEAR(s[i], r[i], 2e-4f) << "position " << pos;
    }
    if (pos + 1 >= prompt.size()) {
      EXPECT_EQ(argmax(r), seq[pos + 1]) << "position " << pos;
    }
  }
}

TEST(Decoder, QuantizedKvCacheSameInChunksAndSteps) {
  // KIVI reads the oldest tokens quantized, by the query's own position: one chunk and one token at
  // a time must see the same cache. A short residual makes quantization start early.
  const auto& f = fixture();
  const auto tokens = f.tokenizer.encode(test::read_text(test::text_path()).substr(0, 2000), true, false);
  const size_t n = std::min<size_t>(tokens.size(), 200);
  for (auto kind : {KvQuantKind::Kivi, KvQuantKind::PerToken}) {
    RuntimeOptions o;
    o.kv.kind = kind;
    o.kv.bits = 2;
    o.kv.residual = 40;
    o.kv.format = Format::parse("int8");
    Decoder chunk(f.model, o), step(f.model, o), plain(f.model);
    const auto chunk_logits = chunk.forward(std::span<const int>(tokens.data(), n));
    const std::vector<float> a(chunk_logits.begin(), chunk_logits.end());
    const auto fp = plain.forward(std::span<const int>(tokens.data(), n));
    double diff_fp = 0;
    for (size_t pos = 0; pos < n; ++pos) {
      const auto s = step.forward(std::span<const int>(&tokens[pos], 1));
      for (size_t i = 0; i < 512; ++i) {
        ASSERT_NEAR(a[pos * 512 + i], s[i], 2e-3f) << "position " << pos;
        diff_fp = std::max(diff_fp, static_cast<double>(std::fabs(a[pos * 512 + i] - fp[pos * 512 + i])));
      }
    }
    EXPECT_GT(diff_fp, 1e-3) << "quantization had no effect";
  }
}

TEST(Decoder, SamplingIsDeterministicForASeed) {
  const auto& f = fixture();
  auto run = [&](uint64_t seed, float temperature, float top_p) {
    Decoder d(f.model);
    Sampler s({temperature, top_p, seed});
    std::vector<int> out = {Tokenizer::kBos};
    for (int i = 0; i < 80; ++i) out.push_back(s.sample(d.forward(std::span<const int>(&out.back(), 1))));
    return out;
  };
  EXPECT_EQ(run(7, 1.0f, 0.9f), run(7, 1.0f, 0.9f));
  EXPECT_EQ(run(7, 0.8f, 1.0f), run(7, 0.8f, 1.0f));
  EXPECT_NE(run(7, 1.0f, 0.9f), run(8, 1.0f, 0.9f));
  // Temperature 0 is greedy whatever the seed.
  EXPECT_EQ(run(1, 0.0f, 0.9f), run(2, 0.0f, 0.9f));
}

TEST(Decoder, SamplerDistribution) {
  // Logits log(0.5), log(0.3), log(0.2): frequencies follow; top-p 0.6 keeps the two most likely.
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  Sampler all({1.0f, 1.0f, 3}), nucleus({1.0f, 0.6f, 3});
  int counts[3] = {}, nucleus_counts[3] = {};
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    ++counts[all.sample(logits)];
    ++nucleus_counts[nucleus.sample(logits)];
  }
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
  EXPECT_EQ(nucleus_counts[2], 0);
  EXPECT_NEAR(nucleus_counts[0] / double(n), 0.5 / 0.8, 0.02);
  EXPECT_THROW(Sampler({-1.0f, 0.9f, 1}), std::invalid_argument);
}

TEST(Decoder, SamplerRefusesEmptyLogits) {
  Sampler s({1.0f, 0.9f, 1});
  EXPECT_THROW(s.sample({}), std::invalid_argument);
}

TEST(Decoder, PerplexityErrorInAParallelWindowIsRethrown) {
  // A token id outside the vocabulary in the third of several windows scored by two threads: the
  // decoder's exception reaches the caller (no terminate, no hang).
  const auto& f = fixture();
  std::vector<int> tokens(41, 5);
  tokens[0] = Tokenizer::kBos;
  tokens[25] = 512;
  PerplexityOptions o;
  o.window = 8;
  o.threads = 2;
  EXPECT_THROW(perplexity(f.model, tokens, o), std::out_of_range);
}

TEST(Decoder, RefusesPositionsBeyondTheContextAndBadTokens) {
  const auto& f = fixture();
  Decoder d(f.model);
  const int bad = 512;
  EXPECT_THROW(d.forward(std::span<const int>(&bad, 1)), std::out_of_range);
  std::vector<int> many(513, 5);
  EXPECT_THROW(d.forward(many), std::out_of_range);
}

}  // namespace
}  // namespace lowbit::llm
