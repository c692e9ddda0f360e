#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/format/format.hpp"

namespace lowbit {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

[[noreturn]] void fail(std::string_view spec, std::string_view why) {
  throw FormatError(fmt::format("invalid format '{}': {}", spec, why));
}

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits on commas that are not inside <...> or (...).
std::vector<std::string> split_top(std::string_view s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

bool parse_bool(std::string_view spec, std::string_view key, std::string_view v) {
  if (v == "on" || v == "yes" || v == "true" || v == "1") return true;
  if (v == "off" || v == "no" || v == "false" || v == "0") return false;
  fail(spec, fmt::format("{} must be on/off (yes/no), got '{}'", key, v));
}

ScalarFormat parse_minifloat(std::string_view spec, std::string_view s) {
  // [u]e<E>m<M>[:key=value,...]
  std::string_view head = s, opts;
  if (auto colon = s.find(':'); colon != std::string_view::npos) {
    head = s.substr(0, colon);
    opts = s.substr(colon + 1);
  }
  MinifloatParams p;
  if (head.starts_with("u")) {
    p.has_sign = false;
    head.remove_prefix(1);
  }
  const size_t mpos = head.find('m');
  if (!head.starts_with("e") || mpos == std::string_view::npos) fail(spec, "expected e<E>m<M>");
  auto e = to_int(head.substr(1, mpos - 1));
  auto m = to_int(head.substr(mpos + 1));
  if (!e || !m) fail(spec, "expected e<E>m<M> with integer widths");
  if (*e < 1) fail(spec, fmt::format("exponent width E must be at least 1, got {}", *e));
  if (*m < 0) fail(spec, fmt::format("mantissa width M must be at least 0, got {}", *m));
  p.exponent_bits = *e;
  p.mantissa_bits = *m;
  if (*e > 16) fail(spec, "a minifloat has at most 16 bits");
  p.bias = MinifloatParams::default_bias(*e);
  if (!opts.empty()) {
    for (const std::string& kv : split_top(opts)) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) fail(spec, fmt::format("option '{}' must be key=value", kv));
      const std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
      if (key == "bias") {
        auto b = to_int(val);
        if (!b) fail(spec, fmt::format("bias must be an integer, got '{}'", val));
        p.bias = *b;
      } else if (key == "specials") {
        if (val == "ieee") p.specials = Specials::Ieee;
        else if (val == "fn") p.specials = Specials::Fn;
        else if (val == "fnuz") p.specials = Specials::Fnuz;
        else if (val == "none") p.specials = Specials::None;
        else fail(spec, fmt::format("specials must be ieee, fn, fnuz or none, got '{}'", val));
      } else if (key == "subnormals") {
        p.subnormals = parse_bool(spec, key, val);
      } else if (key == "zero") {
        p.has_zero = parse_bool(spec, key, val);
      } else if (key == "saturate") {
        p.saturate = parse_bool(spec, key, val);
      } else {
        fail(spec, fmt::format("unknown minifloat option '{}' (bias, specials, subnormals, zero, saturate)", key));
      }
    }
  }
  try {
    return ScalarFormat::minifloat(p);
  } catch (const FormatError& err) {
    fail(spec, err.what());
  }
}

std::optional<Rounding> fixed_quantization(std::string_view q) {
  if (q == "AP_RND") return Rounding::NearestUp;
  if (q == "AP_RND_ZERO") return Rounding::NearestZero;
  if (q == "AP_RND_MIN_INF") return Rounding::NearestDown;
  if (q == "AP_RND_INF") return Rounding::NearestAway;
  if (q == "AP_RND_CONV") return Rounding::NearestEven;
  if (q == "AP_TRN") return Rounding::Down;
  if (q == "AP_TRN_ZERO") return Rounding::TowardZero;
  return std::nullopt;
}

std::optional<FixedOverflow> fixed_overflow(std::string_view o) {
  if (o == "AP_SAT") return FixedOverflow::Sat;
  if (o == "AP_SAT_ZERO") return FixedOverflow::SatZero;
  if (o == "AP_SAT_SYM") return FixedOverflow::SatSym;
  if (o == "AP_WRAP") return FixedOverflow::Wrap;
  if (o == "AP_WRAP_SM") return FixedOverflow::WrapSm;
  return std::nullopt;
}

