#include "lowbit/util/progress.hpp"

#include <cstdio>
#include <unistd.h>

#include <fmt/format.h>

namespace lowbit {

Progress::Progress(std::string label, size_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(total > 0 && isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::advance(size_t n) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (enabled_ && (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_)) {
    last_draw_ = now;
    draw();
  }
}

void Progress::draw() {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1;
  int width = 30, filled = static_cast<int>(frac * width);
  double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : 0;
  fmt::print(stderr, "\r{} [{}{}] {}/{} {} {:.1f}/s ETA {:d}:{:02d} ", label_, std::string(static_cast<size_t>(filled), '#'),
             std::string(static_cast<size_t>(width - filled), '.'), done_, total_, unit_, rate, static_cast<int>(eta) / 60,
             static_cast<int>(eta) % 60);
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_ && !finished_) fmt::print(stderr, "\r\033[K");
  finished_ = true;
}

}  // namespace lowbit
