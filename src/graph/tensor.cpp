#include "lowbit/graph/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::I16: return 2;
    case DType::U16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}

std::string_view to_string(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::I16: return "int16";
    case DType::U16: return "uint16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

int64_t shape_size(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument(fmt::format("negative dimension in shape {}", shape_string(shape)));
  for (int64_t d : shape) {
    if (d == 0) return 0;
    if (__builtin_mul_overflow(n, d, &n))
      throw std::invalid_argument(fmt::format("shape {} has more elements than fit in 64 bits", shape_string(shape)));
  }
  return n;
}

std::string shape_string(std::span<const int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

namespace {

// Freed blocks by size, up to a total; the oldest go back to the system first.
class BlockCache {
 public:
  std::byte* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
      if (it->second == bytes) {
        std::byte* p = it->first;
        total_ -= bytes;
        blocks_.erase(it);
        return p;
      }
    return nullptr;
  }
  void give(std::byte* p, size_t bytes) {
    if (bytes < kMinCached) {
      std::free(p);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    blocks_.emplace_back(p, bytes);
    total_ += bytes;
    while (total_ > kMaxTotal) {
      std::free(blocks_.front().first);
      total_ -= blocks_.front().second;
      blocks_.pop_front();
    }
  }

 private:
  static constexpr size_t kMinCached = size_t{1} << 16;
  static constexpr size_t kMaxTotal = size_t{2} << 30;
  std::mutex mu_;
  std::deque<std::pair<std::byte*, size_t>> blocks_;
  size_t total_ = 0;
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();  // never destroyed: static Tensors may outlive it otherwise
  return *cache;
}

}  // namespace

void Tensor::Free::operator()(std::byte* p) const { block_cache().give(p, bytes); }

Tensor::Tensor(DType t, Shape shape) : Tensor(t, std::move(shape), true) {}

Tensor Tensor::uninitialized(DType t, Shape shape) { return Tensor(t, std::move(shape), false); }

Tensor::Tensor(DType t, Shape shape, bool zero) : dtype_(t), shape_(std::move(shape)), size_(shape_size(shape_)) {
  size_t alloc = (bytes() + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  std::byte* p = block_cache().take(alloc);
  if (!p) p = static_cast<std::byte*>(std::aligned_alloc(64, alloc));
  if (!p) throw std::bad_alloc();
  data_ = std::unique_ptr<std::byte[], Free>(p, Free{alloc});
  if (zero) std::memset(p, 0, alloc);
}

Tensor::Tensor(const Tensor& o) : Tensor(o.dtype_, o.shape_, false) {
  if (o.data_) std::memcpy(data_.get(), o.data_.get(), bytes());
  channels_last_ = o.channels_last_;
}

Tensor& Tensor::operator=(const Tensor& o) {
  if (this != &o) *this = Tensor(o);
  return *this;
}

void Tensor::reshape(Shape shape) {
  if (channels_last_) throw std::logic_error("reshape of a channels-last tensor");
  if (shape_size(shape) != size_)
    throw std::invalid_argument(fmt::format("cannot reshape {} to {}", shape_string(shape_), shape_string(shape)));
  shape_ = std::move(shape);
}

void Tensor::check_type(DType t) const {
  if (t != dtype_)
    throw std::logic_error(fmt::format("tensor holds {}, accessed as {}", to_string(dtype_), to_string(t)));
}

void Tensor::check_count(size_t n) const {
  if (n != static_cast<size_t>(size_))
    throw std::invalid_argument(fmt::format("{} values for shape {}", n, shape_string(shape_)));
}

template <class F>
static auto visit_element(const Tensor& t, int64_t i, F f) {
  switch (t.dtype()) {
    case DType::F32: return f(t.data<float>()[i]);
    case DType::F64: return f(t.data<double>()[i]);
    case DType::I8: return f(t.data<int8_t>()[i]);
    case DType::U8: return f(t.data<uint8_t>()[i]);
    case DType::I16: return f(t.data<int16_t>()[i]);
    case DType::U16: return f(t.data<uint16_t>()[i]);
    case DType::I32: return f(t.data<int32_t>()[i]);
    case DType::I64: return f(t.data<int64_t>()[i]);
    case DType::Bool: return f(t.data<bool>()[i]);
  }
  return f(0);
}

int64_t Tensor::int_at(int64_t i) const {
  return visit_element(*this, i, [](auto v) { return static_cast<int64_t>(v); });
}
double Tensor::float_at(int64_t i) const {
  return visit_element(*this, i, [](auto v) { return static_cast<double>(v); });
}
std::vector<int64_t> Tensor::to_ints() const {
  std::vector<int64_t> v(static_cast<size_t>(size_));
  for (int64_t i = 0; i < size_; ++i) v[static_cast<size_t>(i)] = int_at(i);
  return v;
}

}  // namespace lowbit
