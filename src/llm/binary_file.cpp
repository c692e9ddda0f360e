#include "src/llm/binary_file.hpp"

#include <cerrno>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::llm::detail {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading", path));
  const std::streamoff size = in.tellg();
  if (size < 0) throw std::runtime_error(fmt::format("{}: cannot determine the file size", path));
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw std::runtime_error(fmt::format("{}: read error", path));
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(fmt::format("{}: cannot open for writing", path));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(fmt::format("{}: write error", path));
}

void ByteReader::seek(size_t offset, const char* what) {
  if (offset > bytes_.size())
    throw std::runtime_error(fmt::format("{}: {} at offset {} lies beyond the end of the file ({} bytes)", path_, what, offset,
                                         bytes_.size()));
  offset_ = offset;
}

void ByteReader::require(uint64_t count, uint64_t item_size, const char* what) const {
  const uint64_t left = remaining();
  if (item_size != 0 && count > left / item_size)
    throw std::runtime_error(fmt::format("{}: truncated or inconsistent: {} needs {} x {} bytes at offset {}, but only {} of {} bytes remain",
                                         path_, what, count, item_size, offset_, left, bytes_.size()));
}

std::string ByteReader::read_string(uint64_t length, const char* what) {
  require(length, 1, what);
  std::string s(reinterpret_cast<const char*>(bytes_.data() + offset_), static_cast<size_t>(length));
  offset_ += static_cast<size_t>(length);
  return s;
}

}  // namespace lowbit::llm::detail
