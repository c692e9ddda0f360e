#include "lowbit/ptq/hadamard_rotation.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit {

HadamardRotation::HadamardRotation(int64_t size, bool random_signs, uint32_t seed) : size_(size) {
  if (size < 2 || size % 2 != 0) throw std::invalid_argument(fmt::format("Hadamard rotation: size {} is not an even number >= 2", size));
  block_ = size & -size;
  signs_.assign(static_cast<size_t>(size), 1);
  if (random_signs) {
    std::mt19937 gen(seed);  // the standard fixes mt19937's sequence: the same R everywhere
    for (int8_t& s : signs_) s = (gen() >> 31) ? -1 : 1;
  }
}

std::vector<float> HadamardRotation::matrix() const {
  std::vector<float> r(static_cast<size_t>(size_ * size_), 0.f);
  const float v = static_cast<float>(1.0 / std::sqrt(static_cast<double>(block_)));
  for (int64_t i = 0; i < size_; ++i) {
    const int64_t start = i / block_ * block_;
    for (int64_t j = start; j < start + block_; ++j) {
      bool negative = (std::popcount(static_cast<uint64_t>((i - start) & (j - start))) & 1) != (signs_[static_cast<size_t>(i)] < 0);
      r[static_cast<size_t>(i * size_ + j)] = negative ? -v : v;
    }
  }
  return r;
}

void HadamardRotation::apply(std::span<double> v) const {
  if (static_cast<int64_t>(v.size()) != size_) throw std::invalid_argument("Hadamard rotation: vector of the wrong size");
  for (size_t i = 0; i < v.size(); ++i) v[i] *= signs_[i];
  const double norm = 1.0 / std::sqrt(static_cast<double>(block_));
  const size_t b = static_cast<size_t>(block_);
  for (size_t start = 0; start < v.size(); start += b) {
    double* x = v.data() + start;
    for (size_t h = 1; h < b; h *= 2)
      for (size_t i = 0; i < b; i += 2 * h)
        for (size_t j = i; j < i + h; ++j) {
          double a = x[j], c = x[j + h];
          x[j] = a + c;
          x[j + h] = a - c;
        }
    for (size_t i = 0; i < b; ++i) x[i] *= norm;
  }
}

HadamardOptions hadamard_options(const PassSpec& p) {
  HadamardOptions o;
  o.convolutions = p.flag("convolutions", o.convolutions);
  o.random_signs = p.flag("random_signs", o.random_signs);
  const double seed = p.number("seed", o.seed);
  if (!(seed >= 0 && seed < 4294967296.0 && seed == std::floor(seed)))
    throw std::runtime_error(fmt::format("hadamard: seed {} is not an integer in [0, 2^32)", seed));
  o.seed = static_cast<uint32_t>(seed);
  return o;
}

namespace {

bool all_equal(const std::vector<int64_t>& v, int64_t want) {
  return std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == want; });
}

// A layer whose input R can rotate, and where its input dimension K lies in its weight.
struct Candidate {
  size_t node;
  int64_t channels = 0;
  bool conv = false;
};

// The layer's candidate form, or why it cannot be rotated (nullopt + empty reason: not a layer the
// options select).
std::optional<Candidate> candidate(const Graph& g, size_t k, const HadamardOptions& o, std::string& why) {
  const Node& n = g.nodes[k];
  why.clear();
  bool conv = n.op_type == "Conv";
  if (!n.domain.empty() || !(conv || n.op_type == "Gemm" || n.op_type == "MatMul") || (conv && !o.convolutions)) return std::nullopt;
  if (is_hadamard_rotation(g, n)) return std::nullopt;
  if (!n.has_input(0) || g.initializer(n.inputs[0])) {
    why = "its input is a constant";
    return std::nullopt;
  }
  const Tensor* w = n.has_input(1) ? g.initializer(n.inputs[1]) : nullptr;
  if (!w || w->dtype() != DType::F32) {
    why = "its weight is not a float32 initializer";
    return std::nullopt;
  }
  int64_t channels = 0;
  if (conv) {
    if (n.i("group", 1) != 1) {
      why = fmt::format("grouped convolution (group {})", n.i("group", 1));
      return std::nullopt;
    }
    if (w->rank() < 3) {
      why = "weight of rank below 3";
      return std::nullopt;
    }
    channels = w->dim(1);
  } else {
    if (w->rank() != 2) {
      why = "weight is not 2-D";
      return std::nullopt;
    }
    if (n.op_type == "Gemm" && n.i("transA", 0)) {
      why = "transA = 1";
      return std::nullopt;
    }
    channels = n.op_type == "Gemm" && n.i("transB", 0) ? w->dim(1) : w->dim(0);
  }
  if (channels % 2 != 0) {
    why = fmt::format("K = {} is odd: no Hadamard block divides it", channels);
    return std::nullopt;
  }
  return Candidate{k, channels, conv};
}

