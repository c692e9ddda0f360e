#pragma once
// ONNX import and export through the protobuf definitions of libonnx-dev.
#include <string>

#include "lowbit/graph/graph.hpp"

namespace onnx {
class ModelProto;
class TensorProto;
}  // namespace onnx

namespace lowbit {

// Reads an ONNX model file. Throws std::runtime_error naming the file and what is wrong
// (cannot open, not a model, unsupported tensor type, external data, sizes that do not match).
Graph load_onnx(const std::string& path);
Graph graph_from_proto(const onnx::ModelProto& model);
Tensor tensor_from_proto(const onnx::TensorProto& t);
// Reads a TensorProto file (the .pb files of the ONNX test suite).
Tensor load_tensor_pb(const std::string& path, std::string* name = nullptr);

void save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path);

void save_onnx(const Graph& g, const std::string& path);
void graph_to_proto(const Graph& g, onnx::ModelProto& model);
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto& out);

}  // namespace lowbit
