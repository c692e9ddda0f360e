#include "lowbit/report/family.hpp"

#include "lowbit/format/format.hpp"

namespace lowbit::report {

FormatFamily format_family(std::string_view spec) {
  if (spec.empty() || spec == "float") return FormatFamily::Other;
  try {
    const Format f = Format::parse(spec);
    if (f.block() || f.bitmod()) return FormatFamily::Block;
    switch (f.scalar()->kind()) {
      case ScalarKind::Integer:
      case ScalarKind::Binary: return FormatFamily::Integer;
      case ScalarKind::Minifloat: return FormatFamily::Minifloat;
      case ScalarKind::Fixed: return FormatFamily::Fixed;
    }
  } catch (const std::exception&) {  // not a format this lowbit knows
  }
  return FormatFamily::Other;
}

std::string_view family_name(FormatFamily f) {
  switch (f) {
    case FormatFamily::Integer: return "integer";
    case FormatFamily::Minifloat: return "minifloat";
    case FormatFamily::Fixed: return "fixed";
    case FormatFamily::Block: return "block";
    case FormatFamily::Other: return "other";
  }
  return "other";
}

}  // namespace lowbit::report
