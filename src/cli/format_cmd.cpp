// `lowbit format`: properties, code table, SQNR and JSON of any format.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/format/fake_quant.hpp"
#include "lowbit/format/format.hpp"
#include "lowbit/quant/quantizer.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

struct FormatOptions {
  std::string spec;
  bool list = false, table = false, sqnr = false, json = false;
  std::string scale_rule = "max";
  size_t samples = 1 << 20;
  uint32_t seed = 1;
};

std::string kind_name(const Format& f) {
  if (auto s = f.scalar()) {
    switch (s->kind()) {
      case ScalarKind::Integer: return "integer";
      case ScalarKind::Binary: return "binary";
      case ScalarKind::Minifloat: return "minifloat";
      case ScalarKind::Fixed: return "fixed point";
    }
  }
  if (f.block()) return "block-scaled";
  return "mixture of data types (BitMoD)";
}

// Number as %.17g, plus its power of two when it is one.
std::string number(double v) {
  if (v != 0 && std::isfinite(v)) {
    int e;
    if (std::frexp(std::fabs(v), &e) == 0.5) return fmt::format("{:.17g} ({}2^{})", v, v < 0 ? "-" : "", e - 1);
  }
  return fmt::format("{:.17g}", v);
}

const ScalarFormat* element_of(const Format& f) {
  if (auto s = f.scalar()) return s;
  if (auto b = f.block()) return &b->element();
  return nullptr;
}

nlohmann::json properties_json(const Format& f) {
  nlohmann::json j;
  j["canonical"] = f.to_string();
  if (auto p = preset_name(f)) j["preset"] = std::string(*p);
  j["kind"] = kind_name(f);
  j["bits"] = f.bits_per_element();
  if (const ScalarFormat* s = element_of(f)) {
    j["element_bits"] = s->bits();
    j["max"] = s->max();
    j["lowest"] = s->lowest();
    j["min_normal"] = s->min_normal();
    j["min_subnormal"] = s->min_subnormal();
    j["finite_values"] = s->finite_values();
    j["has_nan"] = s->has_nan();
    j["has_inf"] = s->has_inf();
    j["dynamic_range_binades"] = s->dynamic_range_binades();
    j["dynamic_range_db"] = 20 * std::log10(std::exp2(s->dynamic_range_binades()));
  }
  if (auto b = f.block()) {
    j["block_size"] = b->params().block_size;
    j["scale"] = b->params().scale.to_string();
  }
  if (auto m = f.bitmod()) {
    j["group_size"] = m->params().group_size;
    j["max"] = nullptr;
  }
  return j;
}

void print_properties(const Format& f) {
  const nlohmann::json j = properties_json(f);
  fmt::print("{:<16}{}\n", "canonical", f.to_string());
  if (auto p = preset_name(f)) fmt::print("{:<16}{}\n", "preset", *p);
  fmt::print("{:<16}{}\n", "kind", kind_name(f));
  fmt::print("{:<16}{:g}\n", "bits/element", f.bits_per_element());
  if (const ScalarFormat* s = element_of(f)) {
    const char* label = f.scalar() ? "" : "element ";
    fmt::print("{:<16}{}\n", fmt::format("{}max", label), number(s->max()));
    fmt::print("{:<16}{}\n", fmt::format("{}lowest", label), number(s->lowest()));
    fmt::print("{:<16}{}\n", "min_normal", number(s->min_normal()));
    fmt::print("{:<16}{}\n", "min_subnormal", number(s->min_subnormal()));
    fmt::print("{:<16}{}\n", "finite_values", s->finite_values());
    fmt::print("{:<16}{} / {}\n", "nan / inf", s->has_nan() ? "yes" : "no", s->has_inf() ? "yes" : "no");
    fmt::print("{:<16}{:.2f} binades ({:.1f} dB)\n", "dynamic_range", s->dynamic_range_binades(),
               j["dynamic_range_db"].get<double>());
  }
  if (auto b = f.block()) {
    fmt::print("{:<16}{} elements along axis {}\n", "block", b->params().block_size, b->params().axis);
    fmt::print("{:<16}{}{}\n", "scale", b->params().scale.to_string(), b->params().tensor_scale ? " under an fp32 tensor scale" : "");
  }
  if (auto m = f.bitmod()) {
    fmt::print("{:<16}{} weights, one of {} grids each, fp16 scale\n", "group", m->params().group_size, m->grids().size());
    for (const auto& g : m->grids()) {
      std::string v;
      for (double x : g) v += fmt::format("{:g} ", x);
      fmt::print("{:<16}{}\n", "", v);
    }
  }
}

