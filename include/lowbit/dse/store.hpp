#pragma once
// The results store of a design-space exploration: one SQLite file, one row per evaluated point.
//
// A point is identified by its key: the canonical JSON of everything that decides its result
// (model, recipe, evaluation and cost settings). Inserting a key that is already there changes
// nothing, so a resumed or repeated exploration never duplicates a point. Every insert is its own
// transaction in WAL mode: a process killed at any moment (kill -9 included) leaves every finished
// point in the file and no partial row.
//
// The schema version is SQLite's user_version. A store written by a newer lowbit is refused, never
// rewritten; a file that is not a lowbit store is refused too.
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace lowbit::dse {

inline constexpr int kStoreSchemaVersion = 1;

struct PointResult {
  std::string key;     // canonical JSON, unique in the store
  std::string model;   // the model file as given
  std::string weight_format, activation_format;  // the recipe's default formats ("float" if none)
  std::string granularity;  // of the weights: "tensor", "channel", "group:32"
  std::string technique;    // the space's name for the passes: "rtn", "gptq", "cle_bc", ...
  nlohmann::json recipe;    // the full recipe the point ran
  double top1 = NAN, top5 = NAN;
  int64_t images = 0;       // evaluation images
  // Hardware cost of the model at the point's formats (hw::ModelCost); NaN where a format has no
  // MAC model (block-scaled, BitMoD, float).
  double macs = NAN, bit_ops = NAN, weight_bits = NAN, activation_bits = NAN;
  double lut = NAN, ff = NAN, carry = NAN, dsp = NAN;
  double quantize_seconds = 0, eval_seconds = 0;
  std::string lowbit_version, host, finished_at;  // finished_at: UTC, ISO 8601
  int rank = 0;                                   // MPI rank that evaluated it
  int64_t id = 0;                                 // row id, set by the store (insertion order)

  nlohmann::json to_json() const;
  static PointResult from_json(const nlohmann::json& j);
};

// A language-model point (`lowbit llm sweep --store`): perplexity of one quantization config.
struct LlmPointResult {
  std::string key;     // canonical JSON, unique in the store
  std::string model;   // the checkpoint file as given
  std::string name;    // the sweep's name for the config ("W4 g128 GPTQ")
  std::string config;  // the config text (docs/llm.md)
  double weight_bits = NAN;
  double perplexity = NAN;          // over every evaluated window
  double held_out_perplexity = NAN; // over the windows calibration did not use
  int64_t tokens = 0;               // scored tokens
  double seconds = 0;
  std::string lowbit_version, host, finished_at;
  int64_t id = 0;
};

class ResultStore {
 public:
  // Opens `path`, creating it when missing. Throws std::runtime_error naming the file when it is
  // not a lowbit store or was written by a newer schema.
  static ResultStore open(const std::string& path);
  // Opens an existing store without writing to it.
  static ResultStore open_read_only(const std::string& path);
  ResultStore(ResultStore&&) noexcept;
  ResultStore& operator=(ResultStore&&) noexcept;
  ~ResultStore();

  const std::string& path() const { return path_; }
  bool contains(const std::string& key) const;
  // Adds the point; false when its key was already stored (the store is unchanged then).
  bool insert(const PointResult& p);
  std::vector<PointResult> points() const;  // in insertion order
  size_t size() const;

  bool contains_llm(const std::string& key) const;
  bool insert_llm(const LlmPointResult& p);  // false when the key was already stored
  std::vector<LlmPointResult> llm_points() const;

  // Free-form settings of the exploration (the space file, the model, ...).
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

 private:
  ResultStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace lowbit::dse
