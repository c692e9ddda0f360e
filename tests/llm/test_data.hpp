#pragma once
// Paths of the real model, tokenizer and text, a scratch directory, and the test scale.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/tokenizer.hpp"

namespace lowbit::llm::test {

inline std::string data_path(const std::string& name) { return std::string(LOWBIT_SHARED_DATA) + "/llm/" + name; }
inline std::string model_path() { return data_path("stories260K.bin"); }
inline std::string tokenizer_path() { return data_path("tok512.bin"); }
inline std::string text_path() { return data_path("tinystories_val_head.txt"); }

// LOWBIT_TEST_SCALE (default 1): CI's sanitizer run sets 0.1 to shrink heavy tests.
inline double test_scale() {
  const char* s = std::getenv("LOWBIT_TEST_SCALE");
  return s ? std::atof(s) : 1.0;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// stories260K and the whole text set encoded with its tokenizer, loaded once per test program.
struct StoriesAndText {
  LlamaModel model = load_llama2c(model_path());
  std::vector<int> tokens = Tokenizer::load_llama2c(tokenizer_path()).encode(read_text(text_path()), true, false);
};
inline const StoriesAndText& stories_and_text() {
  static const StoriesAndText loaded;
  return loaded;
}

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("lowbit_llm_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

inline std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}
inline void write_bytes(const std::string& path, const std::vector<char>& bytes, size_t count) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(count));
}

}  // namespace lowbit::llm::test
