#pragma once
// Reading and writing little-endian binary files with every size checked against the file:
// a read past the end throws std::runtime_error naming the file, the item and the offsets.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace lowbit::llm::detail {

// The whole file; throws std::runtime_error naming it when it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

class ByteReader {
 public:
  ByteReader(const std::vector<uint8_t>& bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}
  size_t offset() const { return offset_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - offset_; }
  const std::string& path() const { return path_; }
  void seek(size_t offset, const char* what);

  // Throws unless `count` items of `item_size` bytes fit in what is left of the file.
  void require(uint64_t count, uint64_t item_size, const char* what) const;

  template <class T>
  T read(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(1, sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> read_array(uint64_t count, const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(count, sizeof(T), what);
    std::vector<T> v(static_cast<size_t>(count));
    if (count) std::memcpy(v.data(), bytes_.data() + offset_, static_cast<size_t>(count) * sizeof(T));
    offset_ += static_cast<size_t>(count) * sizeof(T);
    return v;
  }
  std::string read_string(uint64_t length, const char* what);

 private:
  const std::vector<uint8_t>& bytes_;
  std::string path_;
  size_t offset_ = 0;
};

class ByteWriter {
 public:
  template <class T>
  void write(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(&v, sizeof(T));
  }
  template <class T>
  void write_array(const T* data, size_t count) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(data, count * sizeof(T));
  }
  void append(const void* data, size_t n) {
    const size_t at = bytes.size();
    bytes.resize(at + n);
    if (n) std::memcpy(bytes.data() + at, data, n);
  }
  void pad_to(size_t size) {
    if (bytes.size() < size) bytes.resize(size, 0);
  }
  std::vector<uint8_t> bytes;
};

}  // namespace lowbit::llm::detail
