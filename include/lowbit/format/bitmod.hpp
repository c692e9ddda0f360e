#pragma once
// BitMoD mixtures of data types (Chen et al., HPCA 2025): each group of weights picks, by least
// squared error, one of several low-bit float grids, each the FP3 or FP4 grid extended by one
// extra value (extra resolution or extra asymmetry), with a per-group scale.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowbit {

struct BitmodParams {
  int base_bits = 4;   // 3 (FP3 = E2M0 grid) or 4 (FP4 = E2M1 grid)
  int group_size = 128;
  bool operator==(const BitmodParams&) const = default;
};

class BitmodFormat {
 public:
  explicit BitmodFormat(BitmodParams p);  // validates, throws FormatError
  const BitmodParams& params() const { return p_; }
  std::string to_string() const;
  bool operator==(const BitmodFormat& o) const { return p_ == o.p_; }
  double bits_per_element() const;  // element bits + (fp16 scale + 2-bit type id) per group

  // The candidate grids in integer-scaled form, each sorted ascending.
  const std::vector<std::vector<double>>& grids() const { return grids_; }

  struct GroupChoice {
    int grid = 0;      // index into grids()
    float scale = 0;   // stored as float16, held here as its float32 value
  };
  // Reference fake quantization: groups of group_size consecutive elements (last one may be short).
  void quantize_reference(std::span<const float> in, std::span<float> out,
                          std::vector<GroupChoice>* choices = nullptr) const;

 private:
  BitmodParams p_;
  std::vector<std::vector<double>> grids_;
};

}  // namespace lowbit
