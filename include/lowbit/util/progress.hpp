#pragma once
// A one-line progress bar with rate and ETA on stderr, drawn only when stderr is a terminal.
#include <chrono>
#include <cstddef>
#include <string>

namespace lowbit {

class Progress {
 public:
  Progress(std::string label, size_t total, std::string unit = "images");
  ~Progress();
  void advance(size_t n);  // redraws at most ~10 times a second
  void finish();           // clears the line

 private:
  void draw();
  std::string label_, unit_;
  size_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lowbit
