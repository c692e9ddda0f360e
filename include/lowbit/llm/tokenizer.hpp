#pragma once
// The llama2.c tokenizer (sentencepiece BPE exported as pieces and scores): encode merges the
// adjacent pair whose merged piece has the highest score (leftmost on ties) until none merges,
// after splitting the text into UTF-8 code points with byte fallback (<0xXX> pieces) and a dummy
// prefix space, exactly as llama2.c's run.c encode() does.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit::llm {

class Tokenizer {
 public:
  static constexpr int kUnk = 0, kBos = 1, kEos = 2;

  // llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
  // bytes, up to the end of the file. Throws std::runtime_error naming the file when it is truncated.
  static Tokenizer load_llama2c(const std::string& path);
  // From pieces in llama2.c's spelling (spaces, not U+2581; BOS/EOS pieces as llama2.c writes them).
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, std::string source);

  void save_llama2c(const std::string& path) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }
  float score(int id) const { return scores_.at(static_cast<size_t>(id)); }
  const std::string& source() const { return source_; }

  // Throws std::runtime_error naming both files unless the vocabularies have the same size.
  void require_vocab(int model_vocab, const std::string& model_source) const;

  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;
  // The text of `token` following `prev` (llama2.c decode(): a leading space after BOS is dropped,
  // byte pieces become their byte).
  std::string decode(int prev, int token) const;
  std::string decode(std::span<const int> tokens) const;

 private:
  int lookup(std::string_view s) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
  int byte_ids_[256];
  int max_piece_length_ = 0;
  std::string source_;
};

}  // namespace lowbit::llm
