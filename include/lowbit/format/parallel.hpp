#pragma once
#include <cstddef>
#include <functional>

namespace lowbit {

// Runs body(begin, end) over [0, n) split into `threads` contiguous chunks whose boundaries are
// multiples of `align`. threads <= 1 runs inline.
void parallel_chunks(size_t n, int threads, size_t align, const std::function<void(size_t, size_t)>& body);

}  // namespace lowbit
