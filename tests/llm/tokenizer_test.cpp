// The llama2.c tokenizer: real vocabulary, encode against a direct transcription of llama2.c's
// quadratic merge loop, decode round trips, byte fallback, and clear errors for bad files.
#include <gtest/gtest.h>

#include <map>

#include "lowbit/llm/checkpoint.hpp"
#include "lowbit/llm/tokenizer.hpp"
#include "tests/llm/test_data.hpp"

namespace lowbit::llm {
namespace {

// llama2.c's encode(), step by step: code points (or their bytes), then repeatedly merge the
// leftmost best-scoring adjacent pair. Quadratic; for short texts only.
std::vector<int> reference_encode(const Tokenizer& t, const std::string& text) {
  std::map<std::string, int> ids;
  for (int i = 0; i < t.vocab_size(); ++i) ids.emplace(t.piece(i), i);
  auto lookup = [&](const std::string& s) {
    auto it = ids.find(s);
    return it == ids.end() ? -1 : it->second;
  };
  std::vector<int> tokens = {Tokenizer::kBos};
  if (!text.empty()) tokens.push_back(lookup(" "));
  std::string buf;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) buf.clear();
    buf += text[i];
    if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 && buf.size() < 4) continue;
    const int id = lookup(buf);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char c : buf) tokens.push_back(c + 3);
    }
    buf.clear();
  }
  while (true) {
    float best = -1e10f;
    int best_id = -1;
    size_t best_at = 0;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int id = lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id >= 0 && t.score(id) > best) {
        best = t.score(id);
        best_id = id;
        best_at = i;
      }
    }
    if (best_id < 0) break;
    tokens[best_at] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  return tokens;
}

TEST(Tokenizer, LoadsTok512) {
  const Tokenizer t = Tokenizer::load_llama2c(test::tokenizer_path());
  EXPECT_EQ(t.vocab_size(), 512);
  EXPECT_EQ(t.piece(0), "<unk>");
  EXPECT_EQ(t.piece(Tokenizer::kBos), "\n<s>\n");
  EXPECT_EQ(t.piece(3), "<0x00>");
  t.require_vocab(512, "model");
  EXPECT_THROW(t.require_vocab(32000, "model"), std::runtime_error);
}

TEST(Tokenizer, EncodeMatchesLlama2cMergeLoopOnRealText) {
  const Tokenizer t = Tokenizer::load_llama2c(test::tokenizer_path());
  const std::string text = test::read_text(test::text_path());
  const size_t pieces = test::test_scale() < 1 ? 3 : 12;
  for (size_t k = 0; k < pieces; ++k) {
    const std::string part = text.substr(k * 997, 700);
    EXPECT_EQ(t.encode(part, true, false), reference_encode(t, part)) << part;
  }
  // Odd inputs: non-ASCII (byte fallback), lone continuation bytes, empty.
  for (const std::string& s : {std::string("Zoë's café — naïve 😀!"), std::string("\x80\x80 a\xC3"), std::string(" "), std::string("")})
    EXPECT_EQ(t.encode(s, true, false), reference_encode(t, s)) << s;
}

TEST(Tokenizer, DecodeInvertsEncode) {
  const Tokenizer t = Tokenizer::load_llama2c(test::tokenizer_path());
  for (const std::string& s : {std::string("Once upon a time, there was a little girl named Lily."), std::string("Zoë's café 😀\nThe end.")}) {
    std::vector<int> tokens = t.encode(s, true, true);
    EXPECT_EQ(tokens.front(), Tokenizer::kBos);
    EXPECT_EQ(tokens.back(), Tokenizer::kEos);
    tokens.pop_back();
    // The dummy prefix space is dropped after BOS, byte pieces become bytes.
    EXPECT_EQ(t.decode(tokens).substr(t.piece(Tokenizer::kBos).size()), s);
  }
  // Merging makes common words single tokens.
  const auto once = t.encode("Once upon a time", false, false);
  EXPECT_LE(once.size(), 6u);
}

TEST(Tokenizer, WholeTextTokenCountOfTheReadmeProtocol) {
  const Tokenizer t = Tokenizer::load_llama2c(test::tokenizer_path());
  // 393,018 scored tokens + the BOS (../shared/data/README.md).
  EXPECT_EQ(t.encode(test::read_text(test::text_path()), true, false).size(), 393019u);
}

TEST(Tokenizer, TruncatedFileAndVocabMismatchGiveClearErrors) {
  test::TempDir dir;
  const auto bytes = test::read_bytes(test::tokenizer_path());
  for (size_t keep : {size_t{0}, size_t{2}, size_t{6}, size_t{13}, bytes.size() - 1}) {
    const std::string p = dir.file("tok_cut.bin");
    test::write_bytes(p, bytes, keep);
    try {
      (void)Tokenizer::load_llama2c(p);
      FAIL() << keep << " bytes accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  // Cut at a token boundary: a valid file with fewer tokens than the model's vocabulary.
  const Tokenizer full = Tokenizer::load_llama2c(test::tokenizer_path());
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < 500; ++i) {
    pieces.push_back(full.piece(i));
    scores.push_back(full.score(i));
  }
  Tokenizer(pieces, scores, "short").save_llama2c(dir.file("tok500.bin"));
  const Tokenizer small = Tokenizer::load_llama2c(dir.file("tok500.bin"));
  EXPECT_EQ(small.vocab_size(), 500);
  const LlamaModel m = load_llama2c(test::model_path());
  try {
    small.require_vocab(m.config.vocab_size, test::model_path());
    FAIL() << "vocabulary mismatch accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.file("tok500.bin")), std::string::npos) << msg;
    EXPECT_NE(msg.find(test::model_path()), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace lowbit::llm