void print_table(const Format& f) {
  const ScalarFormat* s = element_of(f);
  if (!s) throw FormatError(fmt::format("{} has no single code table (each group picks its own grid)", f.to_string()));
  if (s->bits() > 16) throw FormatError(fmt::format("{} has 2^{} codes; --table lists formats up to 16 bits", s->to_string(), s->bits()));
  fmt::print("{:>8}  {:>{}}  {}\n", "code", "bits", s->bits(), "value");
  for (uint64_t c = 0; c < s->code_count(); ++c) {
    std::string bits;
    for (int b = s->bits() - 1; b >= 0; --b) bits += ((c >> b) & 1) ? '1' : '0';
    fmt::print("{:>#8x}  {}  {:.17g}\n", c, bits, s->decode(static_cast<uint32_t>(c)));
  }
}

std::vector<float> samples(const std::string& dist, size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(n);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::exponential_distribution<double> expo(1.0);
  std::student_t_distribution<double> student(3.0);
  for (auto& x : v) {
    if (dist == "gaussian") x = static_cast<float>(normal(rng));
    else if (dist == "laplace") x = static_cast<float>((rng() & 1 ? 1 : -1) * expo(rng));
    else if (dist == "uniform") x = static_cast<float>(uniform(rng));
    else x = static_cast<float>(student(rng));
  }
  return v;
}

nlohmann::json sqnr_json(const Format& f, const FormatOptions& o) {
  nlohmann::json j;
  QuantizerConfig cfg(f);
  if (o.scale_rule == "mse") cfg.observer = ObserverKind::Mse;
  else if (o.scale_rule == "max") cfg.observer = ObserverKind::MinMax;
  else throw std::invalid_argument(fmt::format("--scale must be max or mse, got '{}'", o.scale_rule));
  for (const char* dist : {"gaussian", "laplace", "uniform", "student_t3"}) {
    const std::vector<float> x = samples(dist, o.samples, o.seed);
    std::vector<float> y(x.size());
    Quantizer q(cfg);
    q.observe(x, {});
    q.fake_quant(x, y, {});
    j[dist] = sqnr_db(x, y);
  }
  return j;
}

int run(const FormatOptions& o) {
  if (o.list) {
    if (o.json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const Preset& p : presets()) arr.push_back({{"name", p.name}, {"spec", Format::parse(p.spec).to_string()}, {"note", p.note}});
      fmt::print("{}\n", arr.dump(2));
      return 0;
    }
    fmt::print("{:<20} {:<88} {}\n", "preset", "canonical spec", "note");
    for (const Preset& p : presets()) fmt::print("{:<20} {:<88} {}\n", p.name, Format::parse(p.spec).to_string(), p.note);
    return 0;
  }
  if (o.spec.empty()) throw std::invalid_argument("give a format spec (e.g. `lowbit format int4`) or --list");
  const Format f = Format::parse(o.spec);
  if (o.json) {
    nlohmann::json j = properties_json(f);
    if (o.sqnr) j["sqnr_db"] = sqnr_json(f, o);
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  print_properties(f);
  if (o.sqnr) {
    const nlohmann::json j = sqnr_json(f, o);
    fmt::print("\nSQNR (dB), {} samples, seed {}, scale from {}:\n", o.samples, o.seed, o.scale_rule == "mse" ? "MSE search" : "absolute max");
    for (const auto& [k, v] : j.items()) fmt::print("  {:<12}{:8.2f}\n", k, v.get<double>());
  }
  if (o.table) {
    fmt::print("\n");
    print_table(f);
  }
  return 0;
}

}  // namespace

void add_format_command(CLI::App& app) {
  auto opts = std::make_shared<FormatOptions>();
  CLI::App* cmd = app.add_subcommand("format", "Show a number format: properties, every code, SQNR");
  cmd->add_option("spec", opts->spec, "Format spec, e.g. int4, e4m3:specials=fn, fixed<8,3,AP_RND_CONV,AP_SAT>, mxfp4");
  cmd->add_flag("--list", opts->list, "List the presets");
  cmd->add_flag("--table", opts->table, "List every code with its value");
  cmd->add_flag("--sqnr", opts->sqnr, "SQNR on Gaussian, Laplace, uniform and Student-t(3) samples");
  cmd->add_option("--scale", opts->scale_rule, "Scale rule for --sqnr: max (absolute max) or mse")->capture_default_str();
  cmd->add_option("--samples", opts->samples, "Samples per distribution for --sqnr")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Seed for --sqnr samples")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print a JSON object");
  cmd->callback([opts] {
    const int rc = run(*opts);
    if (rc) throw CLI::RuntimeError(rc);
  });
}

}  // namespace lowbit::cli
