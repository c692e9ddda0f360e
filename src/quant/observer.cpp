// Calibration statistics and the slice layout of each granularity.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "lowbit/format/tensor_shape.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "src/quant/slices.hpp"

namespace lowbit {
namespace {

constexpr std::array<std::pair<Granularity, std::string_view>, 4> kGranularity{
    {{Granularity::Tensor, "tensor"}, {Granularity::Channel, "channel"}, {Granularity::Group, "group"}, {Granularity::Token, "token"}}};
constexpr std::array<std::pair<ObserverKind, std::string_view>, 5> kObserver{
    {{ObserverKind::MinMax, "minmax"}, {ObserverKind::Percentile, "percentile"}, {ObserverKind::Mse, "mse"}, {ObserverKind::Running, "running"}, {ObserverKind::Entropy, "entropy"}}};
constexpr std::array<std::pair<ScaleStorage, std::string_view>, 4> kStorage{
    {{ScaleStorage::Fp32, "fp32"}, {ScaleStorage::Pow2, "pow2"}, {ScaleStorage::E8M0, "e8m0"}, {ScaleStorage::E4M3, "e4m3"}}};

template <class T, size_t N>
std::optional<T> find_value(const std::array<std::pair<T, std::string_view>, N>& table, std::string_view s) {
  for (auto& [v, n] : table)
    if (n == s) return v;
  return std::nullopt;
}
template <class T, size_t N>
std::string_view find_name(const std::array<std::pair<T, std::string_view>, N>& table, T v) {
  for (auto& [k, n] : table)
    if (k == v) return n;
  return "?";
}

// Per-slice cap on stored samples for the percentile, MSE and entropy observers.
constexpr size_t kTotalSampleCap = size_t{1} << 21;
constexpr size_t kMinSliceCap = 4096;

}  // namespace

std::optional<Granularity> parse_granularity(std::string_view s) { return find_value(kGranularity, s); }
std::optional<ObserverKind> parse_observer(std::string_view s) { return find_value(kObserver, s); }
std::optional<ScaleStorage> parse_scale_storage(std::string_view s) { return find_value(kStorage, s); }
std::string_view to_string(Granularity g) { return find_name(kGranularity, g); }
std::string_view to_string(ObserverKind o) { return find_name(kObserver, o); }
std::string_view to_string(ScaleStorage s) { return find_name(kStorage, s); }

namespace detail {

SliceLayout slice_layout(const QuantizerConfig& c, std::span<const int64_t> shape, size_t size) {
  std::vector<int64_t> dims(shape.begin(), shape.end());
  if (dims.empty()) dims.push_back(static_cast<int64_t>(size));
  SliceLayout L;
  constexpr size_t kChunk = size_t{1} << 16;  // split one big slice so threads can share it
  auto view_at = [&](int axis) {
    try {
      return axis_view(dims, axis, size);
    } catch (const FormatError& e) {
      throw std::invalid_argument(e.what());
    }
  };
  switch (c.granularity) {
    case Granularity::Tensor: {
      view_at(0);
      for (size_t b = 0; b < size; b += kChunk) L.runs.push_back({b, std::min(kChunk, size - b), 0});
      L.slices = 1;
      return L;
    }
    case Granularity::Token: {
      const AxisView v = view_at(-1);
      const size_t row = static_cast<size_t>(v.length), rows = row ? size / row : 0;
      for (size_t r = 0; r < rows; ++r) L.runs.push_back({r * row, row, r});
      L.slices = rows;
      return L;
    }
    case Granularity::Channel: {
      const AxisView v = view_at(c.axis);
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t k = 0; k < v.length; ++k)
          L.runs.push_back({static_cast<size_t>((o * v.length + k) * v.inner), static_cast<size_t>(v.inner), static_cast<size_t>(k)});
      L.slices = static_cast<size_t>(v.length);
      return L;
    }
    case Granularity::Group: {
      const AxisView v = view_at(c.axis);
      const int64_t gs = c.group_size, groups = (v.length + gs - 1) / gs;
      L.slices = static_cast<size_t>(v.outer * v.inner * groups);
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t i = 0; i < v.inner; ++i)
          for (int64_t g = 0; g < groups; ++g) {
            const size_t slice = static_cast<size_t>((o * v.inner + i) * groups + g);
            const int64_t k1 = std::min(v.length, (g + 1) * gs);
            if (v.inner == 1) {
              L.runs.push_back({static_cast<size_t>(o * v.length + g * gs), static_cast<size_t>(k1 - g * gs), slice});
            } else {
              for (int64_t k = g * gs; k < k1; ++k)
                L.runs.push_back({static_cast<size_t>((o * v.length + k) * v.inner + i), 1, slice});
            }
          }
      return L;
    }
  }
  return L;
}

}  // namespace detail

