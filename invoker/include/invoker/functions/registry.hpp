#pragma once
// The functions deployed on this host, kept in SQLite under the state
// directory (WAL mode), so a restart or a kill -9 of thawd loses none.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "invoker/functions/function_config.hpp"

struct sqlite3;

namespace thaw::invoker {

struct FunctionRecord {
  FunctionConfig config;
  std::string code_sha256;  // hex, the code store's key
  uint64_t code_size = 0;   // bytes of the package as uploaded
  std::string role;
  std::string last_modified;                     // Lambda's format: 2026-11-22T08:00:00.000+0000
  std::optional<unsigned> reserved_concurrency;  // PutFunctionConcurrency
  int max_retry_attempts = 2;                    // asynchronous invocations, as Lambda
  int max_event_age_s = 21600;
};

// What a function has used, for metering (pay per use).
struct UsageTotals {
  uint64_t invocations = 0;
  uint64_t errors = 0;
  uint64_t throttles = 0;
  double duration_ms = 0;
  uint64_t billed_ms = 0;
  double gb_seconds = 0;  // billed seconds x memory size in GB
  // Over instances' egress links, during invocations.
  uint64_t network_out_bytes = 0;
  uint64_t network_in_bytes = 0;
  UsageTotals& operator+=(const UsageTotals& d) {
    network_out_bytes += d.network_out_bytes;
    network_in_bytes += d.network_in_bytes;
    invocations += d.invocations;
    errors += d.errors;
    throttles += d.throttles;
    duration_ms += d.duration_ms;
    billed_ms += d.billed_ms;
    gb_seconds += d.gb_seconds;
    return *this;
  }
};

class Registry {
 public:
  explicit Registry(const std::string& path);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  void put(const FunctionRecord& record);  // insert or replace
  std::optional<FunctionRecord> get(const std::string& name) const;
  std::vector<FunctionRecord> list() const;  // by name
  bool remove(const std::string& name);

  // Where the next search for a free host id range starts (id_pool.hpp).
  uint32_t id_cursor() const;
  void set_id_cursor(uint32_t next);

  // Adds to each function's usage totals, in one transaction.
  void add_usage(const std::map<std::string, UsageTotals>& deltas);
  std::map<std::string, UsageTotals> usage() const;

 private:
  sqlite3* db_ = nullptr;
};

std::string lambda_timestamp_now();

}  // namespace thaw::invoker
