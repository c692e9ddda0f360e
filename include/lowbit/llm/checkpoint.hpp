#pragma once
// llama2.c checkpoints: the legacy format (version 0: 7 int32 header, a negative vocab size for an
// unshared classifier) and export.py's versions 1 (float32) and 2 (Q8_0 groups), which start with
// the magic "ak42", a version int and a header padded to 256 bytes. Every size is checked against
// the file length before anything is read.
#include <string>

#include "lowbit/llm/model.hpp"

namespace lowbit::llm {

inline constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42"

// Throws std::runtime_error naming the file on a truncated or inconsistent file.
LlamaModel load_llama2c(const std::string& path);

// Writes `m` as llama2.c's export.py would (version 0, 1 or 2; version 2 quantizes every Linear,
// the embedding and an unshared classifier to int8 in groups of q8_group, backing off by halves
// until it divides dim, as export.py does).
void save_llama2c(const LlamaModel& m, const std::string& path, int version, int q8_group = 64);

}  // namespace lowbit::llm
