#include "lowbit/io/image.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <turbojpeg.h>

namespace lowbit {

namespace {

struct TjHandleCloser {
  void operator()(void* h) const { tjDestroy(h); }
};
using TjHandle = std::unique_ptr<void, TjHandleCloser>;

// libjpeg reports a truncated file as a warning and pads it with gray; PIL refuses such files
// ("image file is truncated"), so this warning is an error here. Other warnings (e.g. extraneous
// bytes before a marker) leave a usable image, which PIL accepts too.
bool is_truncation_warning(std::string_view msg) {
  return msg.find("Premature end") != std::string_view::npos ||
         msg.find("premature end") != std::string_view::npos;
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) throw std::runtime_error(fmt::format("{}: empty file, not a JPEG", name));
  TjHandle tj(tjInitDecompress());
  if (!tj) throw std::runtime_error(fmt::format("{}: cannot initialize the JPEG decoder: {}", name, tjGetErrorStr2(nullptr)));

  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, static_cast<unsigned long>(size), &width, &height, &subsamp, &colorspace) != 0)
    throw std::runtime_error(fmt::format("{}: not a decodable JPEG: {}", name, tjGetErrorStr2(tj.get())));
  // A file cut before its frame header parses as a tables-only stream of size 0x0.
  if (width <= 0 || height <= 0)
    throw std::runtime_error(fmt::format("{}: truncated or incomplete JPEG: no image size in the header", name));

  Image img;
  img.height = height;
  img.width = width;
  img.channels = 3;
  img.pixels.resize(static_cast<size_t>(height) * width * 3);
  int rc = tjDecompress2(tj.get(), data, static_cast<unsigned long>(size), img.pixels.data(), width, 0, height, TJPF_RGB,
                         TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    const std::string msg = tjGetErrorStr2(tj.get());
    if (tjGetErrorCode(tj.get()) != TJERR_WARNING)
      throw std::runtime_error(fmt::format("{}: cannot decode JPEG: {}", name, msg));
    if (is_truncation_warning(msg)) throw std::runtime_error(fmt::format("{}: truncated JPEG: {}", name, msg));
  }
  return img;
}

Image decode_jpeg_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error(fmt::format("{}: no such file", path));
  if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(fmt::format("{}: is a directory, not a JPEG file", path));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(fmt::format("{}: read error", path));
  return decode_jpeg(bytes.data(), bytes.size(), path);
}

namespace {

// Fixed-point precision of PIL's 8-bit resampling path (Resample.c: 32 - 8 - 2).
constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output pixel: the first input pixel and the fixed-point weights of the input pixels
// it draws from, as Resample.c's precompute_coeffs + normalize_coeffs_8bpc.
struct ResampleCoeffs {
  std::vector<int> first;
  std::vector<std::vector<int32_t>> weights;
};

double triangle(double x) {
  x = x < 0.0 ? -x : x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

ResampleCoeffs precompute_coeffs(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the bilinear filter's support is 1
  const double ss = 1.0 / filter_scale;
  ResampleCoeffs c;
  c.first.resize(out_size);
  c.weights.resize(out_size);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // PIL truncates toward zero here (C cast); the operands are positive except near the left edge.
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    std::vector<double> w(std::max(xmax, 0));
    double total = 0.0;
    for (int j = 0; j < xmax; ++j) {
      w[j] = triangle((j + xmin - center + 0.5) * ss);
      total += w[j];
    }
    std::vector<int32_t>& k = c.weights[i];
    k.resize(w.size());
    for (size_t j = 0; j < w.size(); ++j) {
      const double normalized = total != 0.0 ? w[j] / total : w[j];
      const double fixed = normalized * (1 << kPrecisionBits);
      k[j] = static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    c.first[i] = xmin;
  }
  return c;
}

uint8_t clip8(int32_t acc) {
  if (acc >= (1 << kPrecisionBits << 8)) return 255;
  if (acc <= 0) return 0;
  return static_cast<uint8_t>(acc >> kPrecisionBits);
}

Image resample_horizontal(const Image& in, int out_width) {
  const ResampleCoeffs c = precompute_coeffs(in.width, out_width);
  const int ch = in.channels;
  Image out{in.height, out_width, ch, std::vector<uint8_t>(static_cast<size_t>(in.height) * out_width * ch)};
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = &in.pixels[static_cast<size_t>(y) * in.width * ch];
    uint8_t* dst = &out.pixels[static_cast<size_t>(y) * out_width * ch];
    for (int x = 0; x < out_width; ++x) {
      const std::vector<int32_t>& k = c.weights[x];
      const uint8_t* src = row + static_cast<size_t>(c.first[x]) * ch;
      for (int cc = 0; cc < ch; ++cc) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (size_t j = 0; j < k.size(); ++j) acc += src[j * ch + cc] * k[j];
        dst[static_cast<size_t>(x) * ch + cc] = clip8(acc);
      }
    }
  }
  return out;
}