// t viewed as [outer, K, inner]: every K-vector v (fixed outer and inner index) becomes v R.
void rotate_axis(Tensor& t, int64_t outer, int64_t inner, const HadamardRotation& r) {
  const int64_t k = r.size();
  if (outer * k * inner != t.size()) throw std::logic_error("Hadamard rotation: tensor view does not match its size");
  float* d = t.data<float>();
  std::vector<double> v(static_cast<size_t>(k));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t j = 0; j < k; ++j) v[static_cast<size_t>(j)] = d[(o * k + j) * inner + i];
      r.apply(v);
      for (int64_t j = 0; j < k; ++j) d[(o * k + j) * inner + i] = static_cast<float>(v[static_cast<size_t>(j)]);
    }
}

// The producer of the layer's input that R can fold into (its outputs rotated), or nullptr.
const Node* foldable_producer(const Graph& g, const Node& layer, int64_t channels, bool conv) {
  const std::string& x = layer.inputs[0];
  const Node* p = g.producer_of(x);
  if (!p || !p->domain.empty() || p->outputs.size() != 1 || is_hadamard_rotation(g, *p)) return nullptr;
  if (g.consumers_of(x).size() != 1) return nullptr;
  for (const ValueInfo& out : g.outputs)
    if (out.name == x) return nullptr;
  const Tensor* w = p->has_input(1) ? g.initializer(p->inputs[1]) : nullptr;
  if (!p->has_input(0) || !w || w->dtype() != DType::F32) return nullptr;
  int64_t outputs = 0;
  if (conv) {
    if (p->op_type != "Conv" || p->i("group", 1) != 1 || w->rank() < 3) return nullptr;
    outputs = w->dim(0);
  } else if (p->op_type == "Gemm") {
    if (p->i("transA", 0) || w->rank() != 2) return nullptr;
    outputs = p->i("transB", 0) ? w->dim(0) : w->dim(1);
  } else if (p->op_type == "MatMul") {
    if (w->rank() != 2 || p->has_input(2)) return nullptr;
    outputs = w->dim(1);
  } else {
    return nullptr;
  }
  if (outputs != channels) return nullptr;
  if (p->has_input(2)) {  // bias: one value per output channel ([K] or [1, K]), nothing else
    const Tensor* b = g.initializer(p->inputs[2]);
    if (!b || b->dtype() != DType::F32 || b->size() != channels || b->rank() < 1 || b->rank() > 2 || b->dim(-1) != channels) return nullptr;
  }
  return p;
}

std::string replace_initializer(Graph& g, const std::string& name, Tensor t, std::set<std::string>& replaced) {
  std::string fresh = g.unique_name(name + "_rotated");
  g.initializers.emplace(fresh, std::move(t));
  replaced.insert(name);
  return fresh;
}

}  // namespace

bool is_hadamard_rotation(const Graph& g, const Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_input(1) || n.outputs.size() != 1) return false;
  const Tensor* r = g.initializer(n.inputs[1]);
  if (!r || r->dtype() != DType::F32 || r->rank() < 2 || r->dim(0) != r->dim(1)) return false;
  if (n.op_type == "MatMul") {
    if (r->rank() != 2) return false;
  } else if (n.op_type == "Conv") {
    if (r->rank() < 3 || r->size() != r->dim(0) * r->dim(1) || n.has_input(2) || n.i("group", 1) != 1) return false;
    if (!all_equal(n.ints("strides"), 1) || !all_equal(n.ints("dilations"), 1) || !all_equal(n.ints("pads"), 0)) return false;
    if (n.s("auto_pad", "NOTSET") != "NOTSET" && n.s("auto_pad", "NOTSET") != "VALID") return false;
  } else {
    return false;
  }
  const int64_t k = r->dim(0);
  const float* d = r->data<float>();
  const float v = std::fabs(d[0]);
  if (!(v > 1e-5f) || v >= 1) return false;  // blocks of 2 to 2^33
  const int64_t block = std::llround(1.0 / (static_cast<double>(v) * v));
  if (block < 2 || !std::has_single_bit(static_cast<uint64_t>(block)) || k % block != 0) return false;
  if (v != static_cast<float>(1.0 / std::sqrt(static_cast<double>(block)))) return false;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const float a = std::fabs(d[i * k + j]);
      if (a != (i / block == j / block ? v : 0.f)) return false;
    }
  return true;
}

