#pragma once
// The synthesis sweep: a fixed set of MAC configurations spread over widths, format kinds and
// dot-product lengths, each synthesized with and without DSP mapping into a CSV.
#include <cstdio>
#include <filesystem>
#include <vector>

#include "lowbit/hw/mac_config.hpp"

namespace lowbit::hw {

// The configurations of data/hw/yosys_xcup.csv.
std::vector<MacConfig> sweep_configs();

// Synthesizes every configuration (both variants) not yet in `csv` and appends its rows, so an
// interrupted sweep continues where it stopped. Progress lines go to `log`. Returns rows added.
int run_synth_sweep(const std::vector<MacConfig>& configs, const std::filesystem::path& csv, std::FILE* log);

// Whether a configuration is held out of the fit (a fixed 30 % split by a hash of its text).
bool held_out(const std::string& weight, const std::string& activation, uint64_t n, int acc_request);

}  // namespace lowbit::hw
