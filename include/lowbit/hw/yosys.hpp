#pragma once
// Ground truth from Yosys: `synth_xilinx -family xcup` (AMD UltraScale+) of a generated MAC, and
// the cell counts of its `stat`. The data set of synthesized configurations lives in a CSV.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lowbit/hw/mac_config.hpp"

namespace lowbit::hw {

struct SynthCounts {
  int lut = 0;    // LUT1..LUT6 plus INV (Yosys's inverter cell takes a LUT)
  int ff = 0;     // FDRE, FDSE, FDCE, FDPE (and their _1 variants)
  int carry = 0;  // CARRY4 + CARRY8 (Yosys 0.23 maps adders to CARRY4 even for xcup)
  int dsp = 0;    // DSP48E2
  int muxf = 0;   // MUXF7 / MUXF8 / MUXF9 (wide-LUT muxes in the slice; not counted as LUTs)
  std::map<std::string, int> cells;  // every cell type of the stat
  bool operator==(const SynthCounts& o) const {
    return lut == o.lut && ff == o.ff && carry == o.carry && dsp == o.dsp && muxf == o.muxf;
  }
};

// Parses the last "Number of cells" block of Yosys's `stat` output; throws if there is none.
SynthCounts parse_yosys_stat(const std::string& text);

bool yosys_available();
// "Yosys 0.23 (git sha1 7ce5011c24b)".
std::string yosys_version();
// The Yosys script used: "synth_xilinx -family xcup -top mac" (plus " -nodsp").
std::string synth_command(bool use_dsp);
// Writes the MAC's Verilog to a temporary directory and synthesizes it; throws with Yosys's
// output when it fails.
SynthCounts synthesize_mac(const MacConfig& c, bool use_dsp);

// One synthesized configuration (a row of data/hw/yosys_xcup.csv).
struct SynthRow {
  std::string weight, activation;  // canonical format specs
  uint64_t n = 1;
  int acc_request = 0;  // 0: the exact accumulator; otherwise the user's width
  int acc_bits = 0;     // the register built
  bool use_dsp = true;
  SynthCounts counts;
  std::string yosys;
  MacConfig config() const;
};

std::vector<SynthRow> read_synth_csv(const std::filesystem::path& path);
std::string synth_csv_header();
std::string synth_csv_line(const SynthRow& r);

}  // namespace lowbit::hw
