#include "lowbit/ptq/layer_report.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "lowbit/runtime/kernel.hpp"
#include "lowbit/runtime/session.hpp"

namespace lowbit {

namespace {

// Runs a graph unfused (every layer output exists) and keeps the named values of the last batch.
class ValueRecorder {
 public:
  ValueRecorder(const Graph& g, const std::set<std::string>& names, int threads) : session_(g, SessionOptions{threads, false}) {
    session_.set_value_hook(names, [this](const std::string& name, const Tensor& t) {
      if (t.dtype() != DType::F32) return;
      const Tensor plain = t.channels_last() ? to_plain(t) : t;
      values_[name].assign(plain.data<float>(), plain.data<float>() + plain.size());
    });
  }
  const std::map<std::string, std::vector<float>>& run(const Tensor& batch) {
    values_.clear();
    session_.run(batch);
    return values_;
  }

 private:
  Session session_;
  std::map<std::string, std::vector<float>> values_;
};

std::string number_or_dash(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "-" : fmt::format("{:.3g}", it->second);
}

}  // namespace

std::map<std::string, double> relative_output_errors(const Graph& reference, const Graph& quantized,
                                                     const std::vector<std::string>& outputs, const std::vector<Tensor>& batches,
                                                     int threads) {
  std::set<std::string> names(outputs.begin(), outputs.end());
  std::map<std::string, std::pair<double, double>> sums;  // error, signal
  ValueRecorder float_values(reference, names, threads), quantized_values(quantized, names, threads);
  for (const Tensor& b : batches) {
    const auto& f = float_values.run(b);
    const auto& q = quantized_values.run(b);
    for (const std::string& name : outputs) {
      auto fi = f.find(name), qi = q.find(name);
      if (fi == f.end() || qi == q.end() || fi->second.size() != qi->second.size()) continue;
      auto& [err, sig] = sums[name];
      for (size_t i = 0; i < fi->second.size(); ++i) {
        double d = static_cast<double>(qi->second[i]) - fi->second[i];
        err += d * d;
        sig += static_cast<double>(fi->second[i]) * fi->second[i];
      }
    }
  }
  std::map<std::string, double> out;
  for (const auto& [name, s] : sums) out[name] = s.second > 0 ? s.first / s.second : 0.0;
  return out;
}

std::vector<std::string> quantized_layer_outputs(const QuantizeGraphResult& q) {
  std::vector<std::string> out;
  for (const LayerQuantReport& r : q.layers)
    if (r.weight_format != "float" || r.activation_format != "float") out.push_back(r.output);
  return out;
}

std::string scale_rule(const QuantizerConfig& c) {
  if (!c.format.scalar()) return "in format";
  std::string g(to_string(c.granularity));
  if (c.granularity == Granularity::Group) g += fmt::format("{}", c.group_size);
  std::string obs(to_string(c.observer));
  if (c.observer == ObserverKind::Percentile) obs += fmt::format("{:g}", c.percentile);
  return fmt::format("{}/{}/{}{}", g, obs, to_string(c.scale_storage), c.symmetric ? "" : "/asym");
}

std::string layer_table(const QuantizeGraphResult& q, const std::map<std::string, double>& error_before,
                        const std::map<std::string, double>& error_after) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"layer", "op", "weights", "scale rule", "rounding", "activations", "W SQNR dB"};
  if (!error_before.empty()) head.push_back("out err RTN");
  if (!error_after.empty()) head.push_back(error_before.empty() ? "out err" : "out err after");
  rows.push_back(head);
  for (const LayerQuantReport& r : q.layers) {
    std::vector<std::string> row = {r.node.empty() ? r.output : r.node, r.op, r.weight_format,
                                    r.weight_config ? scale_rule(*r.weight_config) : "-", r.rounding, r.activation_format,
                                    r.weight_format == "float" ? "-" : fmt::format("{:.1f}", r.weight_sqnr_db)};
    if (!error_before.empty()) row.push_back(number_or_dash(error_before, r.output));
    if (!error_after.empty()) row.push_back(number_or_dash(error_after, r.output));
    rows.push_back(row);
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : rows)
    for (size_t k = 0; k < row.size(); ++k) width[k] = std::max(width[k], row[k].size());
  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t k = 0; k < rows[i].size(); ++k) out += fmt::format("{:<{}}{}", rows[i][k], width[k], k + 1 < rows[i].size() ? "  " : "\n");
    if (i == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      out += std::string(total - 2, '-') + "\n";
    }
  }
  return out;
}

}  // namespace lowbit
