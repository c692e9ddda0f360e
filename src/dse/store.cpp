#include "lowbit/dse/store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

namespace lowbit::dse {

namespace {

constexpr const char* kPointColumns =
    "key, model, weight_format, activation_format, granularity, technique, recipe, top1, top5, images, macs, bit_ops, "
    "weight_bits, activation_bits, lut, ff, carry, dsp, quantize_seconds, eval_seconds, lowbit_version, host, "
    "finished_at, rank";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  model TEXT NOT NULL,
  weight_format TEXT NOT NULL,
  activation_format TEXT NOT NULL,
  granularity TEXT NOT NULL,
  technique TEXT NOT NULL,
  recipe TEXT NOT NULL,
  top1 REAL, top5 REAL, images INTEGER,
  macs REAL, bit_ops REAL, weight_bits REAL, activation_bits REAL,
  lut REAL, ff REAL, carry REAL, dsp REAL,
  quantize_seconds REAL, eval_seconds REAL,
  lowbit_version TEXT, host TEXT, finished_at TEXT, rank INTEGER);
CREATE TABLE IF NOT EXISTS llm_points(
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  model TEXT NOT NULL,
  name TEXT NOT NULL,
  config TEXT NOT NULL,
  weight_bits REAL, perplexity REAL, held_out_perplexity REAL, tokens INTEGER, seconds REAL,
  lowbit_version TEXT, host TEXT, finished_at TEXT);
)sql";

constexpr const char* kLlmColumns =
    "key, model, name, config, weight_bits, perplexity, held_out_perplexity, tokens, seconds, lowbit_version, host, finished_at";

[[noreturn]] void fail(sqlite3* db, const std::string& path, const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}: {}", path, what, db ? sqlite3_errmsg(db) : "out of memory"));
}

class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const std::string& sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) fail(db, path, "cannot prepare '" + sql + "'");
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind(int i, const std::string& v) { check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT)); }
  void bind(int i, double v) { check(std::isnan(v) ? sqlite3_bind_null(s_, i) : sqlite3_bind_double(s_, i, v)); }
  void bind(int i, int64_t v) { check(sqlite3_bind_int64(s_, i, v)); }
  // True while there is a row.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, path_, "query failed");
  }
  std::string text(int i) const {
    const unsigned char* t = sqlite3_column_text(s_, i);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }
  double real(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s_, i); }
  int64_t integer(int i) const { return sqlite3_column_int64(s_, i); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, path_, "cannot bind a value");
  }
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error(fmt::format("{}: {}", path, message));
  }
}

