// Image decoding, torchvision-style preprocessing and the dataset loaders, on the real data in
// ../shared/data and Debian's Fashion-MNIST.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lowbit/io/dataset.hpp"
#include "lowbit/io/image.hpp"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

const fs::path kData = LOWBIT_SHARED_DATA;
const fs::path kVal = kData / "imagenet" / "val1300";
const fs::path kCalib = kData / "imagenet" / "calib256";
const fs::path kSynsets = kData / "imagenet" / "synset_words.txt";
const fs::path kCifar = kData / "cifar10" / "test";
const fs::path kFashion = "/usr/share/datasets/fashion-mnist";

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / fmt::format("lowbit_dataset_test_{:08x}{:08x}", rd(), rd());
    fs::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

// The message of the std::runtime_error that fn throws ("" when it throws none).
template <class Fn>
std::string runtime_error_message(Fn fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// The first `n` JPEGs of val1300, in file-name order.
std::vector<fs::path> some_val_images(size_t n) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kVal / "images")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  files.resize(std::min(n, files.size()));
  return files;
}

Image constant_image(int h, int w, int channels, uint8_t value) {
  return Image{h, w, channels, std::vector<uint8_t>(static_cast<size_t>(h) * w * channels, value)};
}

// ----------------------------------------------------------------------------------------------
// Loaders on the shipped data

TEST(ImageDataset, Val1300LabelsMatchLabelsFile) {
  std::map<std::string, int> expected;
  std::ifstream f(kVal / "labels.txt");
  ASSERT_TRUE(f) << "missing " << (kVal / "labels.txt");
  std::string line;
  while (std::getline(f, line)) {
    const size_t comma = line.find(',');
    ASSERT_NE(comma, std::string::npos) << line;
    expected[line.substr(0, comma)] = std::stoi(line.substr(comma + 1));
  }
  ASSERT_EQ(expected.size(), 1300u);

  const ImageDataset data = load_imagenet_labeled(kVal.string());
  ASSERT_EQ(data.size(), 1300u);
  size_t i = 0;
  for (const auto& [file, label] : expected) {  // std::map order = sorted by name
    EXPECT_EQ(fs::path(data[i].path).filename().string(), file);
    EXPECT_EQ(data[i].label, label) << file;
    EXPECT_TRUE(fs::is_regular_file(data[i].path)) << data[i].path;
    ++i;
  }
  EXPECT_EQ(data[0].label, 472);  // ILSVRC2012_val_00000347.JPEG, 472
}

TEST(ImageDataset, Calib256LabelsFromSynsetWords) {
  const ImageDataset data = load_imagenet_calib(kCalib.string(), kSynsets.string());
  // The folder is named calib256, but it holds 250 images (one per class).
  ASSERT_EQ(data.size(), 250u);
  std::map<std::string, int> label_of;
  for (const Sample& s : data.samples()) label_of[fs::path(s.path).filename().string()] = s.label;
  // Checked by hand against synset_words.txt (line number - 1).
  EXPECT_EQ(label_of.at("n01440764_tench.JPEG"), 0);
  EXPECT_EQ(label_of.at("n01494475_hammerhead.JPEG"), 4);
  EXPECT_EQ(label_of.at("n01514859_hen.JPEG"), 8);
  EXPECT_EQ(label_of.at("n13052670_hen-of-the-woods.JPEG"), 996);
  EXPECT_TRUE(std::is_sorted(data.samples().begin(), data.samples().end(),
                             [](const Sample& a, const Sample& b) { return a.path < b.path; }));
}

TEST(ImageDataset, Cifar10ClassFolders) {
  const ImageDataset data = load_class_folders(kCifar.string());
  ASSERT_EQ(data.size(), 10000u);
  const std::vector<std::string> classes = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
  EXPECT_EQ(data.class_names(), classes);
  std::vector<int> per_class(10, 0);
  for (const Sample& s : data.samples()) {
    ASSERT_GE(s.label, 0);
    ASSERT_LT(s.label, 10);
    ++per_class[s.label];
    EXPECT_EQ(fs::path(s.path).parent_path().filename().string(), classes[s.label]) << s.path;
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));
  EXPECT_EQ(data[0].path, (kCifar / "airplane" / "0000.jpg").string());
  EXPECT_EQ(data[0].label, 0);
  EXPECT_EQ(data[1].path, (kCifar / "airplane" / "0001.jpg").string());
  EXPECT_EQ(data[9999].path, (kCifar / "truck" / "0999.jpg").string());
}

