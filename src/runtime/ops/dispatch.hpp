#pragma once
// Shared by the operator files: element-type dispatch over a list of C++ types, and the size below
// which a kernel stays on one thread.
#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/graph/tensor.hpp"

namespace lowbit::ops {

// Tensors smaller than this run on one thread.
constexpr int64_t kParallelMin = int64_t{1} << 16;

template <class T> struct Tag { using type = T; };
template <class... Ts> struct Types {};

using FloatTypes = Types<float, double>;
using NumericTypes = Types<float, double, int8_t, uint8_t, int16_t, uint16_t, int32_t, int64_t>;

// Calls f(Tag<T>{}) for the T of the list whose DType is t; throws when the list lacks t.
template <class... Ts, class F>
void dispatch(Types<Ts...>, DType t, F&& f) {
  bool found = ((dtype_of<Ts>() == t && (f(Tag<Ts>{}), true)) || ...);
  if (!found) throw std::runtime_error(fmt::format("element type {} is not supported", to_string(t)));
}

}  // namespace lowbit::ops
