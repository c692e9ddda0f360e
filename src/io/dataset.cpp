#include "lowbit/io/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <zlib.h>

namespace lowbit {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Preprocessing

std::vector<float> preprocess_image(const Image& img, const Preprocess& p, const std::string& name) {
  if (img.channels != 3)
    throw std::runtime_error(fmt::format("{}: expected a 3-channel RGB image, got {} channels", name, img.channels));
  if (p.norm == Preprocess::Norm::MeanStd && (p.std[0] <= 0 || p.std[1] <= 0 || p.std[2] <= 0))
    throw std::invalid_argument("preprocess: MeanStd normalization needs positive std values");

  std::optional<Image> resized;
  if (p.resize_short > 0) resized = resize_short_side(img, p.resize_short);
  const Image& scaled = resized ? *resized : img;

  std::optional<Image> cropped;
  if (p.crop > 0) {
    if (scaled.height < p.crop || scaled.width < p.crop) {
      const std::string after = resized ? fmt::format(" ({}x{} after resizing)", scaled.height, scaled.width) : "";
      throw std::runtime_error(fmt::format("{}: image is {}x{}{}, smaller than the {}x{} crop", name, img.height, img.width,
                                           after, p.crop, p.crop));
    }
    cropped = center_crop(scaled, p.crop, p.crop, p.crop_offset);
  }
  const Image& src = cropped ? *cropped : scaled;

  const size_t plane = static_cast<size_t>(src.height) * src.width;
  std::vector<float> out(3 * plane);
  for (int c = 0; c < 3; ++c) {
    float* dst = &out[c * plane];
    for (size_t i = 0; i < plane; ++i) {
      const float x = src.pixels[i * 3 + c];
      switch (p.norm) {
        case Preprocess::Norm::Scale127_5: dst[i] = x / 127.5f - 1.0f; break;
        case Preprocess::Norm::MeanStd: dst[i] = (x / 255.0f - p.mean[c]) / p.std[c]; break;
        case Preprocess::Norm::Unit: dst[i] = x / 255.0f; break;
      }
    }
  }
  return out;
}

std::vector<float> load_preprocessed(const std::string& path, const Preprocess& p) {
  return preprocess_image(decode_jpeg_file(path), p, path);
}

// ---------------------------------------------------------------------------------------------
// Image sets on disk

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_jpeg_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg";
}

// Names of the JPEG files directly inside `dir`, sorted byte-wise.
std::vector<std::string> list_jpegs(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_jpeg_name(e.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void require_dir(const fs::path& dir, std::string_view what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error(fmt::format("{}: {} not found (not a directory)", dir.string(), what));
}

}  // namespace

ImageDataset load_imagenet_labeled(const std::string& dir) {
  const fs::path root(dir);
  const fs::path labels_path = root / "labels.txt";
  const fs::path images_dir = root / "images";
  std::ifstream f(labels_path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open labels file", labels_path.string()));
  require_dir(images_dir, "image folder");

  std::map<std::string, int> listed;  // file name -> label, sorted by name
  std::string line;
  for (int line_no = 1; std::getline(f, line); ++line_no) {
    const std::string_view text = trim(line);
    if (text.empty()) continue;
    const size_t comma = text.rfind(',');
    const std::string_view file = comma == std::string_view::npos ? std::string_view{} : trim(text.substr(0, comma));
    const std::string_view number = comma == std::string_view::npos ? std::string_view{} : trim(text.substr(comma + 1));
    int label = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), label);
    if (file.empty() || number.empty() || ec != std::errc{} || end != number.data() + number.size())
      throw std::runtime_error(
          fmt::format("{}:{}: expected 'file, class_index', got '{}'", labels_path.string(), line_no, text));
    if (label < 0 || label > 999)
      throw std::runtime_error(fmt::format("{}:{}: label {} of {} is outside 0..999", labels_path.string(), line_no, label, file));
    if (!listed.emplace(std::string(file), label).second)
      throw std::runtime_error(fmt::format("{}:{}: {} is listed twice", labels_path.string(), line_no, file));
  }
  if (f.bad()) throw std::runtime_error(fmt::format("{}: read error", labels_path.string()));
  if (listed.empty()) throw std::runtime_error(fmt::format("{}: no labels", labels_path.string()));

  for (const auto& [file, label] : listed) {
    std::error_code ec;
    if (!fs::is_regular_file(images_dir / file, ec))
      throw std::runtime_error(fmt::format("{}: listed in {} but missing", (images_dir / file).string(), labels_path.string()));
  }
  for (const std::string& file : list_jpegs(images_dir))
    if (!listed.contains(file))
      throw std::runtime_error(fmt::format("{}: image not listed in {}", (images_dir / file).string(), labels_path.string()));

  std::vector<Sample> samples;
  samples.reserve(listed.size());
  for (const auto& [file, label] : listed) samples.push_back({(images_dir / file).string(), label});
  return ImageDataset(std::move(samples));
}

