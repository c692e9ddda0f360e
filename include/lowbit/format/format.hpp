#pragma once
// The run-time format descriptor: one of a scalar, block-scaled or BitMoD format, parsed from
// one text syntax (see README "Format syntax") with a canonical form: to_string(parse(s)) is stable.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "lowbit/format/bitmod.hpp"
#include "lowbit/format/block_format.hpp"
#include "lowbit/format/scalar_format.hpp"

namespace lowbit {

class Format {
 public:
  Format(ScalarFormat f) : v_(std::move(f)) {}
  Format(BlockFormat f) : v_(std::move(f)) {}
  Format(BitmodFormat f) : v_(std::move(f)) {}

  // Parses a spec; throws FormatError with a one-line message naming what is wrong.
  static Format parse(std::string_view spec);

  const ScalarFormat* scalar() const { return std::get_if<ScalarFormat>(&v_); }
  const BlockFormat* block() const { return std::get_if<BlockFormat>(&v_); }
  const BitmodFormat* bitmod() const { return std::get_if<BitmodFormat>(&v_); }

  std::string to_string() const;
  double bits_per_element() const;
  bool operator==(const Format& o) const;

 private:
  std::variant<ScalarFormat, BlockFormat, BitmodFormat> v_;
};

struct Preset {
  std::string_view name;
  std::string_view spec;  // in the general syntax
  std::string_view note;
  bool alias = false;  // another name for a format that has a primary preset name
};
std::span<const Preset> presets();
// The preset whose format equals f, if any.
std::optional<std::string_view> preset_name(const Format& f);

}  // namespace lowbit
