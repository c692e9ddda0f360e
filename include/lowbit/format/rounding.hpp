#pragma once
// One rounding vocabulary for every format. The ap_fixed quantization modes map onto it once:
//   NearestEven = AP_RND_CONV = QONNX ROUND     NearestUp   = AP_RND (half toward +inf)
//   NearestAway = AP_RND_INF                    NearestDown = AP_RND_MIN_INF (half toward -inf)
//   NearestZero = AP_RND_ZERO (half toward 0)   TowardZero  = AP_TRN_ZERO
//   Down        = AP_TRN (floor)                Up          = ceil
//   Stochastic: rounds away from the lower neighbour with probability equal to the distance to it,
//               driven by a counter-based hash of (seed, element index) so every kernel agrees.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

enum class Rounding : uint8_t {
  NearestEven,
  NearestAway,
  NearestUp,
  NearestDown,
  NearestZero,
  TowardZero,
  Down,
  Up,
  Stochastic,
};

std::string_view to_string(Rounding r);
std::optional<Rounding> parse_rounding(std::string_view s);

// Rounding of a magnitude |x|: the sign-dependent modes become one of these once the sign is known.
enum class MagnitudeRounding : uint8_t { NearestEven, NearestUp, NearestDown, Down, Up, Stochastic };

constexpr MagnitudeRounding magnitude_rounding(Rounding r, bool negative) {
  switch (r) {
    case Rounding::NearestEven: return MagnitudeRounding::NearestEven;
    case Rounding::NearestAway: return MagnitudeRounding::NearestUp;
    case Rounding::NearestZero: return MagnitudeRounding::NearestDown;
    case Rounding::NearestUp: return negative ? MagnitudeRounding::NearestDown : MagnitudeRounding::NearestUp;
    case Rounding::NearestDown: return negative ? MagnitudeRounding::NearestUp : MagnitudeRounding::NearestDown;
    case Rounding::TowardZero: return MagnitudeRounding::Down;
    case Rounding::Down: return negative ? MagnitudeRounding::Up : MagnitudeRounding::Down;
    case Rounding::Up: return negative ? MagnitudeRounding::Down : MagnitudeRounding::Up;
    case Rounding::Stochastic: return MagnitudeRounding::Stochastic;
  }
  return MagnitudeRounding::NearestEven;
}

// Whether rounding a magnitude that lies strictly between two neighbours, at fraction `frac`
// (in (0,1), exact) of the step above the lower one, moves it to the upper neighbour.
// `lower_code_odd` decides ties under NearestEven; `random24` in [0, 2^24) drives Stochastic.
constexpr bool rounds_up(MagnitudeRounding m, double frac, bool lower_code_odd, uint32_t random24) {
  switch (m) {
    case MagnitudeRounding::NearestEven: return frac > 0.5 || (frac == 0.5 && lower_code_odd);
    case MagnitudeRounding::NearestUp: return frac >= 0.5;
    case MagnitudeRounding::NearestDown: return frac > 0.5;
    case MagnitudeRounding::Down: return false;
    case MagnitudeRounding::Up: return frac > 0.0;
    case MagnitudeRounding::Stochastic: return frac > static_cast<double>(random24) * 0x1p-24;
  }
  return false;
}

// Rounds x to an integer under r (no range limit); infinities and NaN pass through.
inline double round_integer(double x, Rounding r, uint32_t random24 = 0) {
  if (!std::isfinite(x)) return x;
  const bool negative = std::signbit(x);
  const double a = std::fabs(x), lo = std::floor(a), frac = a - lo;
  double mag = lo;
  if (frac > 0 && rounds_up(magnitude_rounding(r, negative), frac, std::fmod(lo, 2.0) != 0.0, random24)) mag = lo + 1;
  return negative ? -mag : mag;
}

// Counter-based random bits for stochastic rounding: element `index` of a run with `seed`.
// Returns 24 uniform bits. Every kernel (scalar reference, SIMD) uses exactly this function.
constexpr uint32_t stochastic_bits(uint32_t seed, uint64_t index) {
  uint32_t x = static_cast<uint32_t>(index) ^ (static_cast<uint32_t>(index >> 32) * 0x9E3779B9u) ^ (seed * 0x85EBCA6Bu);
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x >> 8;
}

}  // namespace lowbit
