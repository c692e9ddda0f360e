#include "lowbit/llm/packed_linears.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::llm {

PackedLinears::PackedLinears(const LlamaModel& m, kernels::StorageFormat format) : format_(format), layers_(m.layers.size()) {
  for (size_t l = 0; l < m.layers.size(); ++l)
    for (LinearKind k : kLinearKinds) {
      const Linear& lin = m.layers[l][k];
      try {
        layers_[l][static_cast<size_t>(k)] = kernels::pack(lin.w, lin.rows, lin.cols, format);
      } catch (const std::exception& e) {
        throw std::invalid_argument(fmt::format("packing layer {} {} as {}: {}", l, to_string(k), kernels::to_string(format), e.what()));
      }
    }
}

size_t PackedLinears::size_bytes() const {
  size_t total = 0;
  for (const auto& layer : layers_)
    for (const auto& matrix : layer) total += matrix.size_bytes();
  return total;
}

std::string storage_emulation_config(kernels::StorageFormat format) {
  using kernels::StorageFormat;
  switch (format) {
    case StorageFormat::F32: return "";
    case StorageFormat::Int8: return "w=int8;group=32;a=int8";
    case StorageFormat::Int4G32: return "w=int4;group=32;a=int8";
    case StorageFormat::Int4G128: return "w=int4;group=128;a=int8";
    case StorageFormat::Int3: return "w=int3;group=32;a=int8";
    case StorageFormat::Int2:
    case StorageFormat::Int2Lut: return "w=int2;group=32;a=int8";
    case StorageFormat::Mxfp4: return "w=mxfp4";
    case StorageFormat::Nvfp4: return "w=nvfp4";
    case StorageFormat::Mxfp4A8: return "w=mxfp4;a=int8";
    case StorageFormat::Nvfp4A8: return "w=nvfp4;a=int8";
  }
  throw std::invalid_argument("unknown storage format");
}

}  // namespace lowbit::llm
