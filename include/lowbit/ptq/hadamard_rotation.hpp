#pragma once
// Hadamard rotation of layer inputs (QuaRot, Ashkboos et al. 2024; QuIP#): for a layer y = x W^T
// with input dimension K and an orthonormal K x K matrix R, y = (x R) (W R)^T. The float function
// is unchanged; the layer then sees x R, whose outliers are spread over all K channels, and its
// weight's input dimension is rotated the same way, so both are quantized in the rotated basis
// (by whatever format and rounding the recipe names afterwards).
//
// R = D H / sqrt(b) on each diagonal block: H the Sylvester Hadamard matrix of size b (H[i][j] =
// (-1)^popcount(i & j)), b the largest power of two that divides K (R is block diagonal with K / b
// blocks when K is not a power of two), D an optional diagonal of random signs. Layers with K odd
// are skipped and reported. The random signs matter after ReLU: x >= 0 makes the first column
// of a plain Sylvester block, the channel sum / sqrt(b), a new outlier.
//
// Layers: Gemm (transA = 0) and MatMul with a 2-D float weight initializer, and Conv with group 1
// (any kernel size; the rotation acts on the channel axis, pixel by pixel). Where the layer's input
// is the only use of the output of another such layer with no operator between (Gemm / MatMul into
// Gemm / MatMul, Conv into Conv), R folds into that producer's weight and bias and no node is
// added. Otherwise a rotation node is inserted before the layer: MatMul(x, R) for Gemm / MatMul,
// a 1x1 Conv without bias for Conv. quantizable_layers() does not count rotation nodes, so the
// layer's activation quantizer sits after the rotation and the rotation itself stays float.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/graph/graph.hpp"
#include "lowbit/ptq/recipe.hpp"

namespace lowbit {

struct HadamardOptions {
  bool convolutions = true;  // also rotate the input channels of Conv layers (group 1)
  bool random_signs = true;  // D = random +-1 diagonal (seeded); false: plain Sylvester blocks
  uint32_t seed = 0;
};

// The options a recipe's "hadamard" pass names; throws std::runtime_error for a seed that is not
// an integer in [0, 2^32).
HadamardOptions hadamard_options(const PassSpec& p);

class HadamardRotation {
 public:
  // Throws std::invalid_argument when `size` is odd or below 2.
  HadamardRotation(int64_t size, bool random_signs, uint32_t seed);
  int64_t size() const { return size_; }
  int64_t block() const { return block_; }  // largest power of two dividing size
  // R, row-major size x size.
  std::vector<float> matrix() const;
  // v <- v R for one row vector of size() values (a fast Walsh-Hadamard transform per block).
  void apply(std::span<double> v) const;

 private:
  int64_t size_, block_;
  std::vector<int8_t> signs_;
};

// True for a MatMul by a constant, or a bias-free Conv with a 1 x .. x 1 kernel (group 1, stride 1,
// no padding) and a constant weight, whose matrix is block diagonal with every entry of each b x b block equal to
// +-1/sqrt(b) (b a power of two >= 2): a Hadamard rotation, not a layer to quantize.
bool is_hadamard_rotation(const Graph& g, const Node& n);

struct HadamardReport {
  struct Rotated {
    std::string layer;        // label of the rotated layer
    int64_t channels = 0;     // K
    int64_t block = 0;        // b
    std::string rotation_by;  // label of the producer R was folded into, or of the inserted node
    bool folded = false;
  };
  std::vector<Rotated> rotated;
  std::vector<std::pair<std::string, std::string>> skipped;  // layer label, why
};

// Rewrites the float graph in place (topologically sorted on return).
HadamardReport rotate_hadamard(Graph& g, const HadamardOptions& o);

}  // namespace lowbit