TEST(ImageDataset, AutoDetectPicksTheLoader) {
  const ImageDataset val = auto_detect(kVal.string());
  const ImageDataset val_direct = load_imagenet_labeled(kVal.string());
  ASSERT_EQ(val.size(), val_direct.size());
  EXPECT_EQ(val[7].path, val_direct[7].path);
  EXPECT_EQ(val[7].label, val_direct[7].label);

  const ImageDataset calib = auto_detect(kCalib.string());
  const ImageDataset calib_direct = load_imagenet_calib(kCalib.string(), kSynsets.string());
  ASSERT_EQ(calib.size(), calib_direct.size());
  for (size_t i = 0; i < calib.size(); ++i) EXPECT_EQ(calib[i].label, calib_direct[i].label);

  const ImageDataset cifar = auto_detect(kCifar.string());
  EXPECT_EQ(cifar.size(), 10000u);
  EXPECT_EQ(cifar.class_names().size(), 10u);
}

// ----------------------------------------------------------------------------------------------
// Decoding and preprocessing

TEST(Jpeg, DecodesRealImagesToTheirSize) {
  for (const fs::path& p : some_val_images(3)) {
    const Image img = decode_jpeg_file(p.string());
    EXPECT_EQ(img.height, 227) << p;
    EXPECT_EQ(img.width, 227) << p;
    EXPECT_EQ(img.channels, 3) << p;
    EXPECT_EQ(img.pixels.size(), 227u * 227u * 3u);
  }
  const Image cifar = decode_jpeg_file((kCifar / "cat" / "0000.jpg").string());
  EXPECT_EQ(cifar.height, 32);
  EXPECT_EQ(cifar.width, 32);
  EXPECT_EQ(cifar.channels, 3);
  const Image tench = decode_jpeg_file((kCalib / "images" / "n01440764_tench.JPEG").string());
  EXPECT_EQ(tench.height, 375);
  EXPECT_EQ(tench.width, 500);
}

TEST(Preprocess, CenterCrop224OfVal1300) {
  const fs::path file = some_val_images(1).at(0);
  const Image img = decode_jpeg_file(file.string());
  Preprocess p;
  p.crop = 224;
  p.norm = Preprocess::Norm::Scale127_5;
  const std::vector<float> chw = load_preprocessed(file.string(), p);
  ASSERT_EQ(chw.size(), 3u * 224u * 224u);
  EXPECT_GE(*std::min_element(chw.begin(), chw.end()), -1.0f);
  EXPECT_LE(*std::max_element(chw.begin(), chw.end()), 1.0f);
  // torchvision: top = left = int(round((227 - 224) / 2.0)) = round(1.5) = 2.
  const int offset = 2;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; ++y)
      for (int x = 0; x < 224; ++x)
        ASSERT_EQ(chw[(static_cast<size_t>(c) * 224 + y) * 224 + x], img.at(y + offset, x + offset, c) / 127.5f - 1.0f)
            << "c=" << c << " y=" << y << " x=" << x;
}

TEST(Preprocess, NormalizationModes) {
  const Image img = constant_image(4, 4, 3, 51);
  Preprocess p;
  p.norm = Preprocess::Norm::Unit;
  EXPECT_FLOAT_EQ(preprocess_image(img, p, "const").at(0), 0.2f);
  p.norm = Preprocess::Norm::Scale127_5;
  EXPECT_FLOAT_EQ(preprocess_image(img, p, "const").at(0), 51 / 127.5f - 1.0f);
  p.norm = Preprocess::Norm::MeanStd;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  const std::vector<float> chw = preprocess_image(img, p, "const");
  ASSERT_EQ(chw.size(), 3u * 16u);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(chw[c * 16 + 5], (0.2f - p.mean[c]) / p.std[c]);
}