HadamardReport rotate_hadamard(Graph& g, const HadamardOptions& o) {
  g.sort_topologically();
  HadamardReport report;
  std::vector<Candidate> layers;
  {
    std::string why;
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      if (auto c = candidate(g, k, o, why)) layers.push_back(*c);
      else if (!why.empty()) report.skipped.emplace_back(g.nodes[k].label(), why);
    }
  }
  // Candidate indices stay valid while rotation nodes are appended.
  std::map<std::pair<std::string, bool>, std::pair<std::string, std::string>> rotated_values;  // (x, conv) -> (x R, node label)
  std::set<std::string> replaced;
  std::map<int64_t, HadamardRotation> rotations;
  for (const Candidate& c : layers) {
    const HadamardRotation& r = rotations.try_emplace(c.channels, c.channels, o.random_signs, o.seed).first->second;
    HadamardReport::Rotated rep{.layer = g.nodes[c.node].label(), .channels = c.channels, .block = r.block(), .rotation_by = "", .folded = false};
    // The layer's weight: its input dimension becomes R's output dimension.
    {
      Node& n = g.nodes[c.node];
      Tensor w = *g.initializer(n.inputs[1]);
      if (c.conv) rotate_axis(w, w.dim(0), w.size() / (w.dim(0) * w.dim(1)), r);
      else if (n.op_type == "Gemm" && n.i("transB", 0)) rotate_axis(w, w.dim(0), 1, r);
      else rotate_axis(w, 1, w.dim(1), r);
      n.inputs[1] = replace_initializer(g, n.inputs[1], std::move(w), replaced);
    }
    if (const Node* producer = foldable_producer(g, g.nodes[c.node], c.channels, c.conv)) {
      Node& p = g.nodes[static_cast<size_t>(producer - g.nodes.data())];
      Tensor pw = *g.initializer(p.inputs[1]);
      if (p.op_type == "Conv" || (p.op_type == "Gemm" && p.i("transB", 0))) rotate_axis(pw, 1, pw.size() / pw.dim(0), r);
      else rotate_axis(pw, pw.dim(0), 1, r);
      p.inputs[1] = replace_initializer(g, p.inputs[1], std::move(pw), replaced);
      if (p.has_input(2)) {
        Tensor b = *g.initializer(p.inputs[2]);
        rotate_axis(b, 1, 1, r);
        p.inputs[2] = replace_initializer(g, p.inputs[2], std::move(b), replaced);
      }
      rep.rotation_by = p.label();
      rep.folded = true;
    } else {
      const std::string x = g.nodes[c.node].inputs[0];
      auto it = rotated_values.find({x, c.conv});
      if (it == rotated_values.end()) {
        Node rot;
        rot.name = g.unique_name(g.nodes[c.node].name + "_hadamard");
        std::vector<float> m = r.matrix();
        Tensor rt;
        if (c.conv) {  // weight [K_out, K_in, 1, ...] = R^T, of the layer's weight's rank
          rot.op_type = "Conv";
          Shape shape(static_cast<size_t>(g.initializer(g.nodes[c.node].inputs[1])->rank()), 1);
          shape[0] = shape[1] = c.channels;
          rt = Tensor(DType::F32, shape);
          for (int64_t i = 0; i < c.channels; ++i)
            for (int64_t j = 0; j < c.channels; ++j) rt.data<float>()[j * c.channels + i] = m[static_cast<size_t>(i * c.channels + j)];
        } else {
          rot.op_type = "MatMul";
          rt = Tensor::from<float>({c.channels, c.channels}, m);
        }
        std::string matrix_name = g.unique_name(fmt::format("hadamard_{}{}", c.channels, c.conv ? "_conv" : ""));
        g.initializers.emplace(matrix_name, std::move(rt));
        rot.inputs = {x, matrix_name};
        rot.outputs = {g.unique_name(x + "_rotated")};
        it = rotated_values.emplace(std::pair{x, c.conv}, std::pair{rot.outputs[0], rot.label()}).first;
        g.nodes.push_back(std::move(rot));  // now, so that the next unique_name sees its output
      }
      g.nodes[c.node].inputs[0] = it->second.first;
      rep.rotation_by = it->second.second;
    }
    report.rotated.push_back(std::move(rep));
  }
  // Drop the weights this pass replaced when nothing reads them any more.
  std::set<std::string> read;
  for (const Node& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
  for (const ValueInfo& v : g.outputs) read.insert(v.name);
  for (const std::string& name : replaced)
    if (!read.count(name)) g.initializers.erase(name);
  g.sort_topologically();
  return report;
}

}  // namespace lowbit
