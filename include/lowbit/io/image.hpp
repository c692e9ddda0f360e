#pragma once
// 8-bit images: JPEG decoding (libjpeg-turbo) and the two geometric steps of torchvision's
// evaluation pipeline on PIL images, reproduced bit-exactly: Resize (PIL's antialiased bilinear
// filter, uint8 between and after the passes) and CenterCrop.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

// Interleaved 8-bit pixels, row-major HWC.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels

  uint8_t at(int y, int x, int c) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};

// Decodes a JPEG file to RGB (grayscale JPEGs are expanded to three channels), with the accurate
// integer DCT and fancy upsampling, as PIL decodes. Throws std::runtime_error naming the file when
// it is missing, not a JPEG, truncated or undecodable.
Image decode_jpeg_file(const std::string& path);

// The same from bytes in memory; `name` is used in error messages.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

// PIL's Image.resize(size, BILINEAR) of an 8-bit image (any channel count): a triangle filter
// whose support grows with the downscale factor, horizontal pass then vertical pass, each in
// 22-bit fixed point rounded and clipped to uint8. Resizing to the same size is the identity.
Image resize_bilinear(const Image& img, int out_height, int out_width);

// torchvision Resize(short_side) on a PIL image: the short side becomes short_side, the long side
// int(short_side * long / short).
Image resize_short_side(const Image& img, int short_side);

// Where a centre crop starts when the margin is odd: torchvision's CenterCrop rounds (h - crop_h) / 2
// half to even; Keras / TensorFlow pipelines take the floor.
enum class CropOffset { RoundHalfEven, Floor };

// A centre crop; throws std::invalid_argument when the crop is larger than the image.
Image center_crop(const Image& img, int crop_height, int crop_width, CropOffset offset = CropOffset::RoundHalfEven);

}  // namespace lowbit