TEST(Preprocess, ResizeShortSideOfCalibImages) {
  const ImageDataset data = load_imagenet_calib(kCalib.string(), kSynsets.string());
  for (size_t i = 0; i < data.size(); i += 50) {
    const Image img = decode_jpeg_file(data[i].path);
    const Image r = resize_short_side(img, 256);
    const int64_t short_in = std::min(img.height, img.width), long_in = std::max(img.height, img.width);
    EXPECT_EQ(std::min(r.height, r.width), 256) << data[i].path;
    EXPECT_EQ(std::max(r.height, r.width), static_cast<int>(256 * long_in / short_in)) << data[i].path;
    EXPECT_EQ(r.height >= r.width, img.height >= img.width) << data[i].path;  // orientation kept
  }
  // n01440764_tench.JPEG is 500 wide, 375 high: int(256 * 500 / 375) = 341.
  const Image tench = resize_short_side(decode_jpeg_file((kCalib / "images" / "n01440764_tench.JPEG").string()), 256);
  EXPECT_EQ(tench.height, 256);
  EXPECT_EQ(tench.width, 341);

  Preprocess p;
  p.resize_short = 256;
  p.crop = 224;
  p.norm = Preprocess::Norm::Scale127_5;
  EXPECT_EQ(load_preprocessed(data[0].path, p).size(), 3u * 224u * 224u);
}

TEST(Resize, ConstantImageStaysConstant) {
  // PIL's normalized weights sum to 1 within the fixed-point rounding, so a flat image stays flat.
  const int sizes[][2] = {{375, 500}, {256, 341}, {100, 37}, {7, 300}, {1, 1}, {600, 20}};
  for (uint8_t value : {uint8_t{0}, uint8_t{1}, uint8_t{128}, uint8_t{254}, uint8_t{255}}) {
    const Image img = constant_image(240, 320, 3, value);
    for (const auto& s : sizes) {
      const Image r = resize_bilinear(img, s[0], s[1]);
      ASSERT_EQ(r.height, s[0]);
      ASSERT_EQ(r.width, s[1]);
      ASSERT_EQ(r.pixels.size(), static_cast<size_t>(s[0]) * s[1] * 3);
      EXPECT_TRUE(std::all_of(r.pixels.begin(), r.pixels.end(), [&](uint8_t v) { return v == value; }))
          << int{value} << " -> " << s[0] << "x" << s[1];
    }
  }
}

TEST(Resize, SameSizeIsIdentity) {
  const Image img = decode_jpeg_file((kCifar / "dog" / "0007.jpg").string());
  const Image r = resize_bilinear(img, img.height, img.width);
  EXPECT_EQ(r.pixels, img.pixels);
  const Image val = decode_jpeg_file(some_val_images(1).at(0).string());
  EXPECT_EQ(resize_bilinear(val, 227, 227).pixels, val.pixels);
}

TEST(Resize, DownscaleByTwoAveragesPairs) {
  // Halving: support 2, center 2i+1, weights 1/4, 3/4, 3/4, 1/4 over x = 2i-1 .. 2i+2 (normalized
  // over the in-range pixels at the edges). A 1x4 row (0, 100, 200, 40) -> 2 pixels:
  //   out0 = (3/4*0 + 3/4*100 + 1/4*200) / (7/4) = 125 / 1.75 = 71.43 -> 71
  //   out1 = (1/4*100 + 3/4*200 + 3/4*40) / (7/4) = 205 / 1.75 = 117.14 -> 117
  const Image img{1, 4, 1, {0, 100, 200, 40}};
  const Image r = resize_bilinear(img, 1, 2);
  ASSERT_EQ(r.pixels.size(), 2u);
  EXPECT_EQ(r.pixels[0], 71);
  EXPECT_EQ(r.pixels[1], 117);
}

