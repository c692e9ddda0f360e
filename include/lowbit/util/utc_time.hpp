#pragma once
// Now, UTC, ISO 8601 to the second ("2026-11-23T05:00:00Z"): the time stamps of stores and reports.
#include <chrono>
#include <ctime>
#include <string>

namespace lowbit {

inline std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace lowbit