ScalarFormat parse_fixed(std::string_view spec, std::string_view s, bool is_signed) {
  // fixed<W,I[,Q[,O[,N]]]> (ap_fixed defaults: AP_TRN, AP_WRAP, 0)
  if (!s.ends_with(">")) fail(spec, "expected fixed<W,I[,Q,O,N]>");
  auto args = split_top(s.substr(0, s.size() - 1));
  if (args.size() < 2 || args.size() > 5) fail(spec, "fixed<W,I[,Q,O,N]> takes 2 to 5 parameters");
  for (std::string& a : args)
    for (char& c : a) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  FixedParams p;
  p.is_signed = is_signed;
  auto w = to_int(args[0]), i = to_int(args[1]);
  if (!w || !i) fail(spec, "W and I must be integers");
  p.width = *w;
  p.int_bits = *i;
  if (args.size() > 2) {
    auto q = fixed_quantization(args[2]);
    if (!q) fail(spec, fmt::format("unknown quantization mode '{}' (AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV, AP_TRN, AP_TRN_ZERO)", args[2]));
    p.quantization = *q;
  }
  if (args.size() > 3) {
    auto o = fixed_overflow(args[3]);
    if (!o) fail(spec, fmt::format("unknown overflow mode '{}' (AP_SAT, AP_SAT_ZERO, AP_SAT_SYM, AP_WRAP, AP_WRAP_SM)", args[3]));
    p.overflow = *o;
  }
  if (args.size() > 4) {
    auto n = to_int(args[4]);
    if (!n) fail(spec, "N must be an integer");
    p.saturation_bits = *n;
  }
  try {
    return ScalarFormat::fixed(p);
  } catch (const FormatError& err) {
    fail(spec, err.what());
  }
}

ScalarFormat parse_integer(std::string_view spec, std::string_view s) {
  IntegerParams p;
  if (s.starts_with("uint")) {
    p.is_signed = false;
    s.remove_prefix(4);
  } else {
    s.remove_prefix(3);
  }
  if (s.ends_with("n")) {
    p.narrow = true;
    s.remove_suffix(1);
  }
  auto b = to_int(s);
  if (!b) fail(spec, "expected int<bits>[n] or uint<bits>");
  p.bits = *b;
  try {
    return ScalarFormat::integer(p);
  } catch (const FormatError& err) {
    fail(spec, err.what());
  }
}

Format parse_any(std::string_view spec, std::string_view s);

ScalarFormat parse_scalar(std::string_view spec, std::string_view s, std::string_view role) {
  Format f = parse_any(spec, s);
  if (!f.scalar()) fail(spec, fmt::format("the {} must be a scalar format, got '{}'", role, s));
  return *f.scalar();
}

ScaleSpec parse_scale(std::string_view spec, std::string_view s) {
  if (s == "fp32" || s == "float32") return {ScaleKind::Float32, std::nullopt};
  if (s == "pow2") return {ScaleKind::Pow2, std::nullopt};
  return {ScaleKind::Format, parse_scalar(spec, s, "scale")};
}

