#include "lowbit/format/rounding.hpp"

#include <array>
#include <utility>

namespace lowbit {
namespace {
constexpr std::array<std::pair<Rounding, std::string_view>, 9> kNames{{
    {Rounding::NearestEven, "nearest_even"},
    {Rounding::NearestAway, "nearest_away"},
    {Rounding::NearestUp, "nearest_up"},
    {Rounding::NearestDown, "nearest_down"},
    {Rounding::NearestZero, "nearest_zero"},
    {Rounding::TowardZero, "toward_zero"},
    {Rounding::Down, "down"},
    {Rounding::Up, "up"},
    {Rounding::Stochastic, "stochastic"},
}};
}  // namespace

std::string_view to_string(Rounding r) {
  for (auto& [v, n] : kNames)
    if (v == r) return n;
  return "?";
}

std::optional<Rounding> parse_rounding(std::string_view s) {
  for (auto& [v, n] : kNames)
    if (n == s) return v;
  if (s == "rne" || s == "even") return Rounding::NearestEven;
  return std::nullopt;
}

}  // namespace lowbit
