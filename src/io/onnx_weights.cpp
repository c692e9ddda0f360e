#include "lowbit/io/onnx_weights.hpp"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

namespace lowbit {

std::vector<NamedTensor> load_onnx_initializers(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&f)) throw std::runtime_error(fmt::format("{}: not a valid ONNX model (protobuf parse failed)", path));
  if (!model.has_graph()) throw std::runtime_error(fmt::format("{}: ONNX model has no graph", path));
  std::vector<NamedTensor> out;
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    if (t.data_type() != onnx::TensorProto::FLOAT) continue;
    NamedTensor n;
    n.name = t.name();
    int64_t count = 1;
    for (int64_t d : t.dims()) {
      if (d < 0) throw std::runtime_error(fmt::format("{}: initializer '{}' has a negative dimension", path, t.name()));
      n.shape.push_back(d);
      count *= d;
    }
    if (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL)
      throw std::runtime_error(fmt::format("{}: initializer '{}' uses external data, not supported here", path, t.name()));
    if (!t.raw_data().empty()) {
      if (t.raw_data().size() != static_cast<size_t>(count) * 4)
        throw std::runtime_error(fmt::format("{}: initializer '{}' holds {} bytes, its shape needs {}", path, t.name(),
                                             t.raw_data().size(), count * 4));
      n.values.resize(static_cast<size_t>(count));
      std::memcpy(n.values.data(), t.raw_data().data(), t.raw_data().size());
    } else {
      if (t.float_data_size() != count)
        throw std::runtime_error(fmt::format("{}: initializer '{}' holds {} values, its shape needs {}", path, t.name(),
                                             t.float_data_size(), count));
      n.values.assign(t.float_data().begin(), t.float_data().end());
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace lowbit
