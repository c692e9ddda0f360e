// libFuzzer target: the ONNX loader must turn any byte string into a Graph or a std::runtime_error,
// never a crash, a hang or a read out of bounds. Built and run by scripts/fuzz.
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include <onnx/onnx_pb.h>

#include "lowbit/graph/onnx_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onnx::ModelProto model;
  if (!model.ParseFromArray(data, static_cast<int>(size))) return 0;
  try {
    lowbit::Graph g = lowbit::graph_from_proto(model);
    // Write it back and read it again: export must accept whatever import produced.
    onnx::ModelProto again;
    lowbit::graph_to_proto(g, again);
    lowbit::graph_from_proto(again);
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
