// `lowbit llm` with packed storage: bench lists fp32 and every requested storage format, ppl and
// generate accept --storage, and an unknown format is refused with its name.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

struct Output {
  int status = -1;
  std::string text;  // stdout and stderr
};

Output run(const std::string& args) {
  Output out;
  FILE* pipe = ::popen((std::string(LOWBIT_LLM_BIN) + " " + args + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.text.append(buffer, n);
  out.status = ::pclose(pipe);
  return out;
}

TEST(LlmCli, BenchListsEveryStorageFormat) {
  const Output o = run("llm bench " + test::model_path() + " --storage int4g32,int2lut,nvfp4 --steps 8 --repeats 1");
  ASSERT_EQ(o.status, 0) << o.text;
  for (const char* row : {"| fp32 (runtime loops) |", "| int4g32 (kernels) |", "| int2lut (kernels) |", "| nvfp4 (kernels) |", "load average"})
    EXPECT_NE(o.text.find(row), std::string::npos) << row << "\n" << o.text;
  EXPECT_EQ(o.text.find("int8 (kernels)"), std::string::npos) << o.text;
}

TEST(LlmCli, PplAndGenerateTakeStorage) {
  const std::string data = " --tokenizer " + test::tokenizer_path();
  const Output ppl = run("llm ppl " + test::model_path() + data + " --text " + test::text_path() + " --max-windows 1 --threads 1 --storage int8");
  ASSERT_EQ(ppl.status, 0) << ppl.text;
  EXPECT_NE(ppl.text.find("config storage=int8"), std::string::npos) << ppl.text;
  const Output gen = run("llm generate " + test::model_path() + data + " --prompt Once --steps 16 --temperature 0 --storage int4g128");
  ASSERT_EQ(gen.status, 0) << gen.text;
  EXPECT_NE(gen.text.find("tokens/s"), std::string::npos) << gen.text;
  const Output bad = run("llm bench " + test::model_path() + " --storage int5 --steps 4 --repeats 1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.text.find("int5"), std::string::npos) << bad.text;
}

TEST(LlmCli, SweepWritesEachConfigurationOnceIntoTheStore) {
  const std::string store = ::testing::TempDir() + "lowbit_llm_sweep_" + std::to_string(::getpid()) + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((store + suffix).c_str());
  const std::string configs = ::testing::TempDir() + "lowbit_llm_sweep_" + std::to_string(::getpid()) + ".txt";
  std::FILE* f = std::fopen(configs.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("fp32 | \nW8 | w=int8\n", f);
  std::fclose(f);
  const std::string args = "llm sweep " + test::model_path() + " --tokenizer " + test::tokenizer_path() + " --text " + test::text_path() +
                           " --max-windows 1 --threads 1 --configs " + configs + " --store " + store;
  const Output first = run(args);
  ASSERT_EQ(first.status, 0) << first.text;
  EXPECT_NE(first.text.find("2 configurations stored, 0 reused"), std::string::npos) << first.text;
  const Output second = run(args);
  ASSERT_EQ(second.status, 0) << second.text;
  EXPECT_NE(second.text.find("0 configurations stored, 2 reused"), std::string::npos) << second.text;
  // The reused rows print the same perplexities as the evaluated ones.
  auto w8_row = [](const std::string& text) {
    const size_t at = text.find("| W8 |");
    if (at == std::string::npos) return std::string();
    const std::string row = text.substr(at, text.find('\n', at) - at);
    return row.substr(0, row.rfind('|', row.rfind('|') - 1));  // without the seconds column
  };
  EXPECT_FALSE(w8_row(first.text).empty()) << first.text;
  EXPECT_EQ(w8_row(first.text), w8_row(second.text));
}

}  // namespace
}  // namespace lowbit::llm
