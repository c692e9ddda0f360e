#pragma once
#include <cstdio>
#include <string>

namespace lowbit::test {
inline std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace lowbit::test
