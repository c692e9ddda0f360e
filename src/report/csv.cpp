#include "lowbit/report/csv.hpp"

#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace lowbit::report {

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string csv_number(double v) { return std::isnan(v) ? std::string() : fmt::format("{}", v); }

void write_points_csv(std::ostream& out, const ReportData& data) {
  std::vector<std::string> header = {"id", "key", "model", "weight_format", "activation_format", "granularity", "technique",
                                     "recipe", "family", "top1", "top5", "images", "macs", "bit_ops", "weight_bits",
                                     "activation_bits", "lut", "ff", "carry", "dsp", "quantize_seconds", "eval_seconds",
                                     "lowbit_version", "host", "finished_at", "rank"};
  for (const AxisFront& f : data.fronts) header.push_back("on_front_" + f.axis.name);
  const auto write_row = [&out](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << csv_field(fields[i]);
    out << "\r\n";
  };
  write_row(header);
  for (size_t i = 0; i < data.points.size(); ++i) {
    const dse::PointResult& p = data.points[i];
    std::vector<std::string> row = {std::to_string(p.id), p.key, p.model, p.weight_format, p.activation_format, p.granularity,
                                    p.technique, p.recipe.dump(), std::string(family_name(data.families[i])), csv_number(p.top1),
                                    csv_number(p.top5), std::to_string(p.images), csv_number(p.macs), csv_number(p.bit_ops),
                                    csv_number(p.weight_bits), csv_number(p.activation_bits), csv_number(p.lut), csv_number(p.ff),
                                    csv_number(p.carry), csv_number(p.dsp), csv_number(p.quantize_seconds),
                                    csv_number(p.eval_seconds), p.lowbit_version, p.host, p.finished_at, std::to_string(p.rank)};
    for (const AxisFront& f : data.fronts) row.push_back(f.on_front[i] ? "1" : "0");
    write_row(row);
  }
}

}  // namespace lowbit::report