void Quantizer::observe(std::span<const float> x, std::span<const int64_t> shape) {
  if (!c_.format.scalar()) return;  // block and BitMoD formats compute their own scales
  // Per-tensor statistics do not depend on the shape (a last, smaller calibration batch is fine).
  if (!stats_.empty() && c_.granularity != Granularity::Tensor &&
      !std::equal(shape.begin(), shape.end(), shape_.begin(), shape_.end()))
    throw std::invalid_argument("Quantizer::observe: every call must use the same shape");
  const detail::SliceLayout L = detail::slice_layout(c_, shape, x.size());
  if (stats_.empty()) {
    stats_.resize(L.slices);
    shape_.assign(shape.begin(), shape.end());
  }
  const bool keep_samples = c_.observer == ObserverKind::Percentile || c_.observer == ObserverKind::Mse || c_.observer == ObserverKind::Entropy;
  const size_t cap = std::max(kMinSliceCap, kTotalSampleCap / std::max<size_t>(1, L.slices));
  std::vector<double> call_min(L.slices, INFINITY), call_max(L.slices, -INFINITY);
  for (const detail::Run& r : L.runs) {
    SliceStats& s = stats_[r.slice];
    const float* p = x.data() + r.begin;
    // NaN / inf do not move the range; written branch-free so the compiler vectorizes it.
    float lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < r.length; ++k) {
      const float v = p[k];
      const bool finite = std::fabs(v) <= std::numeric_limits<float>::max();
      lo = finite && v < lo ? v : lo;
      hi = finite && v > hi ? v : hi;
    }
    call_min[r.slice] = std::min(call_min[r.slice], static_cast<double>(lo));
    call_max[r.slice] = std::max(call_max[r.slice], static_cast<double>(hi));
    if (!keep_samples) continue;
    // Samples are the finite values at slice positions that are multiples of the stride.
    size_t k = (s.stride - s.counter % s.stride) % s.stride;
    while (k < r.length) {
      const float v = p[k];
      if (std::isfinite(v)) s.samples.push_back(v);
      if (s.samples.size() >= 2 * cap) {  // decimate evenly: keep every other sample, double the stride
        size_t w = 0;
        for (size_t i = 0; i < s.samples.size(); i += 2) s.samples[w++] = s.samples[i];
        s.samples.resize(w);
        s.stride *= 2;
        const size_t position = s.counter + k;
        k = (position / s.stride + 1) * s.stride - s.counter;
      } else {
        k += s.stride;
      }
    }
    s.counter += r.length;
  }
  for (size_t i = 0; i < L.slices; ++i) {
    SliceStats& s = stats_[i];
    if (call_min[i] > call_max[i]) continue;
    if (!s.seen || c_.observer != ObserverKind::Running) {
      s.min = s.seen ? std::min(s.min, call_min[i]) : call_min[i];
      s.max = s.seen ? std::max(s.max, call_max[i]) : call_max[i];
    } else {
      s.min = c_.momentum * s.min + (1 - c_.momentum) * call_min[i];
      s.max = c_.momentum * s.max + (1 - c_.momentum) * call_max[i];
    }
    s.seen = true;
  }
}

}  // namespace lowbit