BlockFormat parse_block(std::string_view spec, std::string_view s) {
  // block(ELEMENT,scale=S,size=N,rule=R[,axis=A][,tensor_scale=fp32])
  if (!s.ends_with(")")) fail(spec, "expected block(element,scale=...,size=...,rule=...)");
  const auto args = split_top(s.substr(0, s.size() - 1));
  static constexpr std::string_view keys[] = {"scale", "size", "rule", "axis", "tensor_scale"};
  std::string element = args[0];
  std::string scale = "e8m0", size = "32", rule = "floor", axis = "-1", tensor = "none";
  std::string* last = &element;  // options of a nested format follow it
  for (size_t k = 1; k < args.size(); ++k) {
    const std::string& a = args[k];
    const size_t eq = a.find('=');
    const std::string key = eq == std::string::npos ? a : a.substr(0, eq);
    if (std::find(std::begin(keys), std::end(keys), key) == std::end(keys)) {
      if (eq == std::string::npos) fail(spec, fmt::format("unknown block parameter '{}'", a));
      *last += (last->find(':') == std::string::npos ? ":" : ",") + a;
      continue;
    }
    const std::string val = a.substr(eq + 1);
    if (key == "scale") {
      scale = val;
      last = &scale;
    } else {
      if (key == "size") size = val;
      if (key == "rule") rule = val;
      if (key == "axis") axis = val;
      if (key == "tensor_scale") tensor = val;
      last = &element;
    }
  }
  BlockParams p{parse_scalar(spec, element, "block element"), parse_scale(spec, scale)};
  auto n = to_int(size);
  if (!n) fail(spec, fmt::format("block size must be an integer, got '{}'", size));
  p.block_size = *n;
  auto ax = to_int(axis);
  if (!ax) fail(spec, fmt::format("axis must be an integer, got '{}'", axis));
  p.axis = *ax;
  if (rule == "floor") p.rule = ScaleRule::Floor;
  else if (rule == "ceil") p.rule = ScaleRule::Ceil;
  else if (rule == "nearest") p.rule = ScaleRule::Nearest;
  else fail(spec, fmt::format("rule must be floor, ceil or nearest, got '{}'", rule));
  if (tensor == "fp32") p.tensor_scale = true;
  else if (tensor != "none") fail(spec, fmt::format("tensor_scale must be fp32 or none, got '{}'", tensor));
  try {
    return BlockFormat(std::move(p));
  } catch (const FormatError& err) {
    fail(spec, err.what());
  }
}

BitmodFormat parse_bitmod(std::string_view spec, std::string_view s) {
  // bitmod_fp3 | bitmod_fp4 [ (group=G) ]
  BitmodParams p;
  std::string_view head = s, opts;
  if (auto paren = s.find('('); paren != std::string_view::npos) {
    if (!s.ends_with(")")) fail(spec, "expected bitmod_fp4(group=N)");
    head = s.substr(0, paren);
    opts = s.substr(paren + 1, s.size() - paren - 2);
  }
  if (head == "bitmod_fp3") p.base_bits = 3;
  else if (head == "bitmod_fp4") p.base_bits = 4;
  else fail(spec, "expected bitmod_fp3 or bitmod_fp4");
  if (!opts.empty()) {
    for (const std::string& kv : split_top(opts)) {
      if (!kv.starts_with("group=")) fail(spec, fmt::format("unknown bitmod option '{}' (group)", kv));
      auto g = to_int(std::string_view(kv).substr(6));
      if (!g) fail(spec, "group must be an integer");
      p.group_size = *g;
    }
  }
  try {
    return BitmodFormat(p);
  } catch (const FormatError& err) {
    fail(spec, err.what());
  }
}

bool looks_like_minifloat(std::string_view s) {
  if (s.starts_with("u")) s.remove_prefix(1);
  return s.size() >= 4 && s[0] == 'e' && std::isdigit(static_cast<unsigned char>(s[1]));
}

Format parse_any(std::string_view spec, std::string_view raw) {
  const std::string t = trim(raw);
  if (t.empty()) fail(spec, "empty format");
  const std::string low = lower(t);
  for (const Preset& p : presets())
    if (low == p.name && p.name != p.spec) return parse_any(spec, p.spec);
  if (low.starts_with("fixed<")) return parse_fixed(spec, std::string_view(t).substr(6), true);
  if (low.starts_with("ufixed<")) return parse_fixed(spec, std::string_view(t).substr(7), false);
  if (low.starts_with("ap_fixed<")) return parse_fixed(spec, std::string_view(t).substr(9), true);
  if (low.starts_with("ap_ufixed<")) return parse_fixed(spec, std::string_view(t).substr(10), false);
  if (low.starts_with("block(")) return parse_block(spec, std::string_view(t).substr(6));
  if (low.starts_with("bitmod")) return parse_bitmod(spec, low);
  if (low == "binary") return ScalarFormat::binary();
  if ((low.starts_with("int") || low.starts_with("uint")) && low.size() > 3) return parse_integer(spec, low);
  if (looks_like_minifloat(low)) return parse_minifloat(spec, low);
  fail(spec, "unknown format (see `lowbit format --list` and the README's format syntax)");
}

}  // namespace

Format Format::parse(std::string_view spec) { return parse_any(spec, spec); }

}  // namespace lowbit