int user_version(sqlite3* db, const std::string& path) {
  Statement s(db, path, "PRAGMA user_version");
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

bool has_table(sqlite3* db, const std::string& path, const char* name) {
  Statement s(db, path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  s.bind(1, std::string(name));
  return s.step();
}

sqlite3* open_database(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(fmt::format("{}: cannot open the results store: {}", path, message));
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

// Refuses files that are not lowbit stores and stores of a newer schema; returns the version.
int check_schema(sqlite3* db, const std::string& path) {
  int version = 0;
  try {
    version = user_version(db, path);
  } catch (const std::runtime_error&) {
    throw std::runtime_error(fmt::format("{}: not a lowbit results store (not an SQLite database)", path));
  }
  if (version > kStoreSchemaVersion)
    throw std::runtime_error(fmt::format("{}: written by a newer lowbit (store schema {}, this lowbit reads up to {}); not touching it",
                                         path, version, kStoreSchemaVersion));
  bool empty_file;
  {
    Statement s(db, path, "SELECT count(*) FROM sqlite_master");
    s.step();
    empty_file = s.integer(0) == 0;
  }
  if (version == 0 && !empty_file) throw std::runtime_error(fmt::format("{}: not a lowbit results store (an SQLite database of something else)", path));
  if (version == kStoreSchemaVersion && !has_table(db, path, "points"))
    throw std::runtime_error(fmt::format("{}: not a lowbit results store (no points table)", path));
  return version;
}

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }
double number_from(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

}  // namespace

nlohmann::json PointResult::to_json() const {
  return nlohmann::json{{"key", key},
                        {"model", model},
                        {"weight_format", weight_format},
                        {"activation_format", activation_format},
                        {"granularity", granularity},
                        {"technique", technique},
                        {"recipe", recipe},
                        {"top1", number_or_null(top1)},
                        {"top5", number_or_null(top5)},
                        {"images", images},
                        {"macs", number_or_null(macs)},
                        {"bit_ops", number_or_null(bit_ops)},
                        {"weight_bits", number_or_null(weight_bits)},
                        {"activation_bits", number_or_null(activation_bits)},
                        {"lut", number_or_null(lut)},
                        {"ff", number_or_null(ff)},
                        {"carry", number_or_null(carry)},
                        {"dsp", number_or_null(dsp)},
                        {"quantize_seconds", quantize_seconds},
                        {"eval_seconds", eval_seconds},
                        {"lowbit_version", lowbit_version},
                        {"host", host},
                        {"finished_at", finished_at},
                        {"rank", rank},
                        {"id", id}};
}

PointResult PointResult::from_json(const nlohmann::json& j) {
  PointResult p;
  p.key = j.at("key").get<std::string>();
  p.model = j.value("model", "");
  p.weight_format = j.value("weight_format", "");
  p.activation_format = j.value("activation_format", "");
  p.granularity = j.value("granularity", "");
  p.technique = j.value("technique", "");
  p.recipe = j.value("recipe", nlohmann::json::object());
  p.top1 = number_from(j, "top1");
  p.top5 = number_from(j, "top5");
  p.images = j.value("images", int64_t{0});
  p.macs = number_from(j, "macs");
  p.bit_ops = number_from(j, "bit_ops");
  p.weight_bits = number_from(j, "weight_bits");
  p.activation_bits = number_from(j, "activation_bits");
  p.lut = number_from(j, "lut");
  p.ff = number_from(j, "ff");
  p.carry = number_from(j, "carry");
  p.dsp = number_from(j, "dsp");
  p.quantize_seconds = j.value("quantize_seconds", 0.0);
  p.eval_seconds = j.value("eval_seconds", 0.0);
  p.lowbit_version = j.value("lowbit_version", "");
  p.host = j.value("host", "");
  p.finished_at = j.value("finished_at", "");
  p.rank = j.value("rank", 0);
  p.id = j.value("id", int64_t{0});
  return p;
}

ResultStore ResultStore::open(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ignored;  // a folder that cannot be made shows up as the open error below
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  sqlite3* db = open_database(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  ResultStore store(path, db);
  int version = check_schema(db, path);
  // WAL: a reader never blocks the writer, and a killed writer loses at most the transaction it was in.
  exec(db, path, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  if (version == 0) {
    exec(db, path, "BEGIN IMMEDIATE");
    exec(db, path, kSchema);
    exec(db, path, fmt::format("PRAGMA user_version = {}", kStoreSchemaVersion).c_str());
    exec(db, path, "COMMIT");
  }
  return store;
}

ResultStore ResultStore::open_read_only(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw std::runtime_error(fmt::format("{}: no such results store", path));
  sqlite3* db = open_database(path, SQLITE_OPEN_READONLY);
  ResultStore store(path, db);
  if (check_schema(db, path) == 0) throw std::runtime_error(fmt::format("{}: not a lowbit results store (empty database)", path));
  return store;
}

ResultStore::ResultStore(ResultStore&& o) noexcept : path_(std::move(o.path_)), db_(o.db_) { o.db_ = nullptr; }
ResultStore& ResultStore::operator=(ResultStore&& o) noexcept {
  if (this != &o) {
    sqlite3_close(db_);
    path_ = std::move(o.path_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}
ResultStore::~ResultStore() { sqlite3_close(db_); }

bool ResultStore::contains(const std::string& key) const {
  Statement s(db_, path_, "SELECT 1 FROM points WHERE key = ?");
  s.bind(1, key);
  return s.step();
}

bool ResultStore::insert(const PointResult& p) {
  Statement s(db_, path_, fmt::format("INSERT OR IGNORE INTO points({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", kPointColumns));
  int i = 0;
  for (const std::string* t : {&p.key, &p.model, &p.weight_format, &p.activation_format, &p.granularity, &p.technique}) s.bind(++i, *t);
  s.bind(++i, p.recipe.dump());
  s.bind(++i, p.top1);
  s.bind(++i, p.top5);
  s.bind(++i, p.images);
  for (double v : {p.macs, p.bit_ops, p.weight_bits, p.activation_bits, p.lut, p.ff, p.carry, p.dsp, p.quantize_seconds, p.eval_seconds})
    s.bind(++i, v);
  for (const std::string* t : {&p.lowbit_version, &p.host, &p.finished_at}) s.bind(++i, *t);
  s.bind(++i, static_cast<int64_t>(p.rank));
  s.step();
  return sqlite3_changes(db_) > 0;
}

std::vector<PointResult> ResultStore::points() const {
  Statement s(db_, path_, fmt::format("SELECT id, {} FROM points ORDER BY id", kPointColumns));
  std::vector<PointResult> out;
  while (s.step()) {
    PointResult p;
    int i = 0;
    p.id = s.integer(i++);
    for (std::string* t : {&p.key, &p.model, &p.weight_format, &p.activation_format, &p.granularity, &p.technique}) *t = s.text(i++);
    std::string recipe = s.text(i++);
    p.recipe = nlohmann::json::parse(recipe, nullptr, false);
    if (p.recipe.is_discarded()) throw std::runtime_error(fmt::format("{}: point {} has a recipe that is not JSON", path_, p.id));
    p.top1 = s.real(i++);
    p.top5 = s.real(i++);
    p.images = s.integer(i++);
    for (double* v : {&p.macs, &p.bit_ops, &p.weight_bits, &p.activation_bits, &p.lut, &p.ff, &p.carry, &p.dsp, &p.quantize_seconds,
                      &p.eval_seconds})
      *v = s.real(i++);
    for (std::string* t : {&p.lowbit_version, &p.host, &p.finished_at}) *t = s.text(i++);
    p.rank = static_cast<int>(s.integer(i++));
    out.push_back(std::move(p));
  }
  return out;
}

size_t ResultStore::size() const {
  Statement s(db_, path_, "SELECT count(*) FROM points");
  s.step();
  return static_cast<size_t>(s.integer(0));
}

bool ResultStore::contains_llm(const std::string& key) const {
  Statement s(db_, path_, "SELECT 1 FROM llm_points WHERE key = ?");
  s.bind(1, key);
  return s.step();
}

bool ResultStore::insert_llm(const LlmPointResult& p) {
  Statement s(db_, path_, fmt::format("INSERT OR IGNORE INTO llm_points({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", kLlmColumns));
  int i = 0;
  for (const std::string* t : {&p.key, &p.model, &p.name, &p.config}) s.bind(++i, *t);
  for (double v : {p.weight_bits, p.perplexity, p.held_out_perplexity}) s.bind(++i, v);
  s.bind(++i, p.tokens);
  s.bind(++i, p.seconds);
  for (const std::string* t : {&p.lowbit_version, &p.host, &p.finished_at}) s.bind(++i, *t);
  s.step();
  return sqlite3_changes(db_) > 0;
}

std::vector<LlmPointResult> ResultStore::llm_points() const {
  Statement s(db_, path_, fmt::format("SELECT id, {} FROM llm_points ORDER BY id", kLlmColumns));
  std::vector<LlmPointResult> out;
  while (s.step()) {
    LlmPointResult p;
    int i = 0;
    p.id = s.integer(i++);
    for (std::string* t : {&p.key, &p.model, &p.name, &p.config}) *t = s.text(i++);
    for (double* v : {&p.weight_bits, &p.perplexity, &p.held_out_perplexity}) *v = s.real(i++);
    p.tokens = s.integer(i++);
    p.seconds = s.real(i++);
    for (std::string* t : {&p.lowbit_version, &p.host, &p.finished_at}) *t = s.text(i++);
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<std::string> ResultStore::meta(const std::string& key) const {
  Statement s(db_, path_, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void ResultStore::set_meta(const std::string& key, const std::string& value) {
  Statement s(db_, path_, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.bind(1, key);
  s.bind(2, value);
  s.step();
}

}  // namespace lowbit::dse
