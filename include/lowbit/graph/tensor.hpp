#pragma once
// A dense tensor: element type, shape and a 64-byte aligned buffer. Copying copies the data.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

enum class DType : uint8_t { F32, F64, I8, U8, I16, U16, I32, I64, Bool };

size_t dtype_size(DType t);
std::string_view to_string(DType t);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<int16_t>() { return DType::I16; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::U16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

using Shape = std::vector<int64_t>;
int64_t shape_size(std::span<const int64_t> shape);
std::string shape_string(std::span<const int64_t> shape);

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType t, Shape shape);  // zero-filled
  // For kernels that write every element: no zero fill.
  static Tensor uninitialized(DType t, Shape shape);
  template <class T>
  static Tensor from(Shape shape, std::span<const T> values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    t.check_count(values.size());
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }
  template <class T>
  static Tensor scalar(T v) {
    Tensor t(dtype_of<T>(), {});
    *t.data<T>() = v;
    return t;
  }

  Tensor(const Tensor& o);
  Tensor& operator=(const Tensor& o);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i < 0 ? i + rank() : i)]; }
  int64_t size() const { return size_; }
  size_t bytes() const { return static_cast<size_t>(size_) * dtype_size(dtype_); }
  bool empty_value() const { return !data_ && size_ == 0 && shape_.empty(); }

  // Same data, new shape of the same size (plain layout only).
  void reshape(Shape shape);

  // Layout: plain row-major over shape(), or channels-last (a logical [N, C, spatial...] tensor
  // stored as [N, spatial..., C]), which the executor's convolutions use. Only the executor and
  // kernels that declare they accept it ever see a channels-last tensor.
  bool channels_last() const { return channels_last_; }
  void set_channels_last(bool v) { channels_last_ = v; }

  template <class T> T* data() { check_type(dtype_of<T>()); return reinterpret_cast<T*>(data_.get()); }
  template <class T> const T* data() const { check_type(dtype_of<T>()); return reinterpret_cast<const T*>(data_.get()); }
  template <class T> std::span<T> span() { return {data<T>(), static_cast<size_t>(size_)}; }
  template <class T> std::span<const T> span() const { return {data<T>(), static_cast<size_t>(size_)}; }
  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }

  // Integer / bool / float element i as int64 or double, whatever the type (for shape-like inputs).
  int64_t int_at(int64_t i) const;
  double float_at(int64_t i) const;
  std::vector<int64_t> to_ints() const;

 private:
  // Buffers go back to a process-wide cache of recently freed blocks (the same sizes come back on
  // every batch), which spares the page faults of fresh large allocations.
  struct Free {
    size_t bytes;
    void operator()(std::byte* p) const;
  };
  Tensor(DType t, Shape shape, bool zero);
  void check_type(DType t) const;
  void check_count(size_t n) const;
  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t size_ = 0;
  bool channels_last_ = false;
  std::unique_ptr<std::byte[], Free> data_;
};

}  // namespace lowbit
