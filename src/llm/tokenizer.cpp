#include "lowbit/llm/tokenizer.hpp"

#include <algorithm>
#include <cstdio>
#include <queue>
#include <stdexcept>

#include <fmt/format.h>

#include "src/llm/binary_file.hpp"

namespace lowbit::llm {

Tokenizer Tokenizer::load_llama2c(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  detail::ByteReader r(bytes, path);
  const int32_t max_len = r.read<int32_t>("max_token_length");
  if (max_len < 1 || max_len > (1 << 16))
    throw std::runtime_error(fmt::format("{}: max_token_length {} is out of range", path, max_len));
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (r.remaining() > 0) {
    const std::string what = fmt::format("token {}", pieces.size());
    scores.push_back(r.read<float>(what.c_str()));
    const int32_t len = r.read<int32_t>(what.c_str());
    if (len < 0 || len > max_len)
      throw std::runtime_error(fmt::format("{}: token {} has length {} (max_token_length {})", path, pieces.size(), len, max_len));
    pieces.push_back(r.read_string(static_cast<uint64_t>(len), what.c_str()));
  }
  return Tokenizer(std::move(pieces), std::move(scores), path);
}

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, std::string source)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), source_(std::move(source)) {
  if (pieces_.size() != scores_.size())
    throw std::runtime_error(fmt::format("{}: {} pieces but {} scores", source_, pieces_.size(), scores_.size()));
  if (pieces_.size() < 3) throw std::runtime_error(fmt::format("{}: {} tokens; needs at least <unk>, BOS and EOS", source_, pieces_.size()));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    ids_.emplace(pieces_[i], static_cast<int>(i));  // the first of duplicate pieces wins
    max_piece_length_ = std::max(max_piece_length_, static_cast<int>(pieces_[i].size()));
  }
  for (int b = 0; b < 256; ++b) byte_ids_[b] = lookup(fmt::format("<0x{:02X}>", b));
}

void Tokenizer::save_llama2c(const std::string& path) const {
  detail::ByteWriter out;
  out.write(static_cast<int32_t>(std::max(1, max_piece_length_)));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    out.write(scores_[i]);
    out.write(static_cast<int32_t>(pieces_[i].size()));
    out.write_array(pieces_[i].data(), pieces_[i].size());
  }
  detail::write_file_bytes(path, out.bytes);
}

void Tokenizer::require_vocab(int model_vocab, const std::string& model_source) const {
  if (model_vocab != vocab_size())
    throw std::runtime_error(fmt::format("vocabulary mismatch: {} has {} tokens, the model {} has {}", source_, vocab_size(), model_source,
                                         model_vocab));
}

int Tokenizer::lookup(std::string_view s) const {
  auto it = ids_.find(std::string(s));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> tokens;
  if (bos) tokens.push_back(kBos);
  // Symbols to merge: code points (or their bytes), each a node of a doubly linked list.
  std::vector<int> sym;
  sym.reserve(text.size() + 1);
  if (!text.empty()) {
    const int space = lookup(" ");
    if (space < 0) throw std::runtime_error(fmt::format("{}: no ' ' piece for the dummy prefix", source_));
    sym.push_back(space);
  }
  for (size_t i = 0; i < text.size();) {
    // A code point: a lead byte and up to three continuation bytes (as run.c: at most 4 bytes).
    size_t n = 1;
    while (i + n < text.size() && n < 4 && (static_cast<uint8_t>(text[i + n]) & 0xC0) == 0x80) ++n;
    const int id = lookup(text.substr(i, n));
    if (id >= 0) {
      sym.push_back(id);
    } else {
      for (size_t k = 0; k < n; ++k) {
        const int b = byte_ids_[static_cast<uint8_t>(text[i + k])];
        if (b < 0) throw std::runtime_error(fmt::format("{}: no byte-fallback piece <0x{:02X}>", source_, static_cast<uint8_t>(text[i + k])));
        sym.push_back(b);
      }
    }
    i += n;
  }
  // Best-first merging with a heap; entries go stale when a neighbour changes and are skipped.
  const int n = static_cast<int>(sym.size());
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    float score;
    int left, right, left_id, right_id, merged;
  };
  auto worse = [](const Candidate& a, const Candidate& b) { return a.score != b.score ? a.score < b.score : a.left > b.left; };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  std::string buf;
  auto consider = [&](int left) {
    if (left < 0) return;
    const int right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    const int a = sym[static_cast<size_t>(left)], b = sym[static_cast<size_t>(right)];
    buf = pieces_[static_cast<size_t>(a)];
    buf += pieces_[static_cast<size_t>(b)];
    const int merged = lookup(buf);
    if (merged >= 0) heap.push({scores_[static_cast<size_t>(merged)], left, right, a, b, merged});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const auto L = static_cast<size_t>(c.left);
    if (sym[L] != c.left_id || next[L] != c.right || sym[static_cast<size_t>(c.right)] != c.right_id) continue;  // stale
    sym[L] = c.merged;
    sym[static_cast<size_t>(c.right)] = -1;
    const int after = next[static_cast<size_t>(c.right)];
    next[L] = after;
    if (after >= 0) prev[static_cast<size_t>(after)] = c.left;
    consider(prev[L]);
    consider(c.left);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[static_cast<size_t>(i)]) tokens.push_back(sym[static_cast<size_t>(i)]);
  if (eos) tokens.push_back(kEos);
  return tokens;
}

std::string Tokenizer::decode(int prev, int token) const {
  if (token < 0 || token >= vocab_size())
    throw std::out_of_range(fmt::format("{}: token id {} outside the vocabulary of {}", source_, token, vocab_size()));
  std::string_view piece = pieces_[static_cast<size_t>(token)];
  if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  unsigned value = 0;
  if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>' &&
      std::sscanf(std::string(piece.substr(3, 2)).c_str(), "%2X", &value) == 1)
    return std::string(1, static_cast<char>(value));
  return std::string(piece);
}

std::string Tokenizer::decode(std::span<const int> tokens) const {
  std::string out;
  int prev = -1;
  for (int t : tokens) {
    out += decode(prev, t);
    prev = t;
  }
  return out;
}

}  // namespace lowbit::llm
