// `lowbit cost`: hardware cost of a model, and the MAC-unit tools behind it.
//   lowbit cost MODEL --w int4 --a int8 [--parallelism P|channel]   per-layer table
//   lowbit cost mac --w F --a F --n N [--acc-bits W]                   accumulator and modelled cost
//   lowbit cost verilog --w F --a F --n N [-o mac.v]                   generated Verilog
//   lowbit cost check --w F --a F --n N | --sweep                      Verilator bit-exact check
//   lowbit cost synth --w F --a F --n N [--nodsp]                      Yosys counts
//   lowbit cost sweep -o data/hw/yosys_xcup.csv                        synthesis sweep (resumable)
//   lowbit cost fit data/hw/yosys_xcup.csv [-o model.json]             least-squares fit and held-out error
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "lowbit/hw/cost_model.hpp"
#include "lowbit/hw/fit.hpp"
#include "lowbit/hw/mac_config.hpp"
#include "lowbit/hw/model_cost.hpp"
#include "lowbit/hw/sweep.hpp"
#include "lowbit/hw/verilator_check.hpp"
#include "lowbit/hw/verilog.hpp"
#include "lowbit/hw/yosys.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

struct MacOptions {
  std::string weight = "int8", activation = "int8";
  uint64_t n = 64;
  int acc_bits = 0;
  hw::MacConfig config() const {
    return hw::make_mac_config(weight, activation, n, acc_bits > 0 ? std::optional<int>(acc_bits) : std::nullopt);
  }
};

void add_mac_options(CLI::App* cmd, MacOptions& o) {
  cmd->add_option("--w", o.weight, "weight format (integer, minifloat or fixed point)")->required();
  cmd->add_option("--a", o.activation, "activation format")->required();
  cmd->add_option("--n", o.n, "dot-product length")->capture_default_str();
  cmd->add_option("--acc-bits", o.acc_bits, "accumulator width (default: exact; narrower drops low bits)");
}

void print_mac(const MacOptions& o, const std::string& model_path) {
  const hw::MacConfig c = o.config();
  const hw::AccumulatorPlan p = hw::plan_accumulator(c);
  fmt::print("mac             {}\n", c.to_string());
  fmt::print("accumulator     {} bits ({}), lsb 2^{}\n", p.bits, p.is_signed ? "two's complement" : "unsigned", p.lsb_exponent);
  fmt::print("exact width     {}\n", p.exact_bits);
  fmt::print("issue formula   {}\n", p.formula_bits);
  if (p.dropped_lsbs) fmt::print("dropped lsbs    {}\n", p.dropped_lsbs);
  fmt::print("product range   [{}, {}] x 2^{}\n", p.min_product.to_string(), p.max_product.to_string(), p.product_lsb_exponent);
  const hw::CostModel model = model_path.empty() ? hw::CostModel::builtin() : hw::CostModel::load(model_path);
  for (bool dsp : {true, false}) {
    const hw::MacCost cost = model.predict(c, dsp);
    fmt::print("{:<15} LUT {:.0f}  FF {:.0f}  CARRY {:.0f}  DSP {:.0f}\n", dsp ? "xcup (DSP)" : "xcup (no DSP)", cost.lut, cost.ff, cost.carry,
               cost.dsp);
  }
}

