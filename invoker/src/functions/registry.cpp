#include "invoker/functions/registry.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "invoker/protocol/json_text.hpp"
#include "sqlite_statement.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

nlohmann::json egress_json(const std::optional<sandbox::EgressPolicy>& p) {
  if (!p) return nullptr;
  return {{"allow", p->rule_texts()},
          {"connections_per_second", p->connections_per_second},
          {"bandwidth_mbps", p->bandwidth_mbps}};
}

std::optional<sandbox::EgressPolicy> egress_from_json(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  sandbox::EgressPolicy p;
  for (const auto& rule : j.at("allow"))
    p.allow.push_back(sandbox::parse_egress_rule(rule.get<std::string>()));
  p.connections_per_second = j.value("connections_per_second", 0u);
  p.bandwidth_mbps = j.value("bandwidth_mbps", 0u);
  return p;
}

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
          {"last_modified", r.last_modified},
          {"reserved_concurrency",
           r.reserved_concurrency ? nlohmann::json(*r.reserved_concurrency) : nlohmann::json()},
          {"max_retry_attempts", r.max_retry_attempts},
          {"max_event_age_s", r.max_event_age_s},
          {"host_id_base", c.host_id_base},
          {"egress", egress_json(c.egress)}};
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
  // Fields added later: records written before them take Lambda's defaults.
  if (j.contains("reserved_concurrency") && !j["reserved_concurrency"].is_null())
    r.reserved_concurrency = j["reserved_concurrency"].get<unsigned>();
  r.max_retry_attempts = j.value("max_retry_attempts", 2);
  r.max_event_age_s = j.value("max_event_age_s", 21600);
  // 0: none yet (FunctionCatalog hands one out when it loads the record).
  r.config.host_id_base = j.value("host_id_base", 0u);
  if (j.contains("egress")) r.config.egress = egress_from_json(j["egress"]);
  return r;
}

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
  // Every function's environment and every queued payload: owner only. Made
  // so before SQLite opens it, which gives its journal files the same mode.
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || fchmod(fd, 0600) != 0) {
    const int err = errno;
    if (fd >= 0) close(fd);
    throw_errno("registry: open " + path, err);
  }
  close(fd);
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error("registry: open " + path + ": " + why);
  }
  // WAL + synchronous=FULL: every committed change survives a kill -9 and a crash.
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"
      "CREATE TABLE IF NOT EXISTS functions (name TEXT PRIMARY KEY, record TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS usage (function TEXT PRIMARY KEY, invocations INTEGER,"
      " errors INTEGER, throttles INTEGER, duration_ms REAL, billed_ms INTEGER,"
      " gb_seconds REAL);"
      "CREATE TABLE IF NOT EXISTS id_cursor (one INTEGER PRIMARY KEY CHECK (one = 0),"
      " next INTEGER NOT NULL);";
  char* err = nullptr;
  if (sqlite3_exec(db_, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db_);
    throw Error("registry: set up " + path + ": " + why);
  }
  // Columns added later: a registry written before them gets them, zero.
  for (const char* column : {"network_out_bytes", "network_in_bytes"}) {
    const std::string add =
        std::string("ALTER TABLE usage ADD COLUMN ") + column + " INTEGER NOT NULL DEFAULT 0";
    sqlite3_exec(db_, add.c_str(), nullptr, nullptr, nullptr);  // fails when it is there
  }
}

Registry::~Registry() {
  sqlite3_close(db_);
}

void Registry::put(const FunctionRecord& r) {
  Statement st(db_, "INSERT OR REPLACE INTO functions (name, record) VALUES (?, ?)");
  const auto text = json_text(to_json(r));
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

uint32_t Registry::id_cursor() const {
  Statement st(db_, "SELECT next FROM id_cursor WHERE one = 0");
  if (sqlite3_step(st.s) != SQLITE_ROW) return 0;
  return static_cast<uint32_t>(sqlite3_column_int64(st.s, 0));
}

void Registry::set_id_cursor(uint32_t next) {
  Statement st(db_, "INSERT OR REPLACE INTO id_cursor (one, next) VALUES (0, ?)");
  sqlite3_bind_int64(st.s, 1, next);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw Error(std::string("registry: id cursor: ") + sqlite3_errmsg(db_));
}

void Registry::add_usage(const std::map<std::string, UsageTotals>& deltas) {
  if (deltas.empty()) return;
  // One transaction: one fsync for however many functions ran since the last flush.
  sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  try {
    for (const auto& [name, d] : deltas) {
      Statement st(db_,
                   "INSERT INTO usage (function, invocations, errors, throttles, duration_ms, "
                   "billed_ms, gb_seconds, network_out_bytes, network_in_bytes) VALUES (?, ?, ?, "
                   "?, ?, ?, ?, ?, ?) ON CONFLICT(function) DO UPDATE "
                   "SET invocations = invocations + excluded.invocations, errors = errors + "
                   "excluded.errors, throttles = throttles + excluded.throttles, duration_ms = "
                   "duration_ms + excluded.duration_ms, billed_ms = billed_ms + "
                   "excluded.billed_ms, gb_seconds = gb_seconds + excluded.gb_seconds, "
                   "network_out_bytes = network_out_bytes + excluded.network_out_bytes, "
                   "network_in_bytes = network_in_bytes + excluded.network_in_bytes");
      sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st.s, 2, static_cast<sqlite3_int64>(d.invocations));
      sqlite3_bind_int64(st.s, 3, static_cast<sqlite3_int64>(d.errors));
      sqlite3_bind_int64(st.s, 4, static_cast<sqlite3_int64>(d.throttles));
      sqlite3_bind_double(st.s, 5, d.duration_ms);
      sqlite3_bind_int64(st.s, 6, static_cast<sqlite3_int64>(d.billed_ms));
      sqlite3_bind_double(st.s, 7, d.gb_seconds);
      sqlite3_bind_int64(st.s, 8, static_cast<sqlite3_int64>(d.network_out_bytes));
      sqlite3_bind_int64(st.s, 9, static_cast<sqlite3_int64>(d.network_in_bytes));
      if (sqlite3_step(st.s) != SQLITE_DONE)
        throw Error(std::string("registry: usage: ") + sqlite3_errmsg(db_));
    }
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    throw Error(std::string("registry: usage commit: ") + sqlite3_errmsg(db_));
}

std::map<std::string, UsageTotals> Registry::usage() const {
  Statement st(db_,
               "SELECT function, invocations, errors, throttles, duration_ms, billed_ms, "
               "gb_seconds, network_out_bytes, network_in_bytes FROM usage ORDER BY function");
  std::map<std::string, UsageTotals> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    auto& t = out[reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0))];
    t.invocations = static_cast<uint64_t>(sqlite3_column_int64(st.s, 1));
    t.errors = static_cast<uint64_t>(sqlite3_column_int64(st.s, 2));
    t.throttles = static_cast<uint64_t>(sqlite3_column_int64(st.s, 3));
    t.duration_ms = sqlite3_column_double(st.s, 4);
    t.billed_ms = static_cast<uint64_t>(sqlite3_column_int64(st.s, 5));
    t.gb_seconds = sqlite3_column_double(st.s, 6);
    t.network_out_bytes = static_cast<uint64_t>(sqlite3_column_int64(st.s, 7));
    t.network_in_bytes = static_cast<uint64_t>(sqlite3_column_int64(st.s, 8));
  }
  return out;
}

}  // namespace thaw::invoker
