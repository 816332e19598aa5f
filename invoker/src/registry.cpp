#include "invoker/registry.hpp"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "sandbox/error.hpp"

namespace thaw::invoker {

namespace {

nlohmann::json to_json(const FunctionRecord& r) {
  const auto& c = r.config;
  return {{"runtime", c.runtime},
          {"handler", c.handler},
          {"memory_mb", c.memory_mb},
          {"timeout_s", c.timeout_s},
          {"ephemeral_storage_mb", c.ephemeral_storage_mb},
          {"environment", c.environment},
          {"snapshot", c.snapshot == SnapshotPolicy::Auto ? "auto" : "off"},
          {"code_sha256", r.code_sha256},
          {"code_size", r.code_size},
          {"role", r.role},
          {"last_modified", r.last_modified}};
}

FunctionRecord from_json(const std::string& name, const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  FunctionRecord r;
  r.config.name = name;
  r.config.runtime = j.at("runtime");
  r.config.handler = j.at("handler");
  r.config.memory_mb = j.at("memory_mb");
  r.config.timeout_s = j.at("timeout_s");
  r.config.ephemeral_storage_mb = j.at("ephemeral_storage_mb");
  r.config.environment = j.at("environment").get<std::map<std::string, std::string>>();
  r.config.snapshot = j.at("snapshot") == "auto" ? SnapshotPolicy::Auto : SnapshotPolicy::Off;
  r.code_sha256 = j.at("code_sha256");
  r.code_size = j.at("code_size");
  r.role = j.at("role");
  r.last_modified = j.at("last_modified");
  return r;
}

// A prepared statement that finalizes itself.
struct Statement {
  sqlite3_stmt* s = nullptr;
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
      throw Error(std::string("registry: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(s); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
};

}  // namespace

std::string lambda_timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d+0000", buf, static_cast<int>(ms));
  return out;
}

Registry::Registry(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error("registry: open " + path + ": " + why);
  }
  // WAL + synchronous=FULL: every committed change survives a kill -9 and a crash.
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"
      "CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, record TEXT NOT NULL);";
  char* err = nullptr;
  if (sqlite3_exec(db_, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db_);
    throw Error("registry: set up " + path + ": " + why);
  }
}

Registry::~Registry() {
  sqlite3_close(db_);
}

void Registry::put(const FunctionRecord& r) {
  Statement st(db_, "INSERT OR REPLACE INTO functions (name, record) VALUES (?, ?)");
  const auto text = to_json(r).dump();
  sqlite3_bind_text(st.s, 1, r.config.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw Error(std::string("registry: put: ") + sqlite3_errmsg(db_));
}

std::optional<FunctionRecord> Registry::get(const std::string& name) const {
  Statement st(db_, "SELECT record FROM functions WHERE name = ?");
  sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_ROW) return std::nullopt;
  return from_json(name, reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
}

std::vector<FunctionRecord> Registry::list() const {
  Statement st(db_, "SELECT name, record FROM functions ORDER BY name");
  std::vector<FunctionRecord> out;
  while (sqlite3_step(st.s) == SQLITE_ROW)
    out.push_back(from_json(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)),
                            reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1))));
  return out;
}

bool Registry::remove(const std::string& name) {
  Statement st(db_, "DELETE FROM functions WHERE name = ?");
  sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw Error(std::string("registry: remove: ") + sqlite3_errmsg(db_));
  return sqlite3_changes(db_) > 0;
}

}  // namespace thaw::invoker
