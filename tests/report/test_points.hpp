#pragma once
// Rows for the renderer's unit tests. The report is a pure function of the store's rows, so the
// tests build them here; the browser test reads a store written by the explorer.
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/dse/store.hpp"

namespace lowbit::report::testing {

inline dse::PointResult point(int64_t id, std::string w, std::string a, double top1, double lut, double bit_ops, double weight_bits) {
  dse::PointResult p;
  p.id = id;
  p.key = "{\"id\":" + std::to_string(id) + ",\"w\":\"" + w + "\"}";
  p.model = "../shared/data/models/resnet20_cifar10.onnx";
  p.weight_format = w;
  p.activation_format = a;
  p.granularity = "channel";
  p.technique = "rtn";
  p.recipe = {{"weights", {{"format", w}, {"granularity", "channel"}}}, {"activations", {{"format", a}}}};
  p.top1 = top1;
  p.top5 = top1 + 10;
  p.images = 160;
  p.lut = lut;
  p.bit_ops = bit_ops;
  p.weight_bits = weight_bits;
  p.macs = 40551040;
  p.activation_bits = 1e6;
  p.ff = lut / 2;
  p.carry = lut / 8;
  p.dsp = 0;
  p.lowbit_version = "0.1.0";
  p.host = "test";
  p.finished_at = "2025-01-01T00:00:00Z";
  return p;
}

// Nine points over the four families; on LUTs the front is ids 1, 3, 5 (int3 < int4 < int8 in
// cost, rising top-1), the block format (id 8) has no cost, id 9 has no top-1.
inline std::vector<dse::PointResult> sample_points() {
  return {
      point(1, "int3", "int8", 60.0, 20000, 3e8, 8e5),
      point(2, "int4", "int4", 55.0, 30000, 2e8, 1.1e6),  // dominated on LUTs by 1
      point(3, "int4", "int8", 75.5, 32000, 4e8, 1.1e6),
      point(4, "e3m2", "float8_e4m3fn", 70.0, 90000, 6e8, 1.6e6),  // dominated on LUTs by 3
      point(5, "int8", "int8", 80.25, 100000, 8e8, 2.2e6),
      point(6, "fixed<6,1>", "int8", 74.0, 45000, 5e8, 1.6e6),
      point(7, "float8_e4m3fn", "float8_e4m3fn", 80.0, 150000, 1.0e9, 2.2e6),
      point(8, "mxfp4", "int8", 72.0, NAN, NAN, NAN),
      point(9, "int2", "int8", NAN, 15000, 2e8, 5e5),
  };
}

}  // namespace lowbit::report::testing
