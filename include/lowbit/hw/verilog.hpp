#pragma once
// Plain Verilog-2005 of a MAC unit: decode both operands, multiply the significands, add the
// exponent shifts, place the product in the fixed-point (Kulisch) accumulator and add it:
//   module NAME (input clk, input rst, input en, input [Bw-1:0] w, input [Ba-1:0] a,
//                output reg [W-1:0] acc);   // rst: synchronous, acc <= 0; en: acc <= acc + w * a
// The register's bit 0 weighs 2^plan.lsb_exponent (see plan_accumulator).
#include <string>

#include "lowbit/hw/mac_config.hpp"

namespace lowbit::hw {

std::string mac_verilog(const MacConfig& c, const std::string& module_name = "mac");

}  // namespace lowbit::hw
