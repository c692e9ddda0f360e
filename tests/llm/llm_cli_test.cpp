// `lowbit llm` with packed storage: bench lists fp32 and every requested storage format, ppl and
// generate accept --storage, and an unknown format is refused with its name.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace lowbit::llm
