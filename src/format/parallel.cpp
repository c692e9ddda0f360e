#include "lowbit/format/parallel.hpp"

#include <algorithm>
#include <exception>

#include <omp.h>

namespace lowbit {

// OpenMP, the thread pool oneDNN uses too: one set of workers for the whole program, so that idle
// workers of one pool do not spin against the other's on a small machine.
void parallel_chunks(size_t n, int threads, size_t align, const std::function<void(size_t, size_t)>& body) {
  if (threads <= 1 || n < 2 * align * static_cast<size_t>(threads)) {
    body(0, n);
    return;
  }
  const size_t t = static_cast<size_t>(threads);
  size_t chunk = (n + t - 1) / t;
  chunk = (chunk + align - 1) / align * align;
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    const size_t b = static_cast<size_t>(omp_get_thread_num()) * chunk;
    if (b < n) {
      try {
        body(b, std::min(n, b + chunk));
      } catch (...) {
#pragma omp critical
        error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace lowbit