ImageDataset load_imagenet_calib(const std::string& dir, const std::string& synset_words_path) {
  std::ifstream words(synset_words_path);
  if (!words) throw std::runtime_error(fmt::format("{}: cannot open synset words file", synset_words_path));
  std::unordered_map<std::string, int> class_of;
  std::string line;
  for (int index = 0; std::getline(words, line); ++index) {
    const std::string_view text = trim(line);
    const std::string_view synset = text.substr(0, std::min(text.find_first_of(" \t"), text.size()));
    if (synset.empty()) throw std::runtime_error(fmt::format("{}:{}: empty line, expected a synset id", synset_words_path, index + 1));
    if (!class_of.emplace(std::string(synset), index).second)
      throw std::runtime_error(fmt::format("{}:{}: synset {} appears twice", synset_words_path, index + 1, synset));
  }
  if (words.bad()) throw std::runtime_error(fmt::format("{}: read error", synset_words_path));

  const fs::path images_dir = fs::path(dir) / "images";
  require_dir(images_dir, "image folder");
  std::vector<Sample> samples;
  for (const std::string& file : list_jpegs(images_dir)) {
    const std::string path = (images_dir / file).string();
    const std::string synset = file.substr(0, std::min(file.find('_'), file.rfind('.')));
    const auto it = class_of.find(synset);
    if (it == class_of.end())
      throw std::runtime_error(fmt::format("{}: unknown synset '{}' (not in {})", path, synset, synset_words_path));
    samples.push_back({path, it->second});
  }
  if (samples.empty()) throw std::runtime_error(fmt::format("{}: no JPEG images", images_dir.string()));
  return ImageDataset(std::move(samples));
}

ImageDataset load_class_folders(const std::string& dir) {
  const fs::path root(dir);
  require_dir(root, "dataset folder");
  std::vector<std::string> classes;
  for (const fs::directory_entry& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) throw std::runtime_error(fmt::format("{}: no class folders", root.string()));

  std::vector<Sample> samples;
  for (size_t label = 0; label < classes.size(); ++label) {
    const fs::path class_dir = root / classes[label];
    const std::vector<std::string> files = list_jpegs(class_dir);
    if (files.empty()) throw std::runtime_error(fmt::format("{}: class folder has no JPEG images", class_dir.string()));
    for (const std::string& file : files) samples.push_back({(class_dir / file).string(), static_cast<int>(label)});
  }
  return ImageDataset(std::move(samples), std::move(classes));
}

ImageDataset auto_detect(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (fs::exists(root / "labels.txt", ec)) return load_imagenet_labeled(dir);
  if (fs::is_directory(root / "images", ec)) return load_imagenet_calib(dir, (root / ".." / "synset_words.txt").string());
  return load_class_folders(dir);
}

// ---------------------------------------------------------------------------------------------
// Batches

void load_batch(const ImageDataset& data, size_t begin, size_t count, const Preprocess& p, std::vector<float>& nchw_out,
                std::vector<int>& labels_out, int threads) {
  if (begin > data.size() || count > data.size() - begin)
    throw std::out_of_range(
        fmt::format("load_batch: samples [{}, {}) out of range, the dataset has {}", begin, begin + count, data.size()));
  labels_out.resize(count);
  for (size_t i = 0; i < count; ++i) labels_out[i] = data[begin + i].label;
  nchw_out.clear();
  if (count == 0) return;

  // The first sample fixes the per-sample size (needed before the threads write in place).
  std::vector<float> first = load_preprocessed(data[begin].path, p);
  const size_t per_sample = first.size();
  nchw_out.resize(count * per_sample);
  std::copy(first.begin(), first.end(), nchw_out.begin());

  // Sample i is written only by the thread owning it; errors[i] keeps its exception.
  std::vector<std::exception_ptr> errors(count);
  auto work = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      try {
        const Sample& s = data[begin + i];
        std::vector<float> chw = load_preprocessed(s.path, p);
        if (chw.size() != per_sample)
          throw std::runtime_error(fmt::format("{}: preprocessed to {} values, the batch's first sample ({}) to {}; "
                                               "use a crop to batch images of different sizes",
                                               s.path, chw.size(), data[begin].path, per_sample));
        std::copy(chw.begin(), chw.end(), nchw_out.begin() + static_cast<ptrdiff_t>(i * per_sample));
      } catch (...) {
        errors[i] = std::current_exception();
        return;
      }
    }
  };

  const size_t rest = count - 1;
  const size_t n_threads = std::min(static_cast<size_t>(std::max(threads, 1)), std::max<size_t>(rest, 1));
  if (n_threads <= 1) {
    work(1, count);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(n_threads);
    for (size_t t = 0; t < n_threads; ++t)
      pool.emplace_back(work, 1 + rest * t / n_threads, 1 + rest * (t + 1) / n_threads);
    for (std::thread& th : pool) th.join();
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

// ---------------------------------------------------------------------------------------------
// IDX files

namespace {

class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)), f_(gzopen(path_.c_str(), "rb")) {
    if (!f_) throw std::runtime_error(fmt::format("{}: cannot open", path_));
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() { gzclose(f_); }

