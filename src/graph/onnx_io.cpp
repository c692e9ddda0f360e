#include "lowbit/graph/onnx_io.hpp"

#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

namespace lowbit {

namespace {

std::optional<DType> dtype_from_onnx(int t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return DType::F32;
    case onnx::TensorProto::DOUBLE: return DType::F64;
    case onnx::TensorProto::INT8: return DType::I8;
    case onnx::TensorProto::UINT8: return DType::U8;
    case onnx::TensorProto::INT16: return DType::I16;
    case onnx::TensorProto::UINT16: return DType::U16;
    case onnx::TensorProto::INT32: return DType::I32;
    case onnx::TensorProto::INT64: return DType::I64;
    case onnx::TensorProto::BOOL: return DType::Bool;
    default: return std::nullopt;
  }
}

int dtype_to_onnx(DType t) {
  switch (t) {
    case DType::F32: return onnx::TensorProto::FLOAT;
    case DType::F64: return onnx::TensorProto::DOUBLE;
    case DType::I8: return onnx::TensorProto::INT8;
    case DType::U8: return onnx::TensorProto::UINT8;
    case DType::I16: return onnx::TensorProto::INT16;
    case DType::U16: return onnx::TensorProto::UINT16;
    case DType::I32: return onnx::TensorProto::INT32;
    case DType::I64: return onnx::TensorProto::INT64;
    case DType::Bool: return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

std::string onnx_type_name(int t) {
  const std::string& n = onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(t));
  return n.empty() ? fmt::format("type {}", t) : n;
}

template <class T, class Field>
void copy_field(const Field& field, Tensor& out, const std::string& name) {
  if (static_cast<int64_t>(field.size()) != out.size())
    throw std::runtime_error(fmt::format("tensor '{}' holds {} values, its shape {} needs {}", name, field.size(),
                                         shape_string(out.shape()), out.size()));
  T* d = out.data<T>();
  for (int i = 0; i < field.size(); ++i) d[i] = static_cast<T>(field.Get(i));
}

ValueInfo value_info_from_proto(const onnx::ValueInfoProto& v) {
  ValueInfo info;
  info.name = v.name();
  if (v.has_type() && !v.type().has_tensor_type())
    throw std::runtime_error(fmt::format("value '{}' is not a tensor (sequence, map or optional), not supported", v.name()));
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    std::optional<DType> t = dtype_from_onnx(tt.elem_type());
    if (!t) throw std::runtime_error(fmt::format("value '{}' has element type {}, not supported", v.name(), onnx_type_name(tt.elem_type())));
    info.dtype = *t;
    if (tt.has_shape()) {
      info.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
        info.dim_params.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
  }
  return info;
}

void value_info_to_proto(const ValueInfo& info, onnx::ValueInfoProto& v) {
  v.set_name(info.name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_to_onnx(info.dtype));
  if (!info.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (size_t k = 0; k < info.dims.size(); ++k) {
    auto* d = shape->add_dim();
    if (info.dims[k] >= 0)
      d->set_dim_value(info.dims[k]);
    else if (k < info.dim_params.size() && !info.dim_params[k].empty())
      d->set_dim_param(info.dim_params[k]);
  }
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& node_label) {
  using A = onnx::AttributeProto;
  switch (a.type()) {
    case A::INT: return {a.i()};
    case A::FLOAT: return {a.f()};
    case A::STRING: return {a.s()};
    case A::INTS: return {std::vector<int64_t>(a.ints().begin(), a.ints().end())};
    case A::FLOATS: return {std::vector<float>(a.floats().begin(), a.floats().end())};
    case A::STRINGS: return {std::vector<std::string>(a.strings().begin(), a.strings().end())};
    case A::TENSOR: return {tensor_from_proto(a.t())};
    default:
      throw std::runtime_error(fmt::format("{}: attribute '{}' has a kind lowbit does not read ({})", node_label, a.name(),
                                           A::AttributeType_Name(a.type())));
  }
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& t) {
  const std::string& name = t.name();
  if (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL)
    throw std::runtime_error(fmt::format("tensor '{}' uses external data, not supported", name));
  std::optional<DType> dtype = dtype_from_onnx(t.data_type());
  if (!dtype) throw std::runtime_error(fmt::format("tensor '{}' has element type {}, not supported", name, onnx_type_name(t.data_type())));
  Shape shape(t.dims().begin(), t.dims().end());
  for (int64_t d : shape)
    if (d < 0) throw std::runtime_error(fmt::format("tensor '{}' has a negative dimension in {}", name, shape_string(shape)));
  // Guard against absurd sizes from corrupt files before allocating.
  long double count = 1;
  for (int64_t d : shape) count *= static_cast<long double>(d);
  if (count > static_cast<long double>(1) * (int64_t{1} << 34))
    throw std::runtime_error(fmt::format("tensor '{}' has an implausible shape {}", name, shape_string(shape)));
  if (t.has_raw_data()) {
    size_t need = static_cast<size_t>(count) * dtype_size(*dtype);
    if (t.raw_data().size() != need)
      throw std::runtime_error(fmt::format("tensor '{}' holds {} bytes, its shape {} of {} needs {}", name, t.raw_data().size(),
                                           shape_string(shape), to_string(*dtype), need));
    Tensor out(*dtype, shape);
    std::memcpy(out.raw(), t.raw_data().data(), need);
    return out;
  }
  // The typed field must hold exactly the shape's count before anything is allocated.
  int64_t held = 0;
  switch (*dtype) {
    case DType::F32: held = t.float_data_size(); break;
    case DType::F64: held = t.double_data_size(); break;
    case DType::I64: held = t.int64_data_size(); break;
    default: held = t.int32_data_size(); break;
  }
  if (static_cast<long double>(held) != count)
    throw std::runtime_error(fmt::format("tensor '{}' holds {} values, its shape {} needs {}", name, held, shape_string(shape),
                                         static_cast<int64_t>(count)));
  Tensor out(*dtype, shape);
  switch (*dtype) {
    case DType::F32: copy_field<float>(t.float_data(), out, name); break;
    case DType::F64: copy_field<double>(t.double_data(), out, name); break;
    case DType::I64: copy_field<int64_t>(t.int64_data(), out, name); break;
    case DType::I8: copy_field<int8_t>(t.int32_data(), out, name); break;
    case DType::U8: copy_field<uint8_t>(t.int32_data(), out, name); break;
    case DType::I16: copy_field<int16_t>(t.int32_data(), out, name); break;
    case DType::U16: copy_field<uint16_t>(t.int32_data(), out, name); break;
    case DType::I32: copy_field<int32_t>(t.int32_data(), out, name); break;
    case DType::Bool: copy_field<bool>(t.int32_data(), out, name); break;
  }
  return out;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto& out) {
  out.Clear();
  out.set_name(name);
  out.set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) out.add_dims(d);
  out.set_raw_data(t.raw(), t.bytes());
}

Graph graph_from_proto(const onnx::ModelProto& model) {
  if (!model.has_graph()) throw std::runtime_error("the model has no graph");
  Graph g;
  g.ir_version = model.ir_version();
  g.producer = model.producer_name();
  g.opset = 0;
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  if (g.opset == 0) g.opset = 1;
  const onnx::GraphProto& gp = model.graph();
  g.name = gp.name();
  for (const auto& t : gp.initializer()) g.initializers[t.name()] = tensor_from_proto(t);
  for (const auto& v : gp.input())
    if (!g.initializers.count(v.name())) g.inputs.push_back(value_info_from_proto(v));
  for (const auto& v : gp.output()) g.outputs.push_back(value_info_from_proto(v));
  for (const auto& v : gp.value_info())  // annotations only: keep the tensor-typed ones
    if (v.type().has_tensor_type() && dtype_from_onnx(v.type().tensor_type().elem_type())) g.value_info.push_back(value_info_from_proto(v));
  if (gp.sparse_initializer_size() > 0) throw std::runtime_error("sparse initializers are not supported");
  for (const auto& np : gp.node()) {
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) n.attrs[a.name()] = attribute_from_proto(a, n.label());
    g.nodes.push_back(std::move(n));
  }
  g.sort_topologically();
  return g;
}

Graph load_onnx(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&f)) throw std::runtime_error(fmt::format("{}: not a valid ONNX model (truncated or corrupt protobuf)", path));
  try {
    return graph_from_proto(model);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

Tensor load_tensor_pb(const std::string& path, std::string* name) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  onnx::TensorProto t;
  if (!t.ParseFromIstream(&f)) throw std::runtime_error(fmt::format("{}: not a valid TensorProto", path));
  if (name) *name = t.name();
  try {
    return tensor_from_proto(t);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

void save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  tensor_to_proto(t, name, p);
  std::ofstream f(path, std::ios::binary);
  if (!f || !p.SerializeToOstream(&f)) throw std::runtime_error(fmt::format("{}: cannot write", path));
}

void graph_to_proto(const Graph& g, onnx::ModelProto& model) {
  model.Clear();
  model.set_ir_version(g.ir_version);
  model.set_producer_name("lowbit");
  model.set_producer_version(LOWBIT_VERSION);
  auto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(g.opset);
  std::set<std::string> domains;
  for (const Node& n : g.nodes)
    if (!n.domain.empty()) domains.insert(n.domain);
  for (const std::string& d : domains) {
    auto* o = model.add_opset_import();
    o->set_domain(d);
    o->set_version(1);
  }
  onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name(g.name);
  for (const ValueInfo& v : g.inputs) value_info_to_proto(v, *gp->add_input());
  for (const ValueInfo& v : g.outputs) value_info_to_proto(v, *gp->add_output());
  for (const ValueInfo& v : g.value_info) value_info_to_proto(v, *gp->add_value_info());
  for (const auto& [name, t] : g.initializers) tensor_to_proto(t, name, *gp->add_initializer());
  for (const Node& n : g.nodes) {
    onnx::NodeProto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [name, a] : n.attrs) {
      onnx::AttributeProto* ap = np->add_attribute();
      ap->set_name(name);
      using A = onnx::AttributeProto;
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, int64_t>) {
              ap->set_type(A::INT);
              ap->set_i(v);
            } else if constexpr (std::is_same_v<V, float>) {
              ap->set_type(A::FLOAT);
              ap->set_f(v);
            } else if constexpr (std::is_same_v<V, std::string>) {
              ap->set_type(A::STRING);
              ap->set_s(v);
            } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
              ap->set_type(A::INTS);
              for (auto x : v) ap->add_ints(x);
            } else if constexpr (std::is_same_v<V, std::vector<float>>) {
              ap->set_type(A::FLOATS);
              for (auto x : v) ap->add_floats(x);
            } else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
              ap->set_type(A::STRINGS);
              for (const auto& x : v) ap->add_strings(x);
            } else {
              ap->set_type(A::TENSOR);
              tensor_to_proto(v, "", *ap->mutable_t());
            }
          },
          a.value);
    }
  }
}

void save_onnx(const Graph& g, const std::string& path) {
  onnx::ModelProto model;
  graph_to_proto(g, model);
  std::ofstream f(path, std::ios::binary);
  if (!f || !model.SerializeToOstream(&f)) throw std::runtime_error(fmt::format("{}: cannot write", path));
}

}  // namespace lowbit
