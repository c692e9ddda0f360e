#pragma once
// Weights for the kernel tests: real matrices of the stories260K checkpoint (../shared/data/llm) and
// seeded random ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit::kernels::test {

// LOWBIT_TEST_SCALE (CI under sanitizers sets 0.1) shrinks the number of random cases.
inline double test_scale() {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  return s ? std::max(0.01, std::atof(s)) : 1.0;
}
inline int scaled(int n) { return std::max(1, static_cast<int>(std::lround(n * test_scale()))); }

struct Matrix {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
};

// Layer-0 matrices of stories260K: wq (64 x 64), w1 (172 x 64), w2 (64 x 172), and the token
// embedding (512 x 64) whose rows serve as activations.
struct Stories260K {
  Matrix embedding, wq, w1, w2;
};

inline Stories260K load_stories260k() {
  const std::string path = std::string(LOWBIT_SHARED_DATA) + "/llm/stories260K.bin";
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  int32_t header[7];
  f.read(reinterpret_cast<char*>(header), sizeof(header));
  const int64_t dim = header[0], hidden = header[1], layers = header[2], heads = header[3], kv_heads = header[4],
                vocab = std::abs(header[5]);
  const int64_t kv_dim = dim / heads * kv_heads;
  auto read = [&](const std::string& name, int64_t rows, int64_t cols, int64_t skip_after) {
    Matrix m{name, rows, cols, std::vector<float>(static_cast<size_t>(rows * cols))};
    f.read(reinterpret_cast<char*>(m.values.data()), static_cast<std::streamsize>(sizeof(float) * m.values.size()));
    f.seekg(static_cast<std::streamoff>(sizeof(float) * skip_after), std::ios::cur);
    if (!f) throw std::runtime_error(path + " is shorter than its header says");
    return m;
  };
  Stories260K s;
  s.embedding = read("embedding", vocab, dim, layers * dim);                 // then rms_att
  s.wq = read("wq", dim, dim, (layers - 1) * dim * dim + 2 * layers * kv_dim * dim + layers * dim * dim + layers * dim);
  s.w1 = read("w1", hidden, dim, (layers - 1) * hidden * dim);               // wk, wv, wo, rms_ffn skipped above
  s.w2 = read("w2", dim, hidden, 0);
  return s;
}

// Gaussian weights with a few large outliers, as real layers have.
inline std::vector<float> random_weights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = normal(rng) * (pick(rng) == 0 ? 20.0f : 1.0f);
  return w;
}

inline std::vector<float> random_activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

}  // namespace lowbit::kernels::test