Image resample_vertical(const Image& in, int out_height) {
  const ResampleCoeffs c = precompute_coeffs(in.height, out_height);
  const int ch = in.channels;
  const size_t stride = static_cast<size_t>(in.width) * ch;
  Image out{out_height, in.width, ch, std::vector<uint8_t>(out_height * stride)};
  for (int y = 0; y < out_height; ++y) {
    const std::vector<int32_t>& k = c.weights[y];
    const uint8_t* src = &in.pixels[static_cast<size_t>(c.first[y]) * stride];
    uint8_t* dst = &out.pixels[y * stride];
    for (size_t i = 0; i < stride; ++i) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (size_t j = 0; j < k.size(); ++j) acc += src[j * stride + i] * k[j];
      dst[i] = clip8(acc);
    }
  }
  return out;
}

}  // namespace

Image resize_bilinear(const Image& img, int out_height, int out_width) {
  if (out_height <= 0 || out_width <= 0)
    throw std::invalid_argument(fmt::format("resize_bilinear: output size {}x{} must be positive", out_height, out_width));
  if (img.height <= 0 || img.width <= 0 || img.channels <= 0)
    throw std::invalid_argument("resize_bilinear: empty input image");
  // As PIL: a pass runs only when its dimension changes; both unchanged is a copy.
  Image out = img.width != out_width ? resample_horizontal(img, out_width) : img;
  if (img.height != out_height) out = resample_vertical(out, out_height);
  return out;
}

Image resize_short_side(const Image& img, int short_side) {
  if (short_side <= 0) throw std::invalid_argument(fmt::format("resize_short_side: size {} must be positive", short_side));
  const int64_t h = img.height, w = img.width;
  if (h <= w) return resize_bilinear(img, short_side, static_cast<int>(short_side * w / h));
  return resize_bilinear(img, static_cast<int>(short_side * h / w), short_side);
}

namespace {

// Python's int(round(d / 2.0)) for d >= 0: halves round to even.
int half_round_even(int d) {
  const int half = d / 2;
  if (d % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

}  // namespace

Image center_crop(const Image& img, int crop_height, int crop_width, CropOffset offset) {
  if (crop_height <= 0 || crop_width <= 0 || crop_height > img.height || crop_width > img.width)
    throw std::invalid_argument(fmt::format("center_crop: cannot crop {}x{} from a {}x{} image", crop_height, crop_width,
                                            img.height, img.width));
  const bool floor = offset == CropOffset::Floor;
  const int top = floor ? (img.height - crop_height) / 2 : half_round_even(img.height - crop_height);
  const int left = floor ? (img.width - crop_width) / 2 : half_round_even(img.width - crop_width);
  const int ch = img.channels;
  Image out{crop_height, crop_width, ch, std::vector<uint8_t>(static_cast<size_t>(crop_height) * crop_width * ch)};
  const size_t row_bytes = static_cast<size_t>(crop_width) * ch;
  for (int y = 0; y < crop_height; ++y) {
    const uint8_t* src = &img.pixels[(static_cast<size_t>(top + y) * img.width + left) * ch];
    std::copy(src, src + row_bytes, &out.pixels[y * row_bytes]);
  }
  return out;
}

}  // namespace lowbit
