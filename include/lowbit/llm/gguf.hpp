#pragma once
// GGUF (version 3; 2 is read too) for llama-architecture models with tensors in f32, f16 or q8_0:
// header, metadata key-value pairs of every type, tensor infos, aligned tensor data
// (general.alignment, default 32). The llama.* keys give the hyper-parameters; a tokenizer in
// tokenizer.ggml.* (sentencepiece-style "llama" model) is read when present.
//
// Rotary layout: GGUF holds wq / wk in the original (Meta) row order that llama.cpp's LLAMA rope
// (GGML_ROPE_TYPE_NORM: adjacent pairs rotate together) expects. llama.cpp's convert_hf_to_gguf.py
// applies `permute` only to undo the row permutation Hugging Face checkpoints carry for their
// rotate_half rope. llama2.c rotates adjacent pairs too, so its wq / wk go into GGUF unchanged and
// come back unchanged; the writer and the reader here do no permutation, consistently.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "lowbit/llm/model.hpp"
#include "lowbit/llm/tokenizer.hpp"

namespace lowbit::llm {

enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8 };

// ggml's block_q8_0: 32 int8 values sharing one fp16 scale d; value = q * d.
struct BlockQ8_0 {
  uint16_t d;  // IEEE binary16 bits
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 is 34 bytes in ggml");

// IEEE binary16 <-> float32, round to nearest even (as GGML_FP32_TO_FP16).
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);

// ggml's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1 / d)), d stored as fp16.
// n must be a multiple of 32.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);

struct GgufModel {
  LlamaModel model;
  std::optional<Tokenizer> tokenizer;
};

// Throws std::runtime_error naming the file for a truncated or inconsistent file, an architecture
// other than llama, a missing tensor or key, or a tensor type other than f32, f16, q8_0.
GgufModel load_gguf(const std::string& path);

// Matrices (the seven Linear kinds, the embedding and an unshared classifier) in `type`; norms in
// f32. q8_0 needs rows of a multiple of 32 values: other matrices fall back to f16.
void save_gguf(const LlamaModel& m, const Tokenizer* tokenizer, const std::string& path, GgmlType type);

// A llama2.c checkpoint or a GGUF file, told apart by the magic.
GgufModel load_model(const std::string& path);

}  // namespace lowbit::llm
