#pragma once
// Reads the float32 initializers of an ONNX model (name, shape, values), enough to study weight
// quantization. The full ONNX importer lives with the model engine.
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Throws std::runtime_error naming the file (missing, truncated, not ONNX) or the initializer.
std::vector<NamedTensor> load_onnx_initializers(const std::string& path);

}  // namespace lowbit