TEST(Preprocess, TooSmallForTheCropNamesTheFile) {
  Preprocess p;
  p.crop = 224;
  const std::string file = (kCifar / "ship" / "0003.jpg").string();
  const std::string msg = runtime_error_message([&] { load_preprocessed(file, p); });
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

TEST(Batch, MatchesPerSampleAndIsThreadIndependent) {
  const ImageDataset data = load_class_folders(kCifar.string());
  Preprocess p;
  p.norm = Preprocess::Norm::MeanStd;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  const size_t begin = 995, count = 13;  // crosses from airplane into automobile
  std::vector<float> one, many;
  std::vector<int> labels_one, labels_many;
  load_batch(data, begin, count, p, one, labels_one, 1);
  load_batch(data, begin, count, p, many, labels_many, 4);
  ASSERT_EQ(one.size(), count * 3 * 32 * 32);
  EXPECT_EQ(one, many);
  EXPECT_EQ(labels_one, labels_many);
  for (size_t i = 0; i < count; ++i) {
    EXPECT_EQ(labels_one[i], data[begin + i].label);
    const std::vector<float> chw = load_preprocessed(data[begin + i].path, p);
    EXPECT_TRUE(std::equal(chw.begin(), chw.end(), one.begin() + static_cast<ptrdiff_t>(i * chw.size()))) << i;
  }
  EXPECT_EQ(labels_one.front(), 0);
  EXPECT_EQ(labels_one.back(), 1);
  EXPECT_THROW(load_batch(data, 9995, 10, p, one, labels_one, 2), std::out_of_range);
}

// ----------------------------------------------------------------------------------------------
// Fashion-MNIST

TEST(Idx, FashionMnistTest10k) {
  const fs::path images = kFashion / "t10k-images-idx3-ubyte.gz";
  const fs::path labels = kFashion / "t10k-labels-idx1-ubyte.gz";
  ASSERT_TRUE(fs::exists(images)) << images << " missing: install dataset-fashion-mnist";
  const IdxImages img = load_idx_images(images.string());
  EXPECT_EQ(img.count, 10000);
  EXPECT_EQ(img.rows, 28);
  EXPECT_EQ(img.cols, 28);
  EXPECT_EQ(img.pixels.size(), 10000u * 28u * 28u);
  EXPECT_GT(*std::max_element(img.pixels.begin(), img.pixels.end()), 200);

  const std::vector<uint8_t> lab = load_idx_labels(labels.string());
  ASSERT_EQ(lab.size(), 10000u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : lab) {
    ASSERT_LT(l, 10);
    ++per_class[l];
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));

  // The two files swapped fail on the magic number.
  EXPECT_THROW(load_idx_images(labels.string()), std::runtime_error);
  EXPECT_THROW(load_idx_labels(images.string()), std::runtime_error);
}

// ----------------------------------------------------------------------------------------------
// Bad input