void run_check(const MacOptions& o, bool sweep, int exhaustive_bits, uint64_t random, int batch) {
  std::vector<hw::MacConfig> configs = sweep ? hw::sweep_configs() : std::vector<hw::MacConfig>{o.config()};
  hw::VerilatorCheckOptions options;
  options.exhaustive_max_bits = exhaustive_bits;
  options.random_products = random;
  size_t failed = 0, total = 0;
  for (size_t start = 0; start < configs.size(); start += static_cast<size_t>(batch)) {
    const std::vector<hw::MacConfig> part(configs.begin() + static_cast<long>(start),
                                          configs.begin() + static_cast<long>(std::min(configs.size(), start + static_cast<size_t>(batch))));
    const hw::VerilatorCheckReport report = hw::verilator_check(part, options);
    for (const hw::MacCheckResult& r : report.results) {
      ++total;
      if (!r.passed()) ++failed;
      fmt::print("{:<4} {:<60} {} {:>7} products{}\n", r.passed() ? "ok" : "FAIL", r.config, r.exhaustive ? "exhaustive" : "random    ",
                 r.products, r.passed() ? "" : "  " + r.first_mismatch);
    }
    fmt::print("  (verilator build {:.1f} s, simulation {:.2f} s{})\n", report.build_seconds, report.run_seconds,
               report.work_dir.empty() ? "" : ", kept " + report.work_dir.string());
    std::fflush(stdout);
  }
  fmt::print("{} of {} MAC configurations bit-exact\n", total - failed, total);
  if (failed) throw std::runtime_error(fmt::format("{} MAC configurations differ from the emulation", failed));
}

}  // namespace

