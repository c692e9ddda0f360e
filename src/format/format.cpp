#include "lowbit/format/format.hpp"

#include <array>

namespace lowbit {

std::span<const Preset> presets() {
  static constexpr std::array<Preset, 27> kPresets{{
      {"float8_e4m3fn", "e4m3:specials=fn", "OCP FP8 E4M3: max 448, NaN at S.1111.111, no inf"},
      {"float8_e4m3fnuz", "e4m3:bias=8,specials=fnuz", "max 240, NaN at 0x80, no -0"},
      {"float8_e4m3b11fnuz", "e4m3:bias=11,specials=fnuz", "bias 11, max 30, NaN at 0x80"},
      {"float8_e4m3", "e4m3", "IEEE-like E4M3: inf and NaN, max 240"},
      {"float8_e5m2", "e5m2", "OCP FP8 E5M2, IEEE-like: max 57344, inf and NaN"},
      {"float8_e5m2fnuz", "e5m2:bias=16,specials=fnuz", "max 57344, NaN at 0x80, no -0"},
      {"float8_e3m4", "e3m4", "IEEE-like E3M4: max 15.5, inf and NaN"},
      {"float6_e2m3fn", "e2m3:specials=none", "OCP FP6 E2M3: max 7.5, no inf or NaN"},
      {"float6_e3m2fn", "e3m2:specials=none", "OCP FP6 E3M2: max 28, no inf or NaN"},
      {"float4_e2m1fn", "e2m1:specials=none", "OCP FP4 E2M1: {0, 0.5, 1, 1.5, 2, 3, 4, 6}"},
      {"float8_e8m0fnu", "ue8m0:specials=fn,subnormals=off,zero=no", "OCP E8M0 scale: 2^-127..2^127, NaN 0xFF, no zero"},
      {"bfloat16", "e8m7", "bfloat16"},
      {"float16", "e5m10", "IEEE binary16"},
      {"e8m0", "ue8m0:specials=fn,subnormals=off,zero=no", "alias of float8_e8m0fnu", true},
      {"ternary", "int2n", "{-1, 0, +1}"},
      {"mxfp8", "block(e4m3:specials=fn,scale=e8m0,size=32,rule=floor)", "OCP MXFP8 (E4M3 elements)", true},
      {"mxfp8_e4m3", "block(e4m3:specials=fn,scale=e8m0,size=32,rule=floor)", "OCP MXFP8 E4M3"},
      {"mxfp8_e5m2", "block(e5m2,scale=e8m0,size=32,rule=floor)", "OCP MXFP8 E5M2"},
      {"mxfp6", "block(e2m3:specials=none,scale=e8m0,size=32,rule=floor)", "OCP MXFP6 (E2M3 elements)", true},
      {"mxfp6_e3m2", "block(e3m2:specials=none,scale=e8m0,size=32,rule=floor)", "OCP MXFP6 E3M2"},
      {"mxfp6_e2m3", "block(e2m3:specials=none,scale=e8m0,size=32,rule=floor)", "OCP MXFP6 E2M3"},
      {"mxfp4", "block(e2m1:specials=none,scale=e8m0,size=32,rule=floor)", "OCP MXFP4 (E2M1 elements)"},
      {"mxint8", "block(fixed<8,2,AP_RND_CONV,AP_SAT_SYM>,scale=e8m0,size=32,rule=floor)",
       "OCP MXINT8: 8-bit two's complement with 6 fraction bits"},
      {"nvfp4", "block(e2m1:specials=none,scale=e4m3:specials=fn,size=16,rule=nearest,tensor_scale=fp32)",
       "NVIDIA NVFP4: E2M1, 16-element blocks, E4M3 scale, fp32 tensor scale"},
      {"bitmod_fp4", "bitmod_fp4", "BitMoD FP4 mixture, groups of 128"},
      {"bitmod_fp3", "bitmod_fp3", "BitMoD FP3 mixture, groups of 128"},
      {"int8n", "int8n", "symmetric int8, -127..127"},
  }};
  return kPresets;
}

std::optional<std::string_view> preset_name(const Format& f) {
  for (const Preset& p : presets()) {
    if (p.alias || p.name == p.spec) continue;
    if (Format::parse(p.spec) == f) return p.name;
  }
  return std::nullopt;
}

std::string Format::to_string() const {
  return std::visit([](const auto& f) { return f.to_string(); }, v_);
}

double Format::bits_per_element() const {
  if (auto s = scalar()) return s->bits();
  if (auto b = block()) return b->bits_per_element();
  return bitmod()->bits_per_element();
}

bool Format::operator==(const Format& o) const { return v_ == o.v_; }

}  // namespace lowbit
