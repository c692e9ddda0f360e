#include "lowbit/hw/sweep.hpp"

#include <chrono>
#include <fstream>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "lowbit/hw/yosys.hpp"

namespace lowbit::hw {

std::vector<MacConfig> sweep_configs() {
  // About 80 configurations: each takes two Yosys runs of 5-20 s, and the sweep must finish in
  // well under an hour on a shared 2-core machine.
  std::vector<MacConfig> out;
  auto add = [&](const char* w, const char* a, uint64_t n, std::optional<int> acc = std::nullopt) {
    out.push_back(make_mac_config(w, a, n, acc));
  };
  // Integers: the diagonal at n = 64 and 512, three widths also at 16 and 4096.
  const char* ints[] = {"int2", "int3", "int4", "int5", "int6", "int7", "int8"};
  for (const char* b : ints) {
    add(b, b, 64), add(b, b, 512);
    if (b[3] == '2' || b[3] == '4' || b[3] == '8') add(b, b, 16), add(b, b, 4096);
  }
  // Unsigned and fixed point.
  add("uint4", "uint4", 64), add("uint8", "uint8", 64), add("int4", "uint4", 64), add("int8", "uint8", 512);
  add("uint2", "int6", 64), add("int3", "uint7", 512), add("fixed<6,2>", "int4", 64), add("fixed<4,1>", "ufixed<8,0>", 512);
  // Minifloats by minifloats: OCP presets and other splits.
  for (const char* f : {"float4_e2m1fn", "e1m2", "e3m1:specials=none", "e2m3:specials=none", "e3m2:specials=none", "e4m1", "e1m4",
                        "e5m1", "e4m2", "e3m3", "e2m4", "float8_e4m3fn", "float8_e5m2", "float8_e3m4", "e2m5", "e6m1"})
    add(f, f, 64);
  add("float4_e2m1fn", "float4_e2m1fn", 512), add("float8_e4m3fn", "float8_e4m3fn", 512), add("float8_e5m2", "float8_e5m2", 512);
  add("float8_e4m3fn", "float8_e5m2", 64), add("float4_e2m1fn", "float8_e4m3fn", 64), add("e2m3:specials=none", "e3m2:specials=none", 64);
  add("float8_e4m3fnuz", "float8_e4m3fnuz", 64), add("e2m2", "e5m2", 512), add("e4m1", "e2m4", 64);
  // Integer by minifloat.
  add("int4", "float4_e2m1fn", 64), add("float4_e2m1fn", "int8", 64), add("int8", "float8_e4m3fn", 64), add("float8_e4m3fn", "int8", 512);
  add("int4", "float8_e4m3fn", 64), add("float6_e3m2fn", "int6", 64), add("int2", "float8_e5m2", 64), add("int6", "e2m3:specials=none", 512);
  add("uint8", "float4_e2m1fn", 64), add("e4m2", "int5", 64);
  // Narrowed Kulisch accumulators.
  add("float8_e4m3fn", "float8_e4m3fn", 64, 24), add("float8_e5m2", "float8_e5m2", 512, 40), add("int8", "float8_e4m3fn", 64, 24);
  add("int8", "int8", 4096, 24);
  // Integers of different widths.
  for (const auto& [w, a] : {std::pair{"int2", "int3"}, {"int2", "int4"}, {"int2", "int5"}, {"int2", "int6"}, {"int2", "int7"}, {"int2", "int8"},
                             {"int3", "int2"}, {"int3", "int4"}, {"int3", "int5"}, {"int4", "int8"}, {"int8", "int4"}, {"int6", "int3"}})
    add(w, a, 64);
  return out;
}

namespace {

using Key = std::tuple<std::string, std::string, uint64_t, int, bool>;

Key key_of(const SynthRow& r) { return {r.weight, r.activation, r.n, r.acc_request, r.use_dsp}; }

}  // namespace

bool held_out(const std::string& weight, const std::string& activation, uint64_t n, int acc_request) {
  // FNV-1a of the configuration's text: a split that does not depend on the order of the set.
  uint64_t h = 1469598103934665603ull;
  for (char ch : fmt::format("{}|{}|{}|{}", weight, activation, n, acc_request)) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  return h % 10 < 3;
}

int run_synth_sweep(const std::vector<MacConfig>& configs, const std::filesystem::path& csv, std::FILE* log) {
  std::set<Key> done;
  const bool exists = std::filesystem::exists(csv);
  if (exists)
    for (const SynthRow& r : read_synth_csv(csv)) done.insert(key_of(r));
  std::ofstream out(csv, std::ios::app);
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", csv.string()));
  if (!exists) out << synth_csv_header() << "\n";
  const std::string version = yosys_version();
  int added = 0;
  size_t index = 0;
  for (const MacConfig& c : configs) {
    ++index;
    for (bool use_dsp : {true, false}) {
      SynthRow r;
      r.weight = c.weight.to_string();
      r.activation = c.activation.to_string();
      r.n = c.n;
      r.acc_request = c.acc_bits.value_or(0);
      r.use_dsp = use_dsp;
      if (done.count(key_of(r))) continue;
      const auto t0 = std::chrono::steady_clock::now();
      r.acc_bits = plan_accumulator(c).bits;
      r.counts = synthesize_mac(c, use_dsp);
      r.yosys = version;
      out << synth_csv_line(r) << "\n" << std::flush;
      ++added;
      if (log)
        fmt::print(log, "[{}/{}] {}{}: LUT {} FF {} CARRY {} DSP {} ({:.1f} s)\n", index, configs.size(), c.to_string(),
                   use_dsp ? "" : " nodsp", r.counts.lut, r.counts.ff, r.counts.carry, r.counts.dsp,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return added;
}

}  // namespace lowbit::hw
