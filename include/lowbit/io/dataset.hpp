#pragma once
// Labeled image sets on disk (ImageNet subsets, class folders such as CIFAR-10), their
// torchvision-style preprocessing into float CHW / NCHW tensors, and Fashion-MNIST's IDX files.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/io/image.hpp"

namespace lowbit {

// Resize (short side, PIL bilinear) -> center crop -> float CHW -> normalization, in that order.
struct Preprocess {
  int resize_short = 0;  // 0: no resize
  int crop = 0;          // 0: no crop (the image keeps its size)
  CropOffset crop_offset = CropOffset::RoundHalfEven;
  enum class Norm {
    Scale127_5,  // x / 127.5 - 1
    MeanStd,     // x / 255, then (x - mean) / std per channel
    Unit,        // x / 255
  } norm = Norm::Unit;
  std::array<float, 3> mean{};
  std::array<float, 3> std{};
};

// One decoded RGB image to a float CHW tensor (3 * crop * crop values, or 3 * h * w without a
// crop). Throws std::runtime_error naming `name` when the image is not 3-channel or is smaller
// than the crop.
std::vector<float> preprocess_image(const Image& img, const Preprocess& p, const std::string& name);

// decode_jpeg_file + preprocess_image.
std::vector<float> load_preprocessed(const std::string& path, const Preprocess& p);

struct Sample {
  std::string path;
  int label = 0;
};

class ImageDataset {
 public:
  ImageDataset() = default;
  explicit ImageDataset(std::vector<Sample> samples, std::vector<std::string> class_names = {})
      : samples_(std::move(samples)), class_names_(std::move(class_names)) {}

  size_t size() const { return samples_.size(); }
  const Sample& operator[](size_t i) const { return samples_[i]; }
  const std::vector<Sample>& samples() const { return samples_; }
  // Folder names of load_class_folders (index = label); empty for the ImageNet loaders.
  const std::vector<std::string>& class_names() const { return class_names_; }

 private:
  std::vector<Sample> samples_;
  std::vector<std::string> class_names_;
};

// All loaders check that the set is complete and consistent and throw std::runtime_error with a
// one-line message naming the offending file (or line) otherwise. Samples come in a fixed order.

// dir/labels.txt with lines "file, class_index" (0..999), images in dir/images/. Every listed
// file must exist and every JPEG in the folder must be listed. Sorted by file name.
ImageDataset load_imagenet_labeled(const std::string& dir);

// dir/images/<synset>_<anything>.JPEG, label = line index of <synset> in synset_words (lines
// "n01440764 tench, Tinca tinca"). Sorted by file name.
ImageDataset load_imagenet_calib(const std::string& dir, const std::string& synset_words_path);

// dir/<class>/<image>.jpg: class folders in byte-wise sorted order are labels 0..K-1, images
// sorted by name inside each (torchvision ImageFolder order).
ImageDataset load_class_folders(const std::string& dir);

// dir/labels.txt present: load_imagenet_labeled; else dir/images/ present: load_imagenet_calib
// with dir/../synset_words.txt; else load_class_folders.
ImageDataset auto_detect(const std::string& dir);

// Decodes and preprocesses samples [begin, begin + count) into one NCHW buffer (resized to fit)
// and their labels, with `threads` threads (< 1: one). All samples must come out the same size
// (always true with a crop). Errors are rethrown in the caller, the first failing sample's.
void load_batch(const ImageDataset& data, size_t begin, size_t count, const Preprocess& p, std::vector<float>& nchw_out,
                std::vector<int>& labels_out, int threads);

// Fashion-MNIST / MNIST IDX files, gzip-compressed (a plain file is read as is).
struct IdxImages {
  int count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Checks the magic (0x00000803 images, 0x00000801 labels), the dimensions and that the file
// holds exactly the data they announce; throws std::runtime_error naming the file otherwise.
IdxImages load_idx_images(const std::string& path_gz);
std::vector<uint8_t> load_idx_labels(const std::string& path_gz);

}  // namespace lowbit