  // Reads exactly `size` bytes; `what` names them in the error when the file ends first.
  void read(void* dst, size_t size, std::string_view what) {
    auto* out = static_cast<unsigned char*>(dst);
    size_t done = 0;
    while (done < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - done, size_t{1} << 30));
      const int n = gzread(f_, out + done, chunk);
      if (n < 0) throw std::runtime_error(fmt::format("{}: corrupt gzip data while reading {}: {}", path_, what, error_text()));
      if (n == 0)
        throw std::runtime_error(fmt::format("{}: truncated: {} takes {} bytes, the data ends after {}{}", path_, what, size,
                                             done, stream_note()));
      done += static_cast<size_t>(n);
    }
  }

  uint32_t read_be32(std::string_view what) {
    unsigned char b[4];
    read(b, 4, what);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }

  // The data must end here, and the gzip stream must be intact (its trailer holds the CRC).
  void expect_end() {
    unsigned char extra;
    const int n = gzread(f_, &extra, 1);
    if (n > 0) throw std::runtime_error(fmt::format("{}: unexpected data after the end of the IDX content", path_));
    int err = Z_OK;
    gzerror(f_, &err);
    if (n < 0 || err != Z_OK)
      throw std::runtime_error(fmt::format("{}: truncated or corrupt gzip stream: {}", path_, error_text()));
  }

 private:
  // zlib's message, without the "path: " prefix that gzerror puts in front.
  std::string error_text() {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    if (err == Z_ERRNO) return "read error";
    std::string_view text = msg ? msg : "unknown error";
    if (text.starts_with(path_) && text.substr(path_.size()).starts_with(": ")) text.remove_prefix(path_.size() + 2);
    return std::string(text);
  }
  std::string stream_note() {
    int err = Z_OK;
    gzerror(f_, &err);
    return err == Z_OK ? "" : fmt::format(" ({})", error_text());
  }

  std::string path_;
  gzFile f_;
};

// IDX header: magic 0x0000 08 <ndim>, then ndim big-endian uint32 sizes.
std::vector<uint32_t> read_idx_header(GzReader& in, const std::string& path, uint32_t magic, int ndim) {
  const uint32_t got = in.read_be32("the IDX magic number");
  if (got != magic)
    throw std::runtime_error(fmt::format("{}: bad IDX magic 0x{:08x}, expected 0x{:08x}", path, got, magic));
  std::vector<uint32_t> dims(static_cast<size_t>(ndim));
  for (uint32_t& d : dims) d = in.read_be32("the IDX dimensions");
  return dims;
}

// Caps allocations driven by a corrupt header.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 32;

}  // namespace

IdxImages load_idx_images(const std::string& path_gz) {
  GzReader in(path_gz);
  const std::vector<uint32_t> dims = read_idx_header(in, path_gz, 0x00000803, 3);
  if (dims[1] == 0 || dims[2] == 0 || dims[0] > 0x7fffffffu || dims[1] > 0xffffu || dims[2] > 0xffffu ||
      uint64_t{dims[0]} * dims[1] * dims[2] > kMaxIdxBytes)
    throw std::runtime_error(fmt::format("{}: implausible IDX image dimensions {} x {} x {}", path_gz, dims[0], dims[1], dims[2]));
  IdxImages out;
  out.count = static_cast<int>(dims[0]);
  out.rows = static_cast<int>(dims[1]);
  out.cols = static_cast<int>(dims[2]);
  out.pixels.resize(static_cast<size_t>(dims[0]) * dims[1] * dims[2]);
  in.read(out.pixels.data(), out.pixels.size(), fmt::format("pixel data of {} images", out.count));
  in.expect_end();
  return out;
}

std::vector<uint8_t> load_idx_labels(const std::string& path_gz) {
  GzReader in(path_gz);
  const std::vector<uint32_t> dims = read_idx_header(in, path_gz, 0x00000801, 1);
  if (dims[0] > 0x7fffffffu)
    throw std::runtime_error(fmt::format("{}: implausible IDX label count {}", path_gz, dims[0]));
  std::vector<uint8_t> labels(dims[0]);
  in.read(labels.data(), labels.size(), fmt::format("{} labels", dims[0]));
  in.expect_end();
  return labels;
}

}  // namespace lowbit
