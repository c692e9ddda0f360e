#include "lowbit/format/bitmod.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lowbit/format/scalar_format.hpp"

namespace lowbit {
namespace {

// Integer-scaled base grids: FP3 = E2M0 {0, 1, 2, 4}, FP4 = E2M1 x 2 {0, 1, 2, 3, 4, 6, 8, 12}.
std::vector<double> symmetric(std::initializer_list<double> positive) {
  std::vector<double> g{0.0};
  for (double v : positive) {
    g.push_back(v);
    g.push_back(-v);
  }
  return g;
}

const ScalarFormat& float16() {
  static const ScalarFormat f = ScalarFormat::minifloat({5, 10, true, 15, Specials::Ieee, true, true, true});
  return f;
}

}  // namespace

BitmodFormat::BitmodFormat(BitmodParams p) : p_(p) {
  if (p_.base_bits != 3 && p_.base_bits != 4) throw FormatError("bitmod base grid must be FP3 or FP4");
  if (p_.group_size < 1 || p_.group_size > 65536)
    throw FormatError(fmt::format("bitmod group size must be 1..65536, got {}", p_.group_size));
  const std::vector<double> base = p_.base_bits == 3 ? symmetric({1, 2, 4}) : symmetric({1, 2, 3, 4, 6, 8, 12});
  // Candidates in the reference order: extra resolution +/-, extra asymmetry +/-.
  const double resolution = p_.base_bits == 3 ? 3 : 10, asymmetry = p_.base_bits == 3 ? 6 : 16;
  for (double extra : {resolution, -resolution, asymmetry, -asymmetry}) {
    std::vector<double> g = base;
    g.push_back(extra);
    std::sort(g.begin(), g.end());
    grids_.push_back(std::move(g));
  }
}

std::string BitmodFormat::to_string() const {
  std::string s = fmt::format("bitmod_fp{}", p_.base_bits);
  if (p_.group_size != 128) s += fmt::format("(group={})", p_.group_size);
  return s;
}

double BitmodFormat::bits_per_element() const { return p_.base_bits + (16.0 + 2.0) / p_.group_size; }

void BitmodFormat::quantize_reference(std::span<const float> in, std::span<float> out,
                                      std::vector<GroupChoice>* choices) const {
  if (choices) choices->clear();
  const size_t n = in.size(), gs = static_cast<size_t>(p_.group_size);
  const double min_scale = float16().quantize(1e-5), max_scale = float16().quantize(1e4);
  std::vector<float> trial(gs), best(gs);
  for (size_t g0 = 0; g0 < n; g0 += gs) {
    const size_t len = std::min(gs, n - g0);
    bool finite = true;
    double amax = 0;
    for (size_t k = 0; k < len; ++k) {
      const float x = in[g0 + k];
      if (!std::isfinite(x)) finite = false;
      else amax = std::max(amax, static_cast<double>(std::fabs(x)));
    }
    if (!finite) {
      for (size_t k = 0; k < len; ++k) out[g0 + k] = std::numeric_limits<float>::quiet_NaN();
      if (choices) choices->push_back({0, std::numeric_limits<float>::quiet_NaN()});
      continue;
    }
    double best_err = std::numeric_limits<double>::infinity();
    GroupChoice chosen;
    for (size_t c = 0; c < grids_.size(); ++c) {
      const std::vector<double>& grid = grids_[c];
      const double gmax = std::max(-grid.front(), grid.back());
      const float scale = static_cast<float>(std::clamp(float16().quantize(amax / gmax), min_scale, max_scale));
      // Nearest grid value: the number of midpoints below v (a value exactly on a midpoint goes
      // to the lower neighbour; beyond the ends it clamps). Midpoints of these small integer
      // grids are exact floats; the count is branchless.
      const size_t count = grid.size();  // at most 16 (FP4 plus its extra value)
      std::array<float, 16> values{};
      std::array<float, 15> mids{};
      for (size_t j = 0; j < count; ++j) values[j] = static_cast<float>(grid[j]);
      for (size_t j = 0; j + 1 < count; ++j) mids[j] = static_cast<float>((grid[j] + grid[j + 1]) / 2);
      double err = 0;
      for (size_t k = 0; k < len; ++k) {
        const float x = in[g0 + k];
        const float v = x / scale;
        unsigned idx = 0;
        for (size_t j = 0; j + 1 < count; ++j) idx += v > mids[j];
        trial[k] = values[idx] * scale;
        const double d = static_cast<double>(x) - trial[k];
        err += d * d;
      }
      if (err < best_err) {
        best_err = err;
        chosen = {static_cast<int>(c), scale};
        std::copy_n(trial.begin(), len, best.begin());
      }
    }
    std::copy_n(best.begin(), len, out.begin() + static_cast<std::ptrdiff_t>(g0));
    if (choices) choices->push_back(chosen);
  }
}

}  // namespace lowbit
