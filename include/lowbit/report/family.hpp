#pragma once
// The family of a weight format, which gives a point its colour and marker shape in the plots.
#include <string>
#include <string_view>

namespace lowbit::report {

enum class FormatFamily { Integer, Minifloat, Fixed, Block, Other };

inline constexpr FormatFamily kFormatFamilies[] = {FormatFamily::Integer, FormatFamily::Minifloat, FormatFamily::Fixed,
                                                   FormatFamily::Block, FormatFamily::Other};

// integer (and binary), minifloat, fixed point, block-scaled (MX, NVFP4, BitMoD); Other for "float"
// and for any spec this lowbit cannot parse (a store may come from a newer lowbit).
FormatFamily format_family(std::string_view spec);
// "integer", "minifloat", "fixed", "block", "other".
std::string_view family_name(FormatFamily f);

}  // namespace lowbit::report