void add_cost_command(CLI::App& app) {
  auto* cost = app.add_subcommand("cost", "hardware cost: per-layer MACs, bit-ops, memory and FPGA resources; MAC-unit tools");
  cost->require_subcommand(0, 1);

  auto model = std::make_shared<hw::ModelCostOptions>();
  auto model_path = std::make_shared<std::string>();
  auto parallelism = std::make_shared<std::string>("channel");
  auto coeffs = std::make_shared<std::string>();
  cost->add_option("model", *model_path, "ONNX model");
  cost->add_option("--w", model->weight, "weight format")->capture_default_str();
  cost->add_option("--a", model->activation, "activation format")->capture_default_str();
  cost->add_option("--parallelism", *parallelism,
                   "MAC units per layer: a number P (min(P, the layer's output channels x output pixels)), or 'channel' "
                   "(one per output channel)")
      ->capture_default_str();
  cost->add_option("--model-json", *coeffs, "cost-model coefficients (default: the built-in fit of data/hw/cost_model_xcup.json)");
  auto no_dsp = std::make_shared<bool>(false);
  cost->add_flag("--nodsp", *no_dsp, "cost the MACs without DSP blocks");
  cost->callback([cost, model, model_path, parallelism, coeffs, no_dsp] {
    if (!cost->get_subcommands().empty()) return;
    if (model_path->empty()) throw std::invalid_argument("cost: give an ONNX model (or a verb: mac, verilog, check, synth, sweep, fit)");
    model->parallelism = hw::parse_parallelism(*parallelism);
    model->use_dsp = !*no_dsp;
    const hw::CostModel cm = coeffs->empty() ? hw::CostModel::builtin() : hw::CostModel::load(*coeffs);
    const hw::ModelCost mc = hw::model_cost(*model_path, *model, cm);
    std::fputs(hw::format_model_cost(mc).c_str(), stdout);
  });

  auto mac = std::make_shared<MacOptions>();
  auto* mac_cmd = cost->add_subcommand("mac", "accumulator width and modelled LUT / FF / CARRY / DSP of one MAC unit");
  add_mac_options(mac_cmd, *mac);
  auto mac_json = std::make_shared<std::string>();
  mac_cmd->add_option("--model-json", *mac_json, "cost-model coefficients");
  mac_cmd->callback([mac, mac_json] { print_mac(*mac, *mac_json); });

  auto verilog = std::make_shared<MacOptions>();
  auto out = std::make_shared<std::string>();
  auto* verilog_cmd = cost->add_subcommand("verilog", "Verilog-2005 of one MAC unit (module mac)");
  add_mac_options(verilog_cmd, *verilog);
  verilog_cmd->add_option("-o,--output", *out, "output file (default: stdout)");
  verilog_cmd->callback([verilog, out] {
    const std::string text = hw::mac_verilog(verilog->config());
    if (out->empty()) {
      std::fputs(text.c_str(), stdout);
      return;
    }
    std::ofstream f(*out);
    f << text;
    if (!f) throw std::runtime_error("cannot write " + *out);
  });

  auto check = std::make_shared<MacOptions>();
  auto check_sweep = std::make_shared<bool>(false);
  auto exhaustive_bits = std::make_shared<int>(12);
  auto random = std::make_shared<uint64_t>(20000);
  auto batch = std::make_shared<int>(24);
  auto* check_cmd = cost->add_subcommand("check", "compare the generated Verilog with the C++ emulation in Verilator, bit for bit");
  check_cmd->add_option("--w", check->weight, "weight format");
  check_cmd->add_option("--a", check->activation, "activation format");
  check_cmd->add_option("--n", check->n, "dot-product length")->capture_default_str();
  check_cmd->add_option("--acc-bits", check->acc_bits, "accumulator width");
  check_cmd->add_flag("--sweep", *check_sweep, "check every configuration of the synthesis sweep");
  check_cmd->add_option("--exhaustive-bits", *exhaustive_bits, "every code pair when the two codes have at most this many bits together")
      ->capture_default_str();
  check_cmd->add_option("--random", *random, "random products otherwise")->capture_default_str();
  check_cmd->add_option("--batch", *batch, "MAC units per Verilator model")->capture_default_str();
  check_cmd->callback([check, check_sweep, exhaustive_bits, random, batch] {
    run_check(*check, *check_sweep, *exhaustive_bits, *random, std::max(1, *batch));
  });

  auto synth = std::make_shared<MacOptions>();
  auto synth_nodsp = std::make_shared<bool>(false);
  auto* synth_cmd = cost->add_subcommand("synth", "synthesize one MAC unit with Yosys (synth_xilinx -family xcup) and print its cells");
  add_mac_options(synth_cmd, *synth);
  synth_cmd->add_flag("--nodsp", *synth_nodsp, "no DSP48E2 mapping");
  synth_cmd->callback([synth, synth_nodsp] {
    const hw::SynthCounts c = hw::synthesize_mac(synth->config(), !*synth_nodsp);
    fmt::print("{}: LUT {} FF {} CARRY {} DSP {} MUXF {}\n", hw::synth_command(!*synth_nodsp), c.lut, c.ff, c.carry, c.dsp, c.muxf);
    for (const auto& [type, count] : c.cells) fmt::print("  {:<10} {}\n", type, count);
  });

  auto sweep_csv = std::make_shared<std::string>();
  auto* sweep_cmd = cost->add_subcommand("sweep", "synthesize the sweep's configurations (with and without DSP) into a CSV; resumable");
  sweep_cmd->add_option("-o,--output", *sweep_csv, "CSV file (rows already there are kept and skipped)")->required();
  sweep_cmd->callback([sweep_csv] {
    const int added = hw::run_synth_sweep(hw::sweep_configs(), *sweep_csv, stdout);
    fmt::print("{} rows added to {}\n", added, *sweep_csv);
  });

  auto fit_csv = std::make_shared<std::string>();
  auto fit_out = std::make_shared<std::string>();
  auto* fit_cmd = cost->add_subcommand("fit", "fit the analytical model to a synthesis CSV; print the held-out error table");
  fit_cmd->add_option("csv", *fit_csv, "synthesis CSV (data/hw/yosys_xcup.csv)")->required();
  fit_cmd->add_option("-o,--output", *fit_out, "write the coefficients as JSON");
  fit_cmd->callback([fit_csv, fit_out] {
    const hw::FitResult fit = hw::fit_cost_model(hw::read_synth_csv(*fit_csv));
    std::fputs(hw::format_fit_report(fit).c_str(), stdout);
    if (!fit_out->empty()) {
      std::ofstream f(*fit_out);
      f << fit.model.to_json() << "\n";
      if (!f) throw std::runtime_error("cannot write " + *fit_out);
      fmt::print("coefficients written to {}\n", *fit_out);
    }
  });
}

}  // namespace lowbit::cli