TEST(BadInput, TruncatedJpeg) {
  TempDir tmp;
  const std::string bytes = read_bytes(kCalib / "images" / "n01440764_tench.JPEG");
  for (size_t keep : {size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    const fs::path cut = tmp.path() / fmt::format("cut_{}.JPEG", keep);
    write_bytes(cut, bytes.substr(0, keep));
    const std::string msg = runtime_error_message([&] { decode_jpeg_file(cut.string()); });
    EXPECT_NE(msg.find(cut.string()), std::string::npos) << "keep " << keep << ": '" << msg << "'";
  }
}

TEST(BadInput, NotAJpegAndMissingFile) {
  TempDir tmp;
  const fs::path text = tmp.path() / "text.jpg";
  write_bytes(text, "this is not a JPEG file\n");
  std::string msg = runtime_error_message([&] { decode_jpeg_file(text.string()); });
  EXPECT_NE(msg.find(text.string()), std::string::npos) << msg;

  const fs::path empty = tmp.path() / "empty.jpg";
  write_bytes(empty, "");
  msg = runtime_error_message([&] { decode_jpeg_file(empty.string()); });
  EXPECT_NE(msg.find(empty.string()), std::string::npos) << msg;

  const fs::path missing = tmp.path() / "missing.jpg";
  msg = runtime_error_message([&] { decode_jpeg_file(missing.string()); });
  EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;
}

TEST(BadInput, NotThreeChannels) {
  const std::string msg = runtime_error_message([] { preprocess_image(constant_image(8, 8, 1, 0), Preprocess{}, "gray.jpg"); });
  EXPECT_NE(msg.find("gray.jpg"), std::string::npos) << msg;
}

// A labeled set of two real val1300 images in a temp dir; `labels` is written as labels.txt.
void make_labeled_set(const fs::path& dir, const std::string& labels) {
  fs::create_directories(dir / "images");
  for (const fs::path& p : some_val_images(2)) fs::copy_file(p, dir / "images" / p.filename());
  write_bytes(dir / "labels.txt", labels);
}

TEST(BadInput, LabeledSetErrors) {
  const std::vector<fs::path> real = some_val_images(2);
  const std::string a = real[0].filename().string(), b = real[1].filename().string();

  {  // consistent: loads
    TempDir tmp;
    make_labeled_set(tmp.path(), fmt::format("{}, 3\n{}, 999\n", a, b));
    const ImageDataset data = load_imagenet_labeled(tmp.path().string());
    ASSERT_EQ(data.size(), 2u);
    EXPECT_EQ(data[1].label, 999);
  }
  {  // a listed file is missing
    TempDir tmp;
    make_labeled_set(tmp.path(), fmt::format("{}, 3\n{}, 4\nILSVRC2012_val_99999999.JPEG, 5\n", a, b));
    const std::string msg = runtime_error_message([&] { load_imagenet_labeled(tmp.path().string()); });
    EXPECT_NE(msg.find("ILSVRC2012_val_99999999.JPEG"), std::string::npos) << msg;
  }
  {  // a JPEG in the folder is not listed
    TempDir tmp;
    make_labeled_set(tmp.path(), fmt::format("{}, 3\n", a));
    const std::string msg = runtime_error_message([&] { load_imagenet_labeled(tmp.path().string()); });
    EXPECT_NE(msg.find(b), std::string::npos) << msg;
  }
  {  // a line that does not parse: the message names the line
    TempDir tmp;
    make_labeled_set(tmp.path(), fmt::format("{}, 3\n{} 4\n", a, b));
    const std::string msg = runtime_error_message([&] { load_imagenet_labeled(tmp.path().string()); });
    EXPECT_NE(msg.find("labels.txt:2:"), std::string::npos) << msg;
  }
  {  // a label out of range
    TempDir tmp;
    make_labeled_set(tmp.path(), fmt::format("{}, 1000\n{}, 4\n", a, b));
    const std::string msg = runtime_error_message([&] { load_imagenet_labeled(tmp.path().string()); });
    EXPECT_NE(msg.find(a), std::string::npos) << msg;
  }
  {  // no labels file
    TempDir tmp;
    const std::string msg = runtime_error_message([&] { load_imagenet_labeled(tmp.path().string()); });
    EXPECT_NE(msg.find("labels.txt"), std::string::npos) << msg;
  }
}

TEST(BadInput, CalibUnknownSynsetAndEmptyClassFolders) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "images");
  fs::copy_file(kCalib / "images" / "n01440764_tench.JPEG", tmp.path() / "images" / "n99999999_nothing.JPEG");
  const std::string msg = runtime_error_message([&] { load_imagenet_calib(tmp.path().string(), kSynsets.string()); });
  EXPECT_NE(msg.find("n99999999_nothing.JPEG"), std::string::npos) << msg;

  TempDir empty;
  EXPECT_THROW(load_class_folders(empty.path().string()), std::runtime_error);
  fs::create_directories(empty.path() / "cat");
  EXPECT_THROW(load_class_folders(empty.path().string()), std::runtime_error);
}

TEST(BadInput, TruncatedIdx) {
  TempDir tmp;
  const std::string gz = read_bytes(kFashion / "t10k-labels-idx1-ubyte.gz");
  ASSERT_GT(gz.size(), 100u);
  for (size_t keep : {size_t{20}, gz.size() / 2, gz.size() - 4}) {
    const fs::path cut = tmp.path() / fmt::format("labels_{}.gz", keep);
    write_bytes(cut, gz.substr(0, keep));
    const std::string msg = runtime_error_message([&] { load_idx_labels(cut.string()); });
    EXPECT_NE(msg.find(cut.string()), std::string::npos) << "keep " << keep << ": '" << msg << "'";
  }
  const std::string images = read_bytes(kFashion / "t10k-images-idx3-ubyte.gz");
  const fs::path cut = tmp.path() / "images_cut.gz";
  write_bytes(cut, images.substr(0, images.size() / 3));
  EXPECT_THROW(load_idx_images(cut.string()), std::runtime_error);
}

}  // namespace
}  // namespace lowbit
