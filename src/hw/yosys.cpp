#include "lowbit/hw/yosys.hpp"

#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/hw/verilog.hpp"
#include "src/hw/process.hpp"

namespace lowbit::hw {

SynthCounts parse_yosys_stat(const std::string& text) {
  const size_t start = text.rfind("Number of cells:");
  if (start == std::string::npos) throw std::runtime_error("no 'Number of cells' in the Yosys statistics");
  SynthCounts c;
  std::istringstream lines(text.substr(start));
  std::string line;
  std::getline(lines, line);  // "Number of cells: N"
  // Then one "<cell type> <count>" line per type, up to the first line of another shape.
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string type, count, extra;
    if (!(fields >> type >> count) || (fields >> extra) || count.find_first_not_of("0123456789") != std::string::npos) break;
    c.cells[type] = std::stoi(count);
  }
  auto is = [](const std::string& type, std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (type == n) return true;
    return false;
  };
  for (const auto& [type, count] : c.cells) {
    if (is(type, {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"})) c.lut += count;
    else if (is(type, {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"})) c.ff += count;
    else if (is(type, {"CARRY4", "CARRY8"})) c.carry += count;
    else if (type.starts_with("DSP48")) c.dsp += count;
    else if (type.starts_with("MUXF")) c.muxf += count;
  }
  return c;
}

bool yosys_available() { return find_program("yosys").has_value(); }

std::string yosys_version() {
  const CommandResult r = run_command({"yosys", "-V"});
  if (r.exit_status != 0) throw std::runtime_error("cannot run yosys -V: " + r.output);
  std::string v = r.output;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

std::string synth_command(bool use_dsp) { return use_dsp ? "synth_xilinx -family xcup -top mac" : "synth_xilinx -family xcup -nodsp -top mac"; }

SynthCounts synthesize_mac(const MacConfig& c, bool use_dsp) {
  if (!yosys_available()) throw std::runtime_error("yosys is not installed (Debian package 'yosys')");
  const std::filesystem::path dir = make_temp_dir("yosys");
  write_text_file(dir / "mac.v", mac_verilog(c, "mac"));
  const std::string script = fmt::format("read_verilog mac.v; {}; tee -q -o stat.txt stat", synth_command(use_dsp));
  const CommandResult r = run_command({"yosys", "-q", "-p", script}, dir);
  if (r.exit_status != 0) throw std::runtime_error(fmt::format("yosys failed on {} in {}:\n{}", c.to_string(), dir.string(), r.output));
  SynthCounts counts = parse_yosys_stat(read_text_file(dir / "stat.txt"));
  std::filesystem::remove_all(dir);
  return counts;
}

MacConfig SynthRow::config() const {
  return make_mac_config(weight, activation, n, acc_request > 0 ? std::optional<int>(acc_request) : std::nullopt);
}

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quotes = false;
  for (char ch : line) {
    if (ch == '"') in_quotes = !in_quotes;
    else if (ch == ',' && !in_quotes) out.push_back(cur), cur.clear();
    else cur.push_back(ch);
  }
  out.push_back(cur);
  return out;
}

}  // namespace

std::string synth_csv_header() { return "weight,activation,n,acc_request,acc_bits,use_dsp,lut,ff,carry,dsp,muxf,yosys"; }

std::string synth_csv_line(const SynthRow& r) {
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}", quoted(r.weight), quoted(r.activation), r.n, r.acc_request, r.acc_bits,
                     r.use_dsp ? 1 : 0, r.counts.lut, r.counts.ff, r.counts.carry, r.counts.dsp, r.counts.muxf, quoted(r.yosys));
}

std::vector<SynthRow> read_synth_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  std::string line;
  if (!std::getline(in, line) || line != synth_csv_header())
    throw std::runtime_error(fmt::format("{}: expected the header '{}'", path.string(), synth_csv_header()));
  std::vector<SynthRow> rows;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const auto f = split_csv(line);
    if (f.size() != 12) throw std::runtime_error(fmt::format("{}:{}: expected 12 fields, got {}", path.string(), line_no, f.size()));
    try {
      SynthRow r;
      r.weight = f[0];
      r.activation = f[1];
      r.n = std::stoull(f[2]);
      r.acc_request = std::stoi(f[3]);
      r.acc_bits = std::stoi(f[4]);
      r.use_dsp = f[5] == "1";
      r.counts.lut = std::stoi(f[6]);
      r.counts.ff = std::stoi(f[7]);
      r.counts.carry = std::stoi(f[8]);
      r.counts.dsp = std::stoi(f[9]);
      r.counts.muxf = std::stoi(f[10]);
      r.yosys = f[11];
      rows.push_back(std::move(r));
    } catch (const std::logic_error& e) {
      throw std::runtime_error(fmt::format("{}:{}: bad number ({})", path.string(), line_no, e.what()));
    }
  }
  return rows;
}

}  // namespace lowbit::hw
