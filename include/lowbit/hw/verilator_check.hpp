#pragma once
// Bit-exact check of generated MAC Verilog against the C++ emulation, with Verilator.
// Several MACs are compiled into one Verilator model (a wrapper instantiates each), since the
// C++ compile dominates the time. Each MAC runs its own stimulus: products in groups of n with a
// reset before each group, the accumulator compared after every cycle; then n times the largest
// and n times the smallest product (the register's width is exact: these must not wrap).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/hw/mac_config.hpp"

namespace lowbit::hw {

struct VerilatorCheckOptions {
  // Every (weight, activation) code pair when the two codes have at most this many bits
  // together; otherwise `random_products` uniformly random pairs.
  int exhaustive_max_bits = 12;
  uint64_t random_products = 20000;
  uint64_t seed = 1;
  // Extreme sequences only for n up to this (each costs 2n cycles).
  uint64_t max_extreme_n = 1 << 16;
  // Keep the work directory (it is always kept when a check fails or the build breaks).
  bool keep_work_dir = false;
};

struct MacCheckResult {
  std::string config;
  bool exhaustive = false;
  uint64_t products = 0;  // products compared (cycles with en = 1)
  uint64_t mismatches = 0;
  std::string first_mismatch;  // empty when none
  bool passed() const { return mismatches == 0 && products > 0; }
};

struct VerilatorCheckReport {
  std::vector<MacCheckResult> results;
  std::filesystem::path work_dir;  // empty if removed
  double build_seconds = 0, run_seconds = 0;
  bool all_passed() const;
};

bool verilator_available();

// Throws std::runtime_error (with the tool's output) when Verilator fails to build the model.
VerilatorCheckReport verilator_check(const std::vector<MacConfig>& configs, const VerilatorCheckOptions& options = {});

}  // namespace lowbit::hw
