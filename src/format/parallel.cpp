#include "lowbit/format/parallel.hpp"

#include <algorithm>
#include <thread>
#include <vector>

namespace lowbit {

void parallel_chunks(size_t n, int threads, size_t align, const std::function<void(size_t, size_t)>& body) {
  if (threads <= 1 || n < 2 * align * static_cast<size_t>(threads)) {
    body(0, n);
    return;
  }
  const size_t t = static_cast<size_t>(threads);
  size_t chunk = (n + t - 1) / t;
  chunk = (chunk + align - 1) / align * align;
  std::vector<std::thread> pool;
  for (size_t b = chunk; b < n; b += chunk) pool.emplace_back(body, b, std::min(n, b + chunk));
  body(0, std::min(n, chunk));
  for (auto& th : pool) th.join();
}

}  // namespace lowbit
